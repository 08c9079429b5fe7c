use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{CoreError, LayerSet};

/// The largest number of decoder layers any tool accepts, in a plan, a `config.json` or a
/// similarity report. Far beyond any real model (Qwen3-VL-32B has 64); it keeps a hostile
/// number from sizing an allocation or a loop.
pub const MAX_LAYERS: usize = 1 << 16;

/// What INTERLACE does to each decoder layer: drop it, fine-tune it, or keep it frozen.
///
/// Indices refer to the layers of the *unpruned* stack. `drop`, `finetune` and `freeze` are
/// sorted and together partition `0..n_layers`. This is the `plan.json` every tool reads and
/// writes:
///
/// ```
/// use interlace_core::Plan;
/// let plan = Plan::new(6, "interlace", 0.2, vec![1], vec![2], vec![0, 3, 4, 5]).unwrap();
/// assert_eq!(plan.finetune_after_pruning(), vec![1]);
/// let json = serde_json::to_string(&plan).unwrap();
/// assert_eq!(json, r#"{"n_layers":6,"strategy":"interlace","ratio":0.2,"drop":[1],"finetune":[2],"freeze":[0,3,4,5]}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Number of decoder layers before pruning.
    pub n_layers: usize,
    /// Name of the strategy that produced the plan (`interlace`, `random`, `manual`, ...).
    pub strategy: String,
    /// Requested fraction of layers to drop.
    pub ratio: f64,
    /// Layers removed.
    pub drop: Vec<usize>,
    /// Layers trained during adaptation.
    pub finetune: Vec<usize>,
    /// Layers kept frozen.
    pub freeze: Vec<usize>,
}

/// Errors in a plan file.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The file could not be read or written.
    #[error("cannot access plan {path}: {source}")]
    Io {
        /// The plan file.
        path: std::path::PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// The file is not a plan.
    #[error("invalid plan {path}: {reason}")]
    Invalid {
        /// The plan file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The plan's layer sets are inconsistent.
    #[error(transparent)]
    Layers(#[from] CoreError),
    /// drop/finetune/freeze overlap or miss a layer.
    #[error("plan does not partition 0..{n_layers}: {reason}")]
    NotAPartition {
        /// Number of layers of the plan.
        n_layers: usize,
        /// Which layer is missing or repeated.
        reason: String,
    },
}

impl Plan {
    /// Builds and validates a plan (sorts the three lists).
    pub fn new(
        n_layers: usize,
        strategy: impl Into<String>,
        ratio: f64,
        drop: Vec<usize>,
        finetune: Vec<usize>,
        freeze: Vec<usize>,
    ) -> Result<Self, PlanError> {
        let mut plan = Self { n_layers, strategy: strategy.into(), ratio, drop, finetune, freeze };
        plan.drop.sort_unstable();
        plan.finetune.sort_unstable();
        plan.freeze.sort_unstable();
        plan.validate()?;
        Ok(plan)
    }

    /// Checks that drop, finetune and freeze partition `0..n_layers` and that not every layer
    /// is dropped.
    pub fn validate(&self) -> Result<(), PlanError> {
        // Checked before `owner` is sized by it: a hand-written plan.json may say 1e18.
        if self.n_layers > MAX_LAYERS {
            return Err(PlanError::NotAPartition { n_layers: self.n_layers, reason: format!("more than {MAX_LAYERS} layers is not a real model") });
        }
        let mut owner = vec![None; self.n_layers];
        for (name, list) in [("drop", &self.drop), ("finetune", &self.finetune), ("freeze", &self.freeze)] {
            LayerSet::new(list.iter().copied(), self.n_layers)?;
            for &i in list {
                if let Some(previous) = owner[i].replace(name) {
                    return Err(PlanError::NotAPartition { n_layers: self.n_layers, reason: format!("layer {i} is in both `{previous}` and `{name}`") });
                }
            }
        }
        if let Some(i) = owner.iter().position(Option::is_none) {
            return Err(PlanError::NotAPartition { n_layers: self.n_layers, reason: format!("layer {i} is in none of drop/finetune/freeze") });
        }
        LayerSet::for_removal(self.drop.iter().copied(), self.n_layers)?;
        Ok(())
    }

    /// The drop set as a validated [`LayerSet`].
    pub fn drop_set(&self) -> Result<LayerSet, CoreError> {
        LayerSet::for_removal(self.drop.iter().copied(), self.n_layers)
    }

    /// Fine-tune layers renumbered to the pruned stack.
    pub fn finetune_after_pruning(&self) -> Vec<usize> {
        self.renumber(&self.finetune)
    }

    /// Frozen layers renumbered to the pruned stack.
    pub fn freeze_after_pruning(&self) -> Vec<usize> {
        self.renumber(&self.freeze)
    }

    fn renumber(&self, layers: &[usize]) -> Vec<usize> {
        layers.iter().map(|&i| i - self.drop.iter().filter(|&&d| d < i).count()).collect()
    }

    /// Reads and validates a `plan.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, PlanError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PlanError::Io { path: path.to_path_buf(), source })?;
        let plan: Plan = serde_json::from_str(&text).map_err(|e| PlanError::Invalid { path: path.to_path_buf(), reason: e.to_string() })?;
        plan.validate()?;
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_or_missing_layers_are_refused() {
        assert!(matches!(Plan::new(4, "x", 0.25, vec![1], vec![1], vec![0, 2, 3]), Err(PlanError::NotAPartition { .. })));
        assert!(matches!(Plan::new(4, "x", 0.25, vec![1], vec![2], vec![0]), Err(PlanError::NotAPartition { .. })));
        assert!(matches!(Plan::new(2, "x", 0.5, vec![0, 1], vec![], vec![]), Err(PlanError::Layers(CoreError::RemovesEveryLayer { .. }))));
        assert!(matches!(Plan::new(2, "x", 0.5, vec![2], vec![], vec![0, 1]), Err(PlanError::Layers(CoreError::LayerOutOfRange { .. }))));
    }

    #[test]
    fn huge_layer_counts_are_refused_without_allocating() {
        for n in ["1000000000000000000", "18446744073709551615", "65537"] {
            let json = format!(r#"{{"n_layers": {n}, "strategy": "x", "ratio": 0.1, "drop": [1], "finetune": [], "freeze": [0]}}"#);
            let plan: Plan = serde_json::from_str(&json).unwrap();
            assert!(matches!(plan.validate(), Err(PlanError::NotAPartition { .. })), "{n}");
        }
        let err = Plan::new(MAX_LAYERS + 1, "x", 0.1, vec![1], vec![], vec![0]).unwrap_err().to_string();
        assert!(err.contains("not a real model"), "{err}");
    }

    #[test]
    fn renumbering_follows_the_drops() {
        let plan = Plan::new(8, "interlace", 0.25, vec![2, 5], vec![3, 6], vec![0, 1, 4, 7]).unwrap();
        assert_eq!(plan.finetune_after_pruning(), vec![2, 4]);
        assert_eq!(plan.freeze_after_pruning(), vec![0, 1, 3, 5]);
    }
}
