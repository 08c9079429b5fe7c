//! What can go wrong between a model id and a snapshot directory, worded as what to do.

use std::path::PathBuf;

/// Errors of [`crate::resolve_model`] and [`crate::fetch_model`].
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The argument is neither an existing path nor `owner/name[@revision]`.
    #[error("`{0}` is neither a directory nor a Hub model id (owner/name or owner/name@revision)")]
    BadModelArgument(String),
    /// The repository or the revision does not exist (or is private and no token was sent).
    #[error(
        "{repo}@{revision} was not found on {endpoint}: check the id and the revision (a private repository also answers 404 without a token: set HF_TOKEN)"
    )]
    NotFound {
        /// `owner/name`.
        repo: String,
        /// The revision asked for.
        revision: String,
        /// The Hub asked.
        endpoint: String,
    },
    /// The Hub refused access: a gated or private repository.
    #[error("{repo} is gated or private and {}: accept its terms on the Hub, then set HF_TOKEN (or run `huggingface-cli login`)", if *.token_sent { "the token sent has no access to it" } else { "no token was sent" })]
    AccessDenied {
        /// `owner/name`.
        repo: String,
        /// Whether a token was sent (so it is the wrong one).
        token_sent: bool,
    },
    /// The Hub could not be reached and the cache does not hold the model.
    #[error("cannot reach {endpoint} ({reason}); with the files already in the cache, set HF_HUB_OFFLINE=1 to use them without the network")]
    Unreachable {
        /// The Hub asked.
        endpoint: String,
        /// What the connection reported.
        reason: String,
    },
    /// Offline mode and no usable snapshot in the cache.
    #[error("HF_HUB_OFFLINE is set and the cache {cache} {missing}: unset HF_HUB_OFFLINE to download it")]
    NotCached {
        /// The cache's hub directory.
        cache: PathBuf,
        /// What is missing.
        missing: String,
    },
    /// A downloaded file does not match the Hub's metadata; it was removed from the cache.
    #[error("{file} of {repo} is corrupt: {what} (the file was removed from the cache; run again to download it anew)")]
    Corrupt {
        /// `owner/name`.
        repo: String,
        /// The file, relative to the repository.
        file: String,
        /// Expected against found.
        what: String,
    },
    /// A download failed part-way; its partial file stays in the cache.
    #[error("downloading {file} of {repo} failed: {reason} (the partial file stays in {cache}; run again to resume it)")]
    Interrupted {
        /// `owner/name`.
        repo: String,
        /// The file, relative to the repository.
        file: String,
        /// The cache's hub directory.
        cache: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The repository holds nothing interlace can load.
    #[error("{repo}@{revision} has {what}")]
    Unusable {
        /// `owner/name`.
        repo: String,
        /// The revision.
        revision: String,
        /// What is missing.
        what: String,
    },
    /// The Hub's answer could not be read.
    #[error("unexpected answer from the Hub for {repo}: {reason}")]
    Protocol {
        /// `owner/name`.
        repo: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A file of the cache could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl HubError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
