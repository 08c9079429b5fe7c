//! Helpers shared by the surgery tests: fixture paths, reading every tensor of a model
//! directory, copying fixtures into scratch directories.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

/// Root of the committed fixtures.
pub fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures"))
}

/// A fixture model directory.
pub fn model(name: &str) -> PathBuf {
    fixtures().join("models").join(name)
}

/// One stored tensor: dtype, shape, raw bytes.
pub type Stored = (Dtype, Vec<usize>, Vec<u8>);

/// Every `*.safetensors` file of `dir` parsed, tensor name → (dtype, shape, bytes, file).
pub fn read_tensors(dir: &Path) -> BTreeMap<String, (Stored, String)> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if !file.ends_with(".safetensors") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let parsed = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{file}: {e:?}"));
        for (name, view) in parsed.iter() {
            let previous = all.insert(name.to_string(), ((view.dtype(), view.shape().to_vec(), view.data().to_vec()), file.clone()));
            assert!(previous.is_none(), "{name} stored twice");
        }
    }
    all
}

/// Copies the regular files of `from` into a new directory `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

/// A scratch copy of a fixture model.
pub fn scratch_model(name: &str, scratch: &Path) -> PathBuf {
    let dir = scratch.join(format!("src-{name}"));
    copy_dir(&model(name), &dir);
    dir
}

/// Names of the entries of `dir` (empty if it does not exist).
pub fn entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(it) => {
            let mut v: Vec<String> = it.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
            v.sort();
            v
        }
        Err(_) => Vec::new(),
    }
}

/// Reads a JSON file.
pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Golden logits of a surgery case.
pub fn golden_logits(case: &str, input: &str) -> Vec<f32> {
    let path = fixtures().join("golden/surgery").join(case).join(format!("{input}.safetensors"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let parsed = SafeTensors::deserialize(&bytes).unwrap();
    let view = parsed.tensor("logits").unwrap();
    assert_eq!(view.dtype(), Dtype::F32);
    view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

/// ‖a − b‖ / ‖b‖.
pub fn relative_error(actual: &[f32], expected: &[f32]) -> f64 {
    assert_eq!(actual.len(), expected.len(), "length mismatch");
    let diff: f64 = actual.iter().zip(expected).map(|(a, b)| ((*a - *b) as f64).powi(2)).sum();
    let norm: f64 = expected.iter().map(|b| (*b as f64).powi(2)).sum();
    (diff / norm.max(1e-30)).sqrt()
}

/// The fixture's checkpoint layout, from its `model_type` (surgery detects only decoder-only
/// configs by itself; `interlace_prune::registry` does this for users).
pub fn layout_of(dir: &Path) -> Option<Box<dyn interlace_core::CheckpointLayout>> {
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    interlace_qwen3vl::Family::named_in(&json).map(interlace_qwen3vl::Family::checkpoint_layout)
}

/// `options` with the layout of the checkpoint in `source` when it has none.
pub fn with_layout(mut options: interlace_surgery::DiskPruneOptions, source: &Path) -> interlace_surgery::DiskPruneOptions {
    if options.layout.is_none() {
        options.layout = layout_of(source);
    }
    options
}
