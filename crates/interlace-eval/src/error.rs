//! The one error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong while evaluating.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A benchmark file is not in a layout we read (no header, no question column, ...).
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A row that cannot be evaluated, under `--strict` (otherwise it is skipped and reported).
    #[error("{path}: row {index}: {reason}")]
    Malformed {
        /// The benchmark file.
        path: PathBuf,
        /// The row's `index` (or its line number when it has none).
        index: String,
        /// What is wrong.
        reason: String,
    },
    /// A row that turned out unusable while it was evaluated (its image does not decode, the
    /// processor refuses it); the benchmark loop reports it as malformed.
    #[error("row {index}: {reason}")]
    Item {
        /// The row's `index`.
        index: String,
        /// What is wrong.
        reason: String,
    },
    /// The model failed.
    #[error("model: {0}")]
    Model(Box<dyn std::error::Error + Send + Sync>),
    /// Tokenizing or detokenizing failed.
    #[error("processor: {0}")]
    Processor(String),
    /// Held-out conversation data or its loss failed.
    #[error("held-out data: {0}")]
    HeldOut(#[from] interlace_train::TrainError),
    /// Invalid arguments (empty benchmark, zero repeats, ...).
    #[error("{0}")]
    Input(String),
}
