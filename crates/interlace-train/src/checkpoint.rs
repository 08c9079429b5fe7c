//! Durable training state: trainable weights, optimizer moments, schedule position.
//!
//! A checkpoint is written to `step-N.tmp/` and renamed to `step-N/` only when complete, so a
//! run killed at any moment (even `kill -9` mid-write) leaves the previous checkpoint intact.
//! The data order is a pure function of (seed, epoch), so the step number is the whole data
//! position and no RNG state needs saving.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::{DType, TensorData};
use safetensors::tensor::TensorView;
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// Where training stands at a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Optimizer steps completed.
    pub step: usize,
    /// Total optimizer steps of the run.
    pub total_steps: usize,
    /// Data-order seed.
    pub seed: u64,
    /// Loss of the last completed step.
    pub last_loss: f64,
    /// The run's settings ([`crate::TrainConfig::resume_settings`]); a resume must match them
    /// all. Absent in checkpoints written before interlace recorded them.
    #[serde(default)]
    pub settings: Option<BTreeMap<String, serde_json::Value>>,
}

/// One setting that differs between a checkpoint and the run that wants to resume from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingDifference {
    /// The setting (`lr`, `data_sha256`, ...).
    pub field: String,
    /// Its value in the checkpoint (JSON; `(absent)` when not recorded).
    pub checkpoint: String,
    /// Its value in this run (JSON; `(absent)` when not set).
    pub now: String,
}

impl std::fmt::Display for SettingDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} in the checkpoint, {} now", self.field, self.checkpoint, self.now)
    }
}

/// Every setting whose value differs between `recorded` (a checkpoint's) and `now`, by name.
pub fn differences(recorded: &BTreeMap<String, serde_json::Value>, now: &BTreeMap<String, serde_json::Value>) -> Vec<SettingDifference> {
    let show = |value: Option<&serde_json::Value>| value.map_or_else(|| "(absent)".to_string(), |v| v.to_string());
    let fields: std::collections::BTreeSet<&String> = recorded.keys().chain(now.keys()).collect();
    fields
        .into_iter()
        .filter(|field| recorded.get(*field) != now.get(*field))
        .map(|field| SettingDifference { field: field.clone(), checkpoint: show(recorded.get(field)), now: show(now.get(field)) })
        .collect()
}

const WEIGHTS: &str = "trainable.safetensors";
const OPTIMIZER: &str = "optimizer";
const STATE: &str = "state.json";

fn io(path: &Path) -> impl Fn(std::io::Error) -> TrainError + '_ {
    move |e| TrainError::Checkpoint(format!("{}: {e}", path.display()))
}

/// Writes a checkpoint atomically under `dir/step-{step}`, then removes older ones beyond `keep`.
pub fn save<R: burn::record::Record<B>, B: burn::prelude::Backend>(
    dir: &Path,
    state: &CheckpointState,
    trainable: &[(String, TensorData)],
    optimizer: R,
    keep: usize,
) -> Result<PathBuf, TrainError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let final_dir = dir.join(format!("step-{}", state.step));
    let tmp = dir.join(format!("step-{}.tmp", state.step));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir(&tmp).map_err(io(&tmp))?;
    write_tensors(&tmp.join(WEIGHTS), trainable)?;
    BinFileRecorder::<FullPrecisionSettings>::new()
        .record(optimizer, tmp.join(OPTIMIZER))
        .map_err(|e| TrainError::Checkpoint(format!("optimizer state: {e}")))?;
    let state_json = serde_json::to_string_pretty(state).expect("state serialises");
    std::fs::write(tmp.join(STATE), state_json).map_err(io(&tmp))?;
    sync_dir(&tmp)?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(io(&final_dir))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
    sync_dir(dir)?;
    prune_old(dir, keep)?;
    Ok(final_dir)
}

fn sync_dir(dir: &Path) -> Result<(), TrainError> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.is_file() {
            std::fs::File::open(&path).and_then(|f| f.sync_all()).map_err(io(&path))?;
        }
    }
    std::fs::File::open(dir).and_then(|f| f.sync_all()).map_err(io(dir))
}

fn write_tensors(path: &Path, tensors: &[(String, TensorData)]) -> Result<(), TrainError> {
    let converted: Vec<(String, TensorData)> = tensors.iter().map(|(n, d)| (n.clone(), d.clone().convert_dtype(DType::F32))).collect();
    let views = converted
        .iter()
        .map(|(name, data)| {
            TensorView::new(safetensors::Dtype::F32, data.shape.to_vec(), data.as_bytes())
                .map(|v| (name.clone(), v))
                .map_err(|e| TrainError::Checkpoint(format!("{name}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize_to_file(views, None, path).map_err(|e| TrainError::Checkpoint(format!("{}: {e}", path.display())))
}

/// Step numbers of the complete checkpoints under `dir`, ascending.
pub fn list(dir: &Path) -> Vec<usize> {
    let mut steps: Vec<usize> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("step-")?.parse().ok())
        .filter(|step: &usize| dir.join(format!("step-{step}")).join(STATE).is_file())
        .collect();
    steps.sort_unstable();
    steps
}

fn prune_old(dir: &Path, keep: usize) -> Result<(), TrainError> {
    let steps = list(dir);
    for step in steps.iter().take(steps.len().saturating_sub(keep.max(1))) {
        let old = dir.join(format!("step-{step}"));
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    Ok(())
}

/// A checkpoint read back.
pub struct Loaded<R> {
    /// Where training stood.
    pub state: CheckpointState,
    /// Trainable weights by name.
    pub trainable: HashMap<String, TensorData>,
    /// Optimizer record.
    pub optimizer: R,
}

/// Reads `dir/step-{step}`.
pub fn load<R: burn::record::Record<B>, B: burn::prelude::Backend>(dir: &Path, step: usize, device: &B::Device) -> Result<Loaded<R>, TrainError> {
    let path = dir.join(format!("step-{step}"));
    let state_path = path.join(STATE);
    let state: CheckpointState = serde_json::from_str(&std::fs::read_to_string(&state_path).map_err(io(&state_path))?)
        .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", state_path.display())))?;
    let weights_path = path.join(WEIGHTS);
    let bytes = std::fs::read(&weights_path).map_err(io(&weights_path))?;
    let parsed = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| TrainError::Checkpoint(format!("{}: {e}", weights_path.display())))?;
    let trainable =
        parsed.iter().map(|(name, view)| (name.to_string(), TensorData::from_bytes_vec(view.data().to_vec(), view.shape().to_vec(), DType::F32))).collect();
    let optimizer = BinFileRecorder::<FullPrecisionSettings>::new()
        .load(path.join(OPTIMIZER), device)
        .map_err(|e| TrainError::Checkpoint(format!("optimizer state in {}: {e}", path.display())))?;
    Ok(Loaded { state, trainable, optimizer })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TrainConfig;

    #[test]
    fn every_differing_setting_is_listed_with_both_values() {
        let old = TrainConfig { run_settings: [("data_sha256".to_string(), serde_json::json!("aa"))].into(), ..TrainConfig::default() };
        let new = TrainConfig {
            lr: 2e-5,
            weight_decay: 0.1,
            grad_accum: 4,
            checkpoint_every: 7,            // does not change the trajectory: not compared
            activation_checkpointing: true, // same gradients: not compared
            run_settings: [("data_sha256".to_string(), serde_json::json!("bb")), ("max_length".to_string(), serde_json::json!(512))].into(),
            ..TrainConfig::default()
        };
        // Recorded settings go through state.json and back, as on disk.
        let recorded: BTreeMap<String, serde_json::Value> = serde_json::from_str(&serde_json::to_string(&old.resume_settings(1, 10)).unwrap()).unwrap();
        assert!(differences(&recorded, &old.resume_settings(1, 10)).is_empty(), "a round trip through JSON changes nothing");
        let found = differences(&recorded, &new.resume_settings(2, 12));
        let fields: Vec<&str> = found.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["data_sha256", "devices", "grad_accum", "lr", "max_length", "total_steps", "weight_decay"]);
        let lr = found.iter().find(|d| d.field == "lr").unwrap().to_string();
        assert_eq!(lr, "lr: 0.00001 in the checkpoint, 0.00002 now");
        assert_eq!(found.iter().find(|d| d.field == "max_length").unwrap().checkpoint, "(absent)");
    }
}
