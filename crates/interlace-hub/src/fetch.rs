//! A Hub model id to a verified snapshot directory in the standard cache.

use std::path::{Path, PathBuf};

use hf_hub::api::sync::{Api, ApiBuilder, ApiError, ApiRepo};
use hf_hub::{Cache, Repo, RepoType};
use serde_json::Value;

use crate::verify::verify;
use crate::{is_config_file, weight_files, HubError, HubOptions, ModelSource, RepoFile, RepoSnapshot};

/// The local directory a `--model` argument names: the argument itself when it is an existing
/// path, the snapshot [`fetch_model`] makes when it is `owner/name[@revision]`.
pub fn resolve_model(arg: &str, options: &HubOptions) -> Result<PathBuf, HubError> {
    match ModelSource::parse(arg)? {
        ModelSource::Local(dir) => Ok(dir),
        ModelSource::Hub { repo, revision } => fetch_model(&repo, &revision, options),
    }
}

/// Makes `repo` at `revision` available in the cache and returns its snapshot directory
/// (`{cache}/models--owner--name/snapshots/{commit}`), which holds the configuration,
/// tokenizer, processor and chat-template files and the safetensors weights.
///
/// Online, the Hub's file list (with sizes and hashes) is asked for first; files already in
/// the snapshot with the right size are kept, the others are downloaded (resuming a partial
/// file left by an earlier run) and verified. If the Hub cannot be reached, a complete cached
/// snapshot of the revision is used instead. Offline (`options.offline`), only the cache is
/// read.
pub fn fetch_model(repo: &str, revision: &str, options: &HubOptions) -> Result<PathBuf, HubError> {
    if options.offline {
        return cached_snapshot(repo, revision, &options.cache_dir);
    }
    let api = build_api(repo, options)?;
    let snapshot = match repo_info(&api, repo, RepoType::Model, revision, options) {
        Ok(snapshot) => snapshot,
        Err(unreachable @ HubError::Unreachable { .. }) => return cached_snapshot(repo, revision, &options.cache_dir).map_err(|_| unreachable),
        Err(other) => return Err(other),
    };
    let fetcher = Fetcher::new(&api, repo, RepoType::Model, options, &snapshot);
    let configs: Vec<&RepoFile> = snapshot.files.iter().filter(|f| is_config_file(&f.name)).collect();
    if !configs.iter().any(|f| f.name == "config.json") {
        return Err(HubError::Unusable { repo: repo.into(), revision: revision.into(), what: "no config.json: not a transformers checkpoint".into() });
    }
    for file in &configs {
        fetcher.fetch(file)?;
    }
    let dir = fetcher.snapshot_dir();
    let index = read_index(&dir)?;
    let weights = weight_files(snapshot.files.iter().map(|f| f.name.as_str()), index.as_ref());
    if weights.is_empty() {
        return Err(HubError::Unusable {
            repo: repo.into(),
            revision: revision.into(),
            what: "no safetensors weights (interlace reads safetensors only)".into(),
        });
    }
    for name in &weights {
        let file = snapshot.file(name).ok_or_else(|| HubError::Unusable {
            repo: repo.into(),
            revision: revision.into(),
            what: format!("an index that names {name}, which is not in the repository"),
        })?;
        fetcher.fetch(file)?;
    }
    // The revision asked for now points at this commit, so offline runs find it.
    let named = Cache::new(options.cache_dir.clone()).repo(Repo::with_revision(repo.into(), RepoType::Model, revision.into()));
    named.create_ref(&snapshot.commit).map_err(HubError::io(&options.cache_dir))?;
    Ok(dir)
}

/// The snapshot of `repo` at `revision` already in `cache_dir` (a hub cache directory), if it is
/// complete: `config.json` and the weights (every shard its index names). Reads no network.
pub fn cached_snapshot(repo: &str, revision: &str, cache_dir: &Path) -> Result<PathBuf, HubError> {
    let not_cached = |missing: String| HubError::NotCached { cache: cache_dir.into(), missing };
    let cache = Cache::new(cache_dir.into()).repo(Repo::with_revision(repo.into(), RepoType::Model, revision.into()));
    let config = cache.get("config.json").ok_or_else(|| not_cached(format!("has no snapshot of {repo}@{revision}")))?;
    let dir = config.parent().map(Path::to_path_buf).unwrap_or_default();
    let index = read_index(&dir)?;
    let names: Vec<String> = std::fs::read_dir(&dir).map_err(HubError::io(&dir))?.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    let weights = weight_files(names.iter().map(String::as_str), index.as_ref());
    if weights.is_empty() {
        return Err(not_cached(format!("holds {repo}@{revision} without its safetensors weights")));
    }
    let missing: Vec<&String> = weights.iter().filter(|w| !dir.join(w).exists()).collect();
    if !missing.is_empty() {
        return Err(not_cached(format!("holds {repo}@{revision} without {}", missing.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", "))));
    }
    Ok(dir)
}

/// The blocking client for `options`.
pub(crate) fn build_api(repo: &str, options: &HubOptions) -> Result<Api, HubError> {
    ApiBuilder::from_cache(Cache::new(options.cache_dir.clone()))
        .with_endpoint(options.endpoint.clone())
        .with_token(options.token.clone())
        .with_progress(options.progress)
        .with_retries(options.retries)
        .build()
        .map_err(|e| HubError::Protocol { repo: repo.into(), reason: e.to_string() })
}

/// Downloads and verifies the files of one snapshot.
pub(crate) struct Fetcher<'a> {
    api: ApiRepo,
    repo: &'a str,
    repo_type: RepoType,
    options: &'a HubOptions,
    snapshot: &'a RepoSnapshot,
}

impl<'a> Fetcher<'a> {
    pub(crate) fn new(api: &Api, repo: &'a str, repo_type: RepoType, options: &'a HubOptions, snapshot: &'a RepoSnapshot) -> Self {
        let api = api.repo(Repo::with_revision(repo.into(), repo_type, snapshot.commit.clone()));
        Self { api, repo, repo_type, options, snapshot }
    }

    pub(crate) fn snapshot_dir(&self) -> PathBuf {
        Cache::new(self.options.cache_dir.clone()).repo(Repo::new(self.repo.into(), self.repo_type)).pointer_path(&self.snapshot.commit)
    }

    /// Brings `file` into the snapshot, verified. A file already there with the right size is
    /// kept as it is (it was verified when it was downloaded).
    pub(crate) fn fetch(&self, file: &RepoFile) -> Result<(), HubError> {
        let dest = self.snapshot_dir().join(&file.name);
        if std::fs::metadata(&dest).is_ok_and(|m| m.len() == file.size) {
            return Ok(());
        }
        remove_entry(&dest)?;
        let path = self.api.download(&file.name).map_err(|e| self.download_error(file, e))?;
        if let Err(what) = verify(&path, file)? {
            remove_entry(&path)?;
            return Err(HubError::Corrupt { repo: self.repo.into(), file: file.name.clone(), what });
        }
        Ok(())
    }

    fn download_error(&self, file: &RepoFile, error: ApiError) -> HubError {
        match classify(&error) {
            Failure::Status(status) => status_error(status, self.repo, &self.snapshot.commit, self.options),
            Failure::Connection(reason) | Failure::Other(reason) => {
                HubError::Interrupted { repo: self.repo.into(), file: file.name.clone(), cache: self.options.cache_dir.clone(), reason }
            }
        }
    }
}

/// The Hub's file list of `repo` at `revision`, with sizes and hashes.
pub(crate) fn repo_info(api: &Api, repo: &str, repo_type: RepoType, revision: &str, options: &HubOptions) -> Result<RepoSnapshot, HubError> {
    let request = api.repo(Repo::with_revision(repo.into(), repo_type, revision.into())).info_request().query("blobs", "true");
    let text = request.call().and_then(|mut response| response.body_mut().read_to_string()).map_err(|e| match classify(&ApiError::from(Box::new(e))) {
        Failure::Status(status) => status_error(status, repo, revision, options),
        Failure::Connection(reason) => HubError::Unreachable { endpoint: options.endpoint.clone(), reason },
        Failure::Other(reason) => HubError::Protocol { repo: repo.into(), reason },
    })?;
    RepoSnapshot::from_api_json(repo, &text)
}

fn read_index(dir: &Path) -> Result<Option<Value>, HubError> {
    let path = dir.join("model.safetensors.index.json");
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(HubError::io(&path))?;
    serde_json::from_str(&text).map(Some).map_err(|e| HubError::io(&path)(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// Removes a snapshot entry and, for a link into `blobs/`, the blob it points at.
fn remove_entry(path: &Path) -> Result<(), HubError> {
    if let Ok(target) = std::fs::canonicalize(path) {
        if target != path {
            std::fs::remove_file(&target).map_err(HubError::io(&target))?;
        }
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(HubError::io(path)(e)),
        _ => Ok(()),
    }
}

enum Failure {
    Status(u16),
    Connection(String),
    Other(String),
}

fn classify(error: &ApiError) -> Failure {
    match error {
        ApiError::RequestError(inner) => match inner.as_ref() {
            ureq::Error::StatusCode(status) => Failure::Status(*status),
            ureq::Error::Io(e) => Failure::Connection(e.to_string()),
            ureq::Error::ConnectionFailed | ureq::Error::HostNotFound | ureq::Error::Timeout(_) => Failure::Connection(inner.to_string()),
            other => Failure::Other(other.to_string()),
        },
        ApiError::IoError(e) => Failure::Connection(e.to_string()),
        ApiError::TooManyRetries(last) => match classify(last) {
            Failure::Status(status) => Failure::Status(status),
            Failure::Connection(reason) | Failure::Other(reason) => Failure::Connection(format!("{reason}, after retrying")),
        },
        other => Failure::Other(other.to_string()),
    }
}

fn status_error(status: u16, repo: &str, revision: &str, options: &HubOptions) -> HubError {
    match status {
        401 | 403 => HubError::AccessDenied { repo: repo.into(), token_sent: options.token.is_some() },
        404 => HubError::NotFound { repo: repo.into(), revision: revision.into(), endpoint: options.endpoint.clone() },
        other => HubError::Protocol { repo: repo.into(), reason: format!("HTTP {other}") },
    }
}
