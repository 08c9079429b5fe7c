use std::path::PathBuf;

use interlace_core::CoreError;
use interlace_qwen3vl::Qwen3VlError;
use thiserror::Error;

/// Everything that can go wrong while loading or running a text decoder. Each message names the
/// file, field or token involved.
#[derive(Debug, Error)]
pub enum LlamaError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// `config.json` is not valid JSON, lacks a field or asks for something this crate does not
    /// compute (another activation, a RoPE variant without an implementation here).
    #[error("invalid config {path}: field `{field}`: {reason}")]
    Config {
        /// The configuration file (empty when parsed from memory).
        path: PathBuf,
        /// The field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading the weights failed (missing or misshapen tensor, corrupt shard, unread tensors).
    #[error(transparent)]
    Weights(#[from] Qwen3VlError),
    /// An input the model cannot run (empty, token outside the vocabulary, used cache).
    #[error("{0}")]
    Input(String),
    /// A layer set or observer failure from the shared vocabulary.
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// `Result` with [`LlamaError`].
pub type Result<T, E = LlamaError> = std::result::Result<T, E>;
