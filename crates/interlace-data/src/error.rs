//! What can go wrong while preparing data, with the file (and row) it happened at.

use std::path::{Path, PathBuf};

/// An error from reading a dataset or writing its records.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file is not readable parquet.
    #[error("{}: not a readable parquet file: {source}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: parquet::errors::ParquetError,
    },
    /// A parquet file lacks a column the conversion needs, or holds it with another type.
    #[error("{}: {what}", path.display())]
    Schema {
        /// The file.
        path: PathBuf,
        /// What is missing or mistyped.
        what: String,
    },
    /// One row could not be converted (an undecodable image, a choice index out of range).
    #[error("{}, row {row}: {what}", path.display())]
    Row {
        /// The parquet file.
        path: PathBuf,
        /// The row's index within its split.
        row: u64,
        /// What is wrong with it.
        what: String,
    },
    /// The source directory does not hold what the command reads.
    #[error("{}: {what}", path.display())]
    Source {
        /// The directory.
        path: PathBuf,
        /// What is missing.
        what: String,
    },
    /// The output directory holds files this run must not overwrite or cannot resume.
    #[error("{}: {what}", path.display())]
    Output {
        /// The file in the way.
        path: PathBuf,
        /// Why, and what to do.
        what: String,
    },
    /// Reaching the Hub or its cache failed.
    #[error(transparent)]
    Hub(#[from] interlace_hub::HubError),
    /// An argument is out of range.
    #[error("{0}")]
    Argument(String),
}

impl DataError {
    /// A closure that wraps an I/O error with `path`, for `map_err`.
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
        move |source| DataError::Io { path: path.to_path_buf(), source }
    }
}
