//! Typed errors of chat-template loading and rendering.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, ChatError>;

/// What can go wrong while loading or rendering a chat template. Variants about a file name it;
/// variants about a configuration value also name the JSON field.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// A required file does not exist (or none of the accepted alternatives exists).
    #[error("missing file {}: {reason}", path.display())]
    MissingFile {
        /// The file that was looked for (the first alternative when there are several).
        path: PathBuf,
        /// What was looked for and why it is needed.
        reason: String,
    },
    /// A file exists but cannot be read or parsed at all.
    #[error("invalid file {}: {reason}", path.display())]
    InvalidFile {
        /// The offending file.
        path: PathBuf,
        /// Why it was rejected.
        reason: String,
    },
    /// A JSON configuration file has a field with an unusable value.
    #[error("invalid config {}: field `{field}`: {reason}", path.display())]
    InvalidConfig {
        /// The configuration file.
        path: PathBuf,
        /// The JSON field (dotted path) at fault.
        field: String,
        /// Why the value was rejected.
        reason: String,
    },
    /// The chat template failed to compile or to render.
    #[error("chat template {}: {reason}", source_name)]
    Template {
        /// Where the template came from (file name, possibly with the JSON field).
        source_name: String,
        /// The template engine's message.
        reason: String,
    },
}

/// Reads a JSON file; a missing file and an unreadable or invalid one are told apart.
pub(crate) fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ChatError::MissingFile { path: path.to_path_buf(), reason: e.to_string() }
        } else {
            ChatError::InvalidFile { path: path.to_path_buf(), reason: e.to_string() }
        }
    })?;
    serde_json::from_str(&text).map_err(|e| ChatError::InvalidFile { path: path.to_path_buf(), reason: format!("not valid JSON: {e}") })
}
