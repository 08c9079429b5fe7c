//! Writes the trained model as a Hugging Face directory that transformers loads unchanged.
//!
//! The output is the pruned input directory with the trained tensors replaced: same shard files,
//! same index, same dtypes (trained values are rounded back to the file's dtype), every other
//! tensor byte-identical, every other file copied. `interlace.json` (the provenance written by
//! surgery) gains a `train` section. The directory is assembled beside the target and renamed
//! into place only when complete.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::{DType, TensorData};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::TrainError;

/// Name of the provenance file shared with surgery.
pub const PROVENANCE_FILE: &str = "interlace.json";

fn fail(path: &Path) -> impl Fn(String) -> TrainError + '_ {
    move |reason| TrainError::Export(format!("{}: {reason}", path.display()))
}

/// Writes `source` with `trained` tensors replaced into `out`. `settings` is recorded under
/// `train` in `interlace.json`. Refuses a non-empty `out` unless `force`.
pub fn save_trained(source: &Path, out: &Path, trained: &[(String, TensorData)], settings: serde_json::Value, force: bool) -> Result<(), TrainError> {
    if out.exists() && std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(true) && !force {
        return Err(TrainError::Export(format!("{} exists and is not empty (use --force to replace it)", out.display())));
    }
    if same_dir(source, out) {
        return Err(TrainError::Export(format!("refusing to write the output over its source {}", source.display())));
    }
    let staging = staging_dir(out)?;
    let result = write_all(source, &staging, trained, settings);
    if let Err(error) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(error);
    }
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| fail(out)(e.to_string()))?;
    }
    std::fs::rename(&staging, out).map_err(|e| fail(out)(e.to_string()))
}

fn same_dir(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

fn staging_dir(out: &Path) -> Result<PathBuf, TrainError> {
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| fail(parent)(e.to_string()))?;
    let name = out.file_name().and_then(|n| n.to_str()).unwrap_or("model");
    let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| fail(&staging)(e.to_string()))?;
    }
    std::fs::create_dir(&staging).map_err(|e| fail(&staging)(e.to_string()))?;
    Ok(staging)
}

fn write_all(source: &Path, staging: &Path, trained: &[(String, TensorData)], settings: serde_json::Value) -> Result<(), TrainError> {
    let mut pending: HashMap<&str, &TensorData> = trained.iter().map(|(n, d)| (n.as_str(), d)).collect();
    let entries = std::fs::read_dir(source).map_err(|e| fail(source)(e.to_string()))?;
    for entry in entries {
        let path = entry.map_err(|e| fail(source)(e.to_string()))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if path.is_dir() {
            continue;
        }
        if name.ends_with(".safetensors") {
            rewrite_shard(&path, &staging.join(&name), &mut pending)?;
        } else if name != PROVENANCE_FILE {
            std::fs::copy(&path, staging.join(&name)).map_err(|e| fail(&path)(e.to_string()))?;
        }
    }
    if let Some(name) = pending.keys().next() {
        return Err(TrainError::Export(format!("trained tensor `{name}` is not in {}", source.display())));
    }
    write_provenance(source, staging, settings)
}

/// Copies one shard, substituting trained tensors (rounded to the stored dtype).
fn rewrite_shard(path: &Path, dest: &Path, pending: &mut HashMap<&str, &TensorData>) -> Result<(), TrainError> {
    let file = std::fs::File::open(path).map_err(|e| fail(path)(e.to_string()))?;
    // SAFETY: read-only map of a file this process does not modify.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| fail(path)(e.to_string()))?;
    let parsed = SafeTensors::deserialize(&map).map_err(|e| fail(path)(e.to_string()))?;
    let (_, metadata) = SafeTensors::read_metadata(&map).map_err(|e| fail(path)(e.to_string()))?;
    let mut replaced: HashMap<String, Vec<u8>> = HashMap::new();
    for (name, view) in parsed.iter() {
        if let Some(data) = pending.remove(name) {
            if data.shape.to_vec() != view.shape() {
                return Err(fail(path)(format!("trained `{name}` has shape {:?}, the file {:?}", data.shape, view.shape())));
            }
            let dtype = match view.dtype() {
                Dtype::BF16 => DType::BF16,
                Dtype::F16 => DType::F16,
                Dtype::F32 => DType::F32,
                other => return Err(fail(path)(format!("`{name}` is stored as {other:?}"))),
            };
            replaced.insert(name.to_string(), data.clone().convert_dtype(dtype).as_bytes().to_vec());
        }
    }
    let views = parsed
        .iter()
        .map(|(name, view)| {
            let data = replaced.get(name).map_or(view.data(), Vec::as_slice);
            TensorView::new(view.dtype(), view.shape().to_vec(), data).map(|v| (name.to_string(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(path)(e.to_string()))?;
    safetensors::serialize_to_file(views, metadata.metadata().clone(), dest).map_err(|e| fail(dest)(e.to_string()))
}

fn write_provenance(source: &Path, staging: &Path, settings: serde_json::Value) -> Result<(), TrainError> {
    let previous = source.join(PROVENANCE_FILE);
    let mut provenance = match std::fs::read_to_string(&previous) {
        Ok(text) => match serde_json::from_str(&text).map_err(|e| fail(&previous)(e.to_string()))? {
            serde_json::Value::Object(map) => map,
            // Indexing a JSON array or number by key would panic: refuse the file instead.
            other => return Err(fail(&previous)(format!("expected a JSON object, found {}", json_kind(&other)))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::Map::new(),
        Err(e) => return Err(fail(&previous)(e.to_string())),
    };
    let mut train = match settings {
        serde_json::Value::Object(map) => map,
        other => serde_json::Map::from_iter([("settings".to_string(), other)]),
    };
    train.insert("source".into(), serde_json::json!(source));
    train.insert("tool".into(), serde_json::json!(concat!("interlace-train ", env!("CARGO_PKG_VERSION"))));
    provenance.insert("train".into(), serde_json::Value::Object(train));
    let text = serde_json::to_string_pretty(&provenance).map_err(|e| fail(staging)(e.to_string()))?;
    std::fs::write(staging.join(PROVENANCE_FILE), text).map_err(|e| fail(staging)(e.to_string()))
}

/// What kind of JSON value this is, for error messages.
pub(crate) fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provenance_file_that_is_not_an_object_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("pruned");
        std::fs::create_dir(&source).unwrap();
        std::fs::write(source.join("config.json"), "{}").unwrap();
        for text in ["[1, 2]", "7", "\"x\"", "null"] {
            std::fs::write(source.join(PROVENANCE_FILE), text).unwrap();
            let out = dir.path().join("out");
            let err = save_trained(&source, &out, &[], serde_json::json!({"steps": 1}), false).unwrap_err().to_string();
            assert!(err.contains("expected a JSON object"), "{text}: {err}");
            assert!(!out.exists(), "nothing is left behind");
        }
        std::fs::write(source.join(PROVENANCE_FILE), r#"{"tool": "interlace"}"#).unwrap();
        save_trained(&source, &dir.path().join("out"), &[], serde_json::json!({"steps": 1}), false).unwrap();
        let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("out").join(PROVENANCE_FILE)).unwrap()).unwrap();
        assert_eq!((written["tool"].as_str(), written["train"]["steps"].as_u64()), (Some("interlace"), Some(1)));
    }
}
