//! Image processor settings (`preprocessor_config.json`).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::{ProcessorError, Result};

/// OpenAI CLIP mean (Python floats), the default of transformers' `Qwen2VLImageProcessor` when
/// `image_mean` is absent; converted to f32 as `torch.tensor` does.
pub const OPENAI_CLIP_MEAN: [f64; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// OpenAI CLIP std (Python floats), the default of transformers' `Qwen2VLImageProcessor` when
/// `image_std` is absent; converted to f32 as `torch.tensor` does.
pub const OPENAI_CLIP_STD: [f64; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// Settings of the Qwen2-VL image processor as used by Qwen3-VL.
///
/// Values are read from the model directory; the defaults below are those of transformers'
/// `Qwen2VLImageProcessor` class (Qwen2-VL values) and are used **only** for keys that are
/// absent (or `null`) in the file:
///
/// | field | default |
/// |---|---|
/// | `min_pixels` (`size.shortest_edge`) | 3136 (56²) |
/// | `max_pixels` (`size.longest_edge`) | 1003520 (28²·1280) |
/// | `patch_size` | 14 |
/// | `temporal_patch_size` | 2 |
/// | `merge_size` | 2 |
/// | `image_mean` / `image_std` | OpenAI CLIP mean / std |
/// | `rescale_factor` | 1/255 |
/// | `do_resize`, `do_rescale`, `do_normalize`, `do_convert_rgb` | true |
///
/// The real Qwen3-VL files set `size = {shortest_edge: 65536, longest_edge: 16777216}`,
/// `patch_size = 16`, mean = std = 0.5.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageProcessorConfig {
    /// Lower bound on the resized pixel count (`size.shortest_edge`, legacy `min_pixels`).
    pub min_pixels: usize,
    /// Upper bound on the resized pixel count (`size.longest_edge`, legacy `max_pixels`).
    pub max_pixels: usize,
    /// Spatial patch size P in pixels.
    pub patch_size: usize,
    /// Number of frames per temporal patch (Tp); still images are repeated to Tp frames.
    pub temporal_patch_size: usize,
    /// Spatial merge size m (m×m patches become one LLM token).
    pub merge_size: usize,
    /// Per-channel normalisation mean (in \[0, 1\] units).
    pub image_mean: [f32; 3],
    /// Per-channel normalisation std (in \[0, 1\] units).
    pub image_std: [f32; 3],
    /// Rescale factor applied to uint8 values (1/255).
    pub rescale_factor: f64,
    /// Whether to resize with `smart_resize` + bicubic.
    pub do_resize: bool,
    /// Whether to multiply by `rescale_factor`.
    pub do_rescale: bool,
    /// Whether to normalise with mean/std.
    pub do_normalize: bool,
    /// Whether to convert to RGB (always done for decoded files, as transformers' `load_image`).
    pub do_convert_rgb: bool,
}

impl Default for ImageProcessorConfig {
    /// The transformers `Qwen2VLImageProcessor` class defaults (Qwen2-VL values, not Qwen3-VL's).
    fn default() -> Self {
        Self {
            min_pixels: 56 * 56,
            max_pixels: 28 * 28 * 1280,
            patch_size: 14,
            temporal_patch_size: 2,
            merge_size: 2,
            image_mean: OPENAI_CLIP_MEAN.map(|v| v as f32),
            image_std: OPENAI_CLIP_STD.map(|v| v as f32),
            rescale_factor: 1.0 / 255.0,
            do_resize: true,
            do_rescale: true,
            do_normalize: true,
            do_convert_rgb: true,
        }
    }
}

impl ImageProcessorConfig {
    /// The values shipped in the Qwen3-VL Instruct `preprocessor_config.json`
    /// (min 65536 / max 16777216 pixels, patch 16, Tp 2, merge 2, mean = std = 0.5).
    pub fn qwen3_vl() -> Self {
        Self {
            min_pixels: 65_536,
            max_pixels: 16_777_216,
            patch_size: 16,
            temporal_patch_size: 2,
            merge_size: 2,
            image_mean: [0.5; 3],
            image_std: [0.5; 3],
            ..Self::default()
        }
    }

    /// The resize factor `patch_size · merge_size` (32 for Qwen3-VL).
    pub fn factor(&self) -> usize {
        self.patch_size * self.merge_size
    }

    /// Number of values in one row of `pixel_values`: `3 · Tp · P · P` (1536 for Qwen3-VL).
    pub fn row_len(&self) -> usize {
        3 * self.temporal_patch_size * self.patch_size * self.patch_size
    }

    /// Reads the settings from a model directory.
    ///
    /// Looks for `preprocessor_config.json`; if absent, for `processor_config.json`, where the
    /// image processor settings may be nested under `"image_processor"` (transformers 5).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let pre = dir.join("preprocessor_config.json");
        if pre.is_file() {
            let v = read_json(&pre)?;
            return Self::from_json_value(&v, &pre);
        }
        let proc = dir.join("processor_config.json");
        if proc.is_file() {
            let v = read_json(&proc)?;
            let inner = match v.get("image_processor") {
                Some(ip @ Value::Object(_)) => ip,
                _ => &v,
            };
            return Self::from_json_value(inner, &proc);
        }
        Err(ProcessorError::MissingFile {
            path: pre,
            reason: "image processor settings not found (neither preprocessor_config.json \
                     nor processor_config.json exists)"
                .into(),
        })
    }

    /// Reads the settings from one JSON file (a `preprocessor_config.json`).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let v = read_json(path)?;
        Self::from_json_value(&v, path)
    }

    /// Builds the settings from an already parsed JSON object; `path` is used in errors.
    pub fn from_json_value(v: &Value, path: &Path) -> Result<Self> {
        let obj = v.as_object().ok_or_else(|| ProcessorError::InvalidConfig {
            path: path.to_path_buf(),
            field: "<root>".into(),
            reason: "expected a JSON object".into(),
        })?;
        let p = Fields { obj, path };
        let mut c = Self::default();

        if let Some(size) = p.get("size") {
            let so = size.as_object().ok_or_else(|| p.err("size", "expected an object"))?;
            let sp = Fields { obj: so, path };
            match (sp.usize_opt("shortest_edge")?, sp.usize_opt("longest_edge")?) {
                (Some(lo), Some(hi)) => {
                    c.min_pixels = lo;
                    c.max_pixels = hi;
                }
                _ => return Err(p.err("size", "must contain both `shortest_edge` and `longest_edge` (min/max pixels)")),
            }
        }
        // Legacy keys override `size` (as transformers does).
        if let Some(v) = p.usize_opt("min_pixels")? {
            c.min_pixels = v;
        }
        if let Some(v) = p.usize_opt("max_pixels")? {
            c.max_pixels = v;
        }
        if let Some(v) = p.usize_opt("patch_size")? {
            c.patch_size = v;
        }
        if let Some(v) = p.usize_opt("temporal_patch_size")? {
            c.temporal_patch_size = v;
        }
        if let Some(v) = p.usize_opt("merge_size")? {
            c.merge_size = v;
        }
        if let Some(v) = p.triple_opt("image_mean")? {
            c.image_mean = v;
        }
        if let Some(v) = p.triple_opt("image_std")? {
            c.image_std = v;
        }
        if let Some(v) = p.f64_opt("rescale_factor")? {
            if !(v.is_finite() && v > 0.0) {
                return Err(p.err("rescale_factor", "must be a positive finite number"));
            }
            c.rescale_factor = v;
        }
        if let Some(v) = p.bool_opt("do_resize")? {
            c.do_resize = v;
        }
        if let Some(v) = p.bool_opt("do_rescale")? {
            c.do_rescale = v;
        }
        if let Some(v) = p.bool_opt("do_normalize")? {
            c.do_normalize = v;
        }
        if let Some(v) = p.bool_opt("do_convert_rgb")? {
            c.do_convert_rgb = v;
        }
        if let Some(r) = p.usize_opt("resample")? {
            if r != 3 {
                return Err(p.err("resample", &format!("only bicubic resampling (3) is supported, got {r}")));
            }
        }

        for (name, val) in [("patch_size", c.patch_size), ("temporal_patch_size", c.temporal_patch_size), ("merge_size", c.merge_size)] {
            if val == 0 {
                return Err(p.err(name, "must be positive"));
            }
        }
        if c.min_pixels > c.max_pixels {
            return Err(p.err("size", &format!("min pixels ({}) exceed max pixels ({})", c.min_pixels, c.max_pixels)));
        }
        if c.image_std.iter().any(|s| *s == 0.0 || !s.is_finite()) {
            return Err(p.err("image_std", "must be finite and non-zero"));
        }
        Ok(c)
    }
}

/// Reads and parses a JSON file with typed errors.
pub(crate) fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ProcessorError::MissingFile { path: path.to_path_buf(), reason: e.to_string() }
        } else {
            ProcessorError::InvalidFile { path: path.to_path_buf(), reason: e.to_string() }
        }
    })?;
    serde_json::from_str(&text).map_err(|e| ProcessorError::InvalidFile { path: path.to_path_buf(), reason: format!("not valid JSON: {e}") })
}

struct Fields<'a> {
    obj: &'a Map<String, Value>,
    path: &'a Path,
}

impl Fields<'_> {
    fn err(&self, field: &str, reason: &str) -> ProcessorError {
        ProcessorError::InvalidConfig { path: PathBuf::from(self.path), field: field.to_string(), reason: reason.to_string() }
    }

    /// The value of `key`, treating JSON `null` as absent.
    fn get(&self, key: &str) -> Option<&Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    fn usize_opt(&self, key: &str) -> Result<Option<usize>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        if let Some(u) = v.as_u64() {
            return usize::try_from(u).map(Some).map_err(|_| self.err(key, "value too large"));
        }
        if let Some(f) = v.as_f64() {
            if f >= 0.0 && f.fract() == 0.0 && f < 9.0e15 {
                return Ok(Some(f as usize));
            }
        }
        Err(self.err(key, &format!("expected a non-negative integer, got {v}")))
    }

    fn f64_opt(&self, key: &str) -> Result<Option<f64>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        v.as_f64().map(Some).ok_or_else(|| self.err(key, &format!("expected a number, got {v}")))
    }

    fn bool_opt(&self, key: &str) -> Result<Option<bool>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        v.as_bool().map(Some).ok_or_else(|| self.err(key, &format!("expected true or false, got {v}")))
    }

    /// A number (broadcast to 3 channels) or an array of 1 or 3 numbers.
    fn triple_opt(&self, key: &str) -> Result<Option<[f32; 3]>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let bad = || self.err(key, &format!("expected a number or 3 numbers, got {v}"));
        if let Some(f) = v.as_f64() {
            return Ok(Some([f as f32; 3]));
        }
        let arr = v.as_array().ok_or_else(bad)?;
        let nums: Vec<f32> = arr.iter().map(|x| x.as_f64().map(|f| f as f32)).collect::<Option<_>>().ok_or_else(bad)?;
        match nums.as_slice() {
            [a] => Ok(Some([*a; 3])),
            [a, b, c] => Ok(Some([*a, *b, *c])),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<ImageProcessorConfig> {
        ImageProcessorConfig::from_json_value(&v, Path::new("x/preprocessor_config.json"))
    }

    #[test]
    fn qwen3_file_values() {
        let c = parse(json!({
            "size": {"shortest_edge": 65536, "longest_edge": 16777216},
            "patch_size": 16, "temporal_patch_size": 2, "merge_size": 2,
            "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
            "image_processor_type": "Qwen2VLImageProcessorFast"
        }))
        .unwrap();
        assert_eq!(c, ImageProcessorConfig::qwen3_vl());
        assert_eq!(c.factor(), 32);
        assert_eq!(c.row_len(), 1536);
    }

    #[test]
    fn defaults_and_legacy_override() {
        let c = parse(json!({})).unwrap();
        assert_eq!(c, ImageProcessorConfig::default());
        let c = parse(json!({
            "size": {"shortest_edge": 100, "longest_edge": 1000},
            "min_pixels": 200, "max_pixels": null, "image_mean": 0.5
        }))
        .unwrap();
        assert_eq!((c.min_pixels, c.max_pixels), (200, 1000));
        assert_eq!(c.image_mean, [0.5; 3]);
    }

    #[test]
    fn invalid_values_name_the_field() {
        for (v, field) in [
            (json!({"size": {"shortest_edge": 1}}), "size"),
            (json!({"patch_size": "16"}), "patch_size"),
            (json!({"image_std": [0.5, 0.5]}), "image_std"),
            (json!({"do_resize": 1}), "do_resize"),
            (json!({"resample": 2}), "resample"),
            (json!({"merge_size": 0}), "merge_size"),
        ] {
            match parse(v) {
                Err(ProcessorError::InvalidConfig { field: f, path, .. }) => {
                    assert_eq!(f, field);
                    assert!(path.ends_with("preprocessor_config.json"));
                }
                other => panic!("expected InvalidConfig for {field}, got {other:?}"),
            }
        }
    }
}
