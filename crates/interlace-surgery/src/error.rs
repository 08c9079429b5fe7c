//! The one error type of the surgery crate.

use std::path::PathBuf;

use interlace_core::{CoreError, PlanError};

/// Everything that can go wrong while pruning a model or a checkpoint.
///
/// Every variant names the file and/or tensor involved, and both sides of a disagreement.
#[derive(Debug, thiserror::Error)]
pub enum SurgeryError {
    /// A file or directory could not be read, written or renamed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`cannot read`, `cannot create`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// A set of layers or blocks to drop is invalid (out of range, repeated, or everything).
    #[error("invalid {what} to drop: {source}")]
    InvalidDrop {
        /// `text layers` or `vision blocks`.
        what: &'static str,
        /// Why the set is refused.
        source: CoreError,
    },
    /// The plan file is invalid.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The plan was made for a stack of a different depth.
    #[error("the plan is for {plan_layers} layers but {model} has {model_layers}")]
    PlanMismatch {
        /// `n_layers` of the plan.
        plan_layers: usize,
        /// Layers of the model.
        model_layers: usize,
        /// The model (directory or `the model in memory`).
        model: String,
    },
    /// A pruned directory's `interlace.json` cannot be read as a provenance record.
    #[error("invalid provenance {path}: {reason}")]
    Provenance {
        /// The `interlace.json` file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Removing layers from an in-memory stack failed.
    #[error("in-memory layer removal failed: {0}")]
    Stack(CoreError),
    /// `config.json` is missing a field, has a field of the wrong type, or disagrees with itself.
    #[error("invalid config {path}: {reason}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong, naming the field.
        reason: String,
    },
    /// The directory's `config.json` is not a decoder-only one and no layout was given.
    #[error(
        "no checkpoint layout for {path} (model_type {model_type:?}): only decoder-only configs (top-level num_hidden_layers) are recognised \
         without one; pass the family's layout (DiskPruneOptions::layout; interlace_prune::registry picks it for the supported families)"
    )]
    UnknownLayout {
        /// The config file.
        path: PathBuf,
        /// Its `model_type`.
        model_type: String,
    },
    /// Neither `model.safetensors` nor `model.safetensors.index.json` is in the directory.
    #[error("no weights in {dir}: expected model.safetensors or model.safetensors.index.json")]
    NoWeights {
        /// The model directory.
        dir: PathBuf,
    },
    /// A shard is truncated, has a corrupt header or inconsistent offsets.
    #[error("corrupt or truncated shard {path}: {reason}")]
    CorruptShard {
        /// The shard.
        path: PathBuf,
        /// What the safetensors parser found.
        reason: String,
    },
    /// The index names a shard file that does not exist.
    #[error("shard {shard} listed in {index} is missing")]
    MissingShard {
        /// The index file.
        index: PathBuf,
        /// The missing shard's path.
        shard: PathBuf,
    },
    /// The index and the shards disagree about where a tensor lives.
    #[error("{index} disagrees with the shards: {reason}")]
    IndexMismatch {
        /// The index file.
        index: PathBuf,
        /// Which tensor and which files disagree.
        reason: String,
    },
    /// The tensors of a layer contradict the config's layer count.
    #[error("tensor {tensor} in {path}: {reason}")]
    LayerTensors {
        /// The tensor.
        tensor: String,
        /// The shard holding it.
        path: PathBuf,
        /// What is inconsistent.
        reason: String,
    },
    /// A dropped vision block feeds a deepstack tap and `allow_deepstack` was not given.
    #[error("vision block {block} feeds deepstack tap {position} ({field}); dropping it also removes that tap: pass --allow-deepstack to do so")]
    TapDropped {
        /// The dropped block.
        block: usize,
        /// Its position in the tap list.
        position: usize,
        /// The config field of the tap list.
        field: &'static str,
    },
    /// Vision blocks were requested for a family without a vision tower.
    #[error("{layout} checkpoints have no vision blocks to drop")]
    NoVision {
        /// The layout's name.
        layout: &'static str,
    },
    /// The output exists and is not empty, and `force` was not given.
    #[error("output {path} exists and is not empty (pass --force to replace it)")]
    OutputExists {
        /// The output directory.
        path: PathBuf,
    },
    /// Output and source overlap, so writing could touch the source.
    #[error("output {out} and source {source_dir} overlap: the output must be outside the source directory and must not contain it")]
    OutputOverlapsSource {
        /// The output directory.
        out: PathBuf,
        /// The source model directory.
        source_dir: PathBuf,
    },
    /// The progress callback asked to stop; nothing was left behind.
    #[error("cancelled after {bytes_written} bytes; no output was written")]
    Cancelled {
        /// Bytes copied before cancellation.
        bytes_written: u64,
    },
}

impl SurgeryError {
    /// Shorthand for [`SurgeryError::Io`].
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| SurgeryError::Io { action, path, source }
    }
}
