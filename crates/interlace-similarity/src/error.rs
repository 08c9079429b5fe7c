//! The crate's single error type.

use std::path::PathBuf;

use interlace_core::{CoreError, PlanError};

/// Everything that can go wrong in calibration, output or selection. Messages name the file,
/// line, option or strategy involved.
#[derive(Debug, thiserror::Error)]
pub enum SimilarityError {
    /// A file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// A whole file is not what it should be (not JSON, wrong shape).
    #[error("invalid file {path}: {reason}")]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// One calibration record is malformed or names a missing or unreadable image.
    #[error("{path}:{line}: {reason}")]
    Record {
        /// The data file.
        path: PathBuf,
        /// 1-based line where the record starts.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A command-line or configuration value is out of range.
    #[error("invalid {option}: {reason}")]
    InvalidOption {
        /// The option (`--sample-portion`, `--packs`, ...).
        option: &'static str,
        /// Why the value is refused.
        reason: String,
    },
    /// The model's forward pass failed.
    #[error("forward pass failed: {0}")]
    Model(String),
    /// A hidden-state observer or layer-set check failed.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A selection request cannot be satisfied.
    #[error("strategy `{strategy}`: {reason}")]
    Selection {
        /// The strategy.
        strategy: String,
        /// Why no plan exists.
        reason: String,
    },
    /// The plan produced is inconsistent (a bug, or an invalid `--drop` list).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The similarity plot could not be drawn.
    #[error("cannot draw {path}: {reason}")]
    Plot {
        /// The PNG file.
        path: PathBuf,
        /// The drawing or encoding error.
        reason: String,
    },
}

impl SimilarityError {
    /// An [`SimilarityError::Io`] error for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
