//! Similarity tables for selection: the per-layer means of `pack1/2/3.json`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use interlace_core::MAX_LAYERS;

use crate::stats::numpy_mean;
use crate::SimilarityError;

/// Per-layer mean similarities of packs 1, 2 and 3 for an `n_layers` stack.
///
/// `packK[i]` is the mean over samples of cos(h_i, h_{i+K}) (numpy's `np.mean`, as
/// `load_similarity_scores` in the official `train_interlace.py` computes it), for
/// `i = 0..n_layers-K-1`, the official key range.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SimilarityTables {
    /// Number of decoder layers `L`.
    pub n_layers: usize,
    /// Pack-1 means (`L-1` entries), if present.
    pub pack1: Option<Vec<f64>>,
    /// Pack-2 means (`L-2` entries), if present.
    pub pack2: Option<Vec<f64>>,
    /// Pack-3 means (`L-3` entries), if present.
    pub pack3: Option<Vec<f64>>,
    /// Mean angular distance `arccos(cos)/π` over a block of `n` layers, by `n`
    /// (`angular{n}.json`, `L-n` entries: entry `ℓ` compares `h_ℓ` with `h_{ℓ+n}`).
    pub angular: BTreeMap<usize, Vec<f64>>,
    /// The same for the last token alone (`angular_last_token{n}.json`, PruneMe).
    pub angular_last_token: BTreeMap<usize, Vec<f64>>,
}

impl SimilarityTables {
    /// Builds tables from means, checking every present pack has `L-k` finite entries.
    pub fn from_means(n_layers: usize, pack1: Option<Vec<f64>>, pack2: Option<Vec<f64>>, pack3: Option<Vec<f64>>) -> Result<Self, SimilarityError> {
        let tables = Self { n_layers, pack1, pack2, pack3, ..Self::default() };
        tables.validate()?;
        Ok(tables)
    }

    /// Checks what selection relies on (the fields are public, so a table may be built by
    /// hand): at most [`MAX_LAYERS`] layers, `L-k` entries in every present pack, every entry
    /// finite (a NaN would make the ranking meaningless).
    pub fn validate(&self) -> Result<(), SimilarityError> {
        let invalid = |reason: String| SimilarityError::InvalidOption { option: "similarity tables", reason };
        let n_layers = self.n_layers;
        if n_layers > MAX_LAYERS {
            return Err(invalid(format!("{n_layers} layers; at most {MAX_LAYERS} are accepted")));
        }
        for k in 1..=3 {
            if let Some(t) = self.pack(k) {
                if t.len() + k != n_layers {
                    return Err(invalid(format!("pack {k} has {} layers, expected {} for {n_layers} layers", t.len(), n_layers.saturating_sub(k))));
                }
                if let Some(i) = t.iter().position(|x| !x.is_finite()) {
                    return Err(invalid(format!("pack {k}, layer {i}: the mean similarity is {}, not a finite number", t[i])));
                }
            }
        }
        for (name, tables) in [("angular", &self.angular), ("angular_last_token", &self.angular_last_token)] {
            for (&n, t) in tables {
                if n == 0 || t.len() + n != n_layers {
                    return Err(invalid(format!("{name}{n} has {} layers, expected {} for {n_layers} layers", t.len(), n_layers.saturating_sub(n))));
                }
                if let Some(i) = t.iter().position(|x| !x.is_finite()) {
                    return Err(invalid(format!("{name}{n}, layer {i}: the mean distance is {}, not a finite number", t[i])));
                }
            }
        }
        Ok(())
    }

    /// Reads `pack1.json`, `pack2.json`, `pack3.json` (any may be missing) from `dir`.
    ///
    /// `L` comes from `report.json`'s `n_layers` when present, otherwise from the pack sizes
    /// (`len(packK) + K`, which must agree).
    pub fn from_dir(dir: &Path) -> Result<Self, SimilarityError> {
        let packs: Vec<Option<Vec<f64>>> = (1..=3).map(|k| read_pack(&dir.join(format!("pack{k}.json")))).collect::<Result<_, _>>()?;
        let implied: Vec<(usize, usize)> = packs.iter().enumerate().filter_map(|(p, t)| t.as_ref().map(|t| (p + 1, t.len() + p + 1))).collect();
        let n_layers = match report_layers(dir)? {
            Some(n) => n,
            None => match implied.first() {
                Some(&(_, n)) => n,
                None => return Err(SimilarityError::InvalidFile { path: dir.to_path_buf(), reason: "no pack1.json, pack2.json or pack3.json".into() }),
            },
        };
        for &(k, n) in &implied {
            if n != n_layers {
                return Err(SimilarityError::InvalidFile {
                    path: dir.join(format!("pack{k}.json")),
                    reason: format!(
                        "has {} layers; a pack-{k} table of a {n_layers}-layer model has {} (keys 0..{})",
                        n - k,
                        n_layers.saturating_sub(k),
                        n_layers.saturating_sub(k)
                    ),
                });
            }
        }
        let mut packs = packs.into_iter();
        let tables = Self {
            n_layers,
            pack1: packs.next().flatten(),
            pack2: packs.next().flatten(),
            pack3: packs.next().flatten(),
            angular: read_numbered(dir, "angular")?,
            angular_last_token: read_numbered(dir, "angular_last_token")?,
        };
        tables.validate().map_err(|e| SimilarityError::InvalidFile { path: dir.to_path_buf(), reason: e.to_string() })?;
        Ok(tables)
    }

    /// The table of pack `k` (1, 2 or 3).
    pub fn pack(&self, k: usize) -> Option<&[f64]> {
        match k {
            1 => self.pack1.as_deref(),
            2 => self.pack2.as_deref(),
            3 => self.pack3.as_deref(),
            _ => None,
        }
    }
}

/// Every `{prefix}{n}.json` in `dir`, by `n`.
fn read_numbered(dir: &Path, prefix: &str) -> Result<BTreeMap<usize, Vec<f64>>, SimilarityError> {
    let mut tables = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(SimilarityError::io(dir))? {
        let name = entry.map_err(SimilarityError::io(dir))?.file_name();
        let n = name.to_str().and_then(|name| name.strip_prefix(prefix)).and_then(|rest| rest.strip_suffix(".json")).and_then(|n| n.parse::<usize>().ok());
        if let Some(n) = n {
            if let Some(table) = read_pack(&dir.join(&name))? {
                tables.insert(n, table);
            }
        }
    }
    Ok(tables)
}

fn report_layers(dir: &Path) -> Result<Option<usize>, SimilarityError> {
    let path = dir.join("report.json");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(SimilarityError::io(&path))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| SimilarityError::InvalidFile { path: path.clone(), reason: e.to_string() })?;
    let invalid = |reason: String| SimilarityError::InvalidFile { path: path.clone(), reason };
    let object = value.as_object().ok_or_else(|| invalid("expected a JSON object".into()))?;
    match object.get("n_layers") {
        None | Some(Value::Null) => Ok(None),
        Some(n) => match n.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) if (1..=MAX_LAYERS).contains(&n) => Ok(Some(n)),
            _ => Err(invalid(format!("n_layers is {n}; expected an integer from 1 to {MAX_LAYERS}"))),
        },
    }
}

/// Reads one official pack file: keys `"0".."m-1"`, each a non-empty list of finite numbers.
fn read_pack(path: &Path) -> Result<Option<Vec<f64>>, SimilarityError> {
    if !path.exists() {
        return Ok(None);
    }
    let invalid = |reason: String| SimilarityError::InvalidFile { path: path.to_path_buf(), reason };
    let text = std::fs::read_to_string(path).map_err(SimilarityError::io(path))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let object = value.as_object().ok_or_else(|| invalid("expected an object {\"0\": [...], ...}".into()))?;
    let mut means = vec![None; object.len()];
    for (key, values) in object {
        let i: usize = key.parse().map_err(|_| invalid(format!("key {key:?} is not a layer index")))?;
        let slot = means.get_mut(i).ok_or_else(|| invalid(format!("keys must be 0..{}; found {key:?}", object.len())))?;
        let list: Vec<f64> = match values.as_array() {
            Some(list) if !list.is_empty() => list
                .iter()
                .map(|v| v.as_f64().filter(|x| x.is_finite()))
                .collect::<Option<_>>()
                .ok_or_else(|| invalid(format!("layer {key}: every value must be a finite number")))?,
            _ => return Err(invalid(format!("layer {key}: expected a non-empty list of numbers"))),
        };
        // Finite values can still sum past f64::MAX (inf, or inf - inf = NaN).
        let mean = numpy_mean(&list);
        if !mean.is_finite() {
            return Err(invalid(format!("layer {key}: the mean of its values is {mean} (they overflow a 64-bit float)")));
        }
        *slot = Some(mean);
    }
    // Distinct integer keys filling 0..len: any gap shows up as a hole.
    means.into_iter().enumerate().map(|(i, m)| m.ok_or_else(|| invalid(format!("layer {i} is missing")))).collect::<Result<Vec<_>, _>>().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{select, Strategy};

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn a_pack_whose_mean_overflows_is_refused() {
        // Finite values whose 8-way partial sums reach +inf and -inf: the mean is NaN.
        let mut values = vec!["0"; 16];
        (values[0], values[8], values[1], values[9]) = ("1e308", "1e308", "-1e308", "-1e308");
        let pack = format!(r#"{{"0": [{}], "1": [0.5], "2": [0.5]}}"#, values.join(","));
        let dir = dir_with(&[("pack1.json", &pack)]);
        let err = SimilarityTables::from_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("layer 0") && err.contains("NaN"), "{err}");
    }

    #[test]
    fn hand_built_tables_with_nan_are_refused_by_selection() {
        let tables = SimilarityTables { n_layers: 4, pack1: Some(vec![0.5, f64::NAN, 0.7]), pack2: None, pack3: Some(vec![0.1]), ..Default::default() };
        for strategy in Strategy::ALL {
            let err = select(&tables, strategy, 0.25, 42).unwrap_err().to_string();
            assert!(err.contains("not a finite number"), "{strategy:?}: {err}");
        }
        let short = SimilarityTables { n_layers: 6, pack1: Some(vec![0.5]), pack2: None, pack3: None, ..Default::default() };
        assert!(select(&short, Strategy::InterlaceTn, 0.4, 42).is_err());
    }

    #[test]
    fn hostile_report_json_is_an_error() {
        for report in [r#"[1, 2]"#, r#""text""#, r#"{"n_layers": 1e18}"#, r#"{"n_layers": 1000000000000000000}"#, r#"{"n_layers": 0}"#, r#"{"n_layers": "36"}"#]
        {
            let dir = dir_with(&[("report.json", report)]);
            let result = SimilarityTables::from_dir(dir.path());
            assert!(matches!(result, Err(SimilarityError::InvalidFile { .. })), "{report}: {result:?}");
        }
        // A report alone still gives the layer count (random selection needs no pack).
        let dir = dir_with(&[("report.json", r#"{"n_layers": 10}"#)]);
        let plan = select(&SimilarityTables::from_dir(dir.path()).unwrap(), Strategy::Random, 0.2, 42).unwrap();
        assert_eq!(plan.drop.len(), 2);
    }
}
