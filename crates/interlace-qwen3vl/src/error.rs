use std::path::PathBuf;

use interlace_core::CoreError;
use thiserror::Error;

use crate::processor::ProcessorError;

/// Everything that can go wrong while loading or running Qwen3-VL.
///
/// Every variant names the file, tensor or field involved so the message alone tells a user
/// what to fix.
#[derive(Debug, Error)]
pub enum Qwen3VlError {
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// `config.json` is not valid JSON, lacks a field or holds a value the model cannot use.
    #[error("invalid config {path}: field `{field}`: {reason}")]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// Dotted path of the field, e.g. `text_config.num_attention_heads`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A safetensors file is corrupt or truncated.
    #[error("corrupt or truncated safetensors file {path}: {reason}")]
    CorruptWeights {
        /// The shard.
        path: PathBuf,
        /// The parser's explanation.
        reason: String,
    },
    /// `model.safetensors.index.json` is malformed or disagrees with the shards.
    #[error("invalid weight index {path}: {reason}")]
    InvalidIndex {
        /// The index file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The index names a shard file that does not exist.
    #[error("missing shard {shard} listed in {index}")]
    MissingShard {
        /// The index file.
        index: PathBuf,
        /// The shard it names.
        shard: PathBuf,
    },
    /// The model directory has neither `model.safetensors` nor `model.safetensors.index.json`.
    #[error("no weights in {dir}: expected model.safetensors or model.safetensors.index.json")]
    NoWeights {
        /// The model directory.
        dir: PathBuf,
    },
    /// A tensor the model needs is absent from the checkpoint.
    #[error("missing tensor `{name}` (expected shape {expected:?}) in {location}")]
    MissingTensor {
        /// Where it was looked for (a file or a directory).
        location: PathBuf,
        /// Tensor name.
        name: String,
        /// The shape the model expects.
        expected: Vec<usize>,
    },
    /// The checkpoint holds tensors the model does not use.
    #[error("unexpected tensor(s) in {location}: {names:?} (the config may not match the weights)")]
    UnexpectedTensors {
        /// The model directory.
        location: PathBuf,
        /// The unused tensor names (at most a few are listed).
        names: Vec<String>,
    },
    /// A tensor has a shape other than the config implies.
    #[error("tensor `{name}` in {path} has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The shard holding it.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Shape implied by the config.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// A tensor is stored in a dtype the loader does not convert.
    #[error("tensor `{name}` in {path} has unsupported dtype {dtype} (supported: BF16, F16, F32)")]
    UnsupportedDtype {
        /// The shard holding it.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// The dtype in the file.
        dtype: String,
    },
    /// Model inputs are inconsistent (for example image tokens without images).
    #[error("invalid model input: {0}")]
    Input(String),
    /// A processor step failed.
    #[error(transparent)]
    Processor(#[from] ProcessorError),
    /// A layer-set or observer error from the shared traits.
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Qwen3VlError> = std::result::Result<T, E>;
