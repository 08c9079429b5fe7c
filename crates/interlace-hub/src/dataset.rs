//! Dataset repositories (`--from HuggingFaceM4/FineVision`): the file list, and single files
//! downloaded on demand into the standard cache (`datasets--owner--name/`), verified like model
//! files, so a conversion fetches only the parquet shards it reads.

use std::path::PathBuf;

use hf_hub::api::sync::Api;
use hf_hub::{Cache, Repo, RepoType};

use crate::fetch::{build_api, repo_info, Fetcher};
use crate::{HubError, HubOptions, RepoFile, RepoSnapshot};

/// A dataset repository at one commit.
pub struct HubDataset {
    repo: String,
    options: HubOptions,
    snapshot: RepoSnapshot,
    /// `None` offline: only files already in the cached snapshot can be had.
    api: Option<Api>,
}

impl HubDataset {
    /// Asks the Hub for the file list of dataset `repo` at `revision` (a branch, tag or
    /// commit). Offline (`options.offline`), or when the Hub cannot be reached, the snapshot the
    /// revision last resolved to in the cache is used, with the files it holds.
    pub fn open(repo: &str, revision: &str, options: &HubOptions) -> Result<Self, HubError> {
        if options.offline {
            return Self::cached(repo, revision, options);
        }
        let api = build_api(repo, options)?;
        match repo_info(&api, repo, RepoType::Dataset, revision, options) {
            Ok(snapshot) => {
                let cache = Cache::new(options.cache_dir.clone()).repo(Repo::with_revision(repo.into(), RepoType::Dataset, revision.into()));
                cache.create_ref(&snapshot.commit).map_err(HubError::io(&options.cache_dir))?;
                Ok(Self { repo: repo.into(), options: options.clone(), snapshot, api: Some(api) })
            }
            Err(unreachable @ HubError::Unreachable { .. }) => Self::cached(repo, revision, options).map_err(|_| unreachable),
            Err(other) => Err(other),
        }
    }

    fn cached(repo: &str, revision: &str, options: &HubOptions) -> Result<Self, HubError> {
        let cache = Cache::new(options.cache_dir.clone()).repo(Repo::with_revision(repo.into(), RepoType::Dataset, revision.into()));
        let not_cached = || HubError::NotCached { cache: options.cache_dir.clone(), missing: format!("has no snapshot of dataset {repo}@{revision}") };
        let refs = options.cache_dir.join(Repo::new(repo.into(), RepoType::Dataset).folder_name()).join("refs").join(revision);
        let commit = std::fs::read_to_string(&refs).map(|c| c.trim().to_string()).unwrap_or_else(|_| revision.to_string());
        let dir = cache.pointer_path(&commit);
        if !dir.is_dir() {
            return Err(not_cached());
        }
        let mut files = Vec::new();
        list_files(&dir, &dir, &mut files)?;
        Ok(Self { repo: repo.into(), options: options.clone(), snapshot: RepoSnapshot { commit, files }, api: None })
    }

    /// The commit the revision resolved to.
    pub fn commit(&self) -> &str {
        &self.snapshot.commit
    }

    /// Every file of the snapshot (offline: every file already cached).
    pub fn files(&self) -> &[RepoFile] {
        &self.snapshot.files
    }

    /// The snapshot directory, where fetched files appear under their repository paths.
    pub fn snapshot_dir(&self) -> PathBuf {
        Cache::new(self.options.cache_dir.clone()).repo(Repo::new(self.repo.clone(), RepoType::Dataset)).pointer_path(&self.snapshot.commit)
    }

    /// Makes file `name` available, downloading (or resuming) and verifying it unless the cache
    /// has it, and returns its path in the snapshot directory.
    pub fn fetch(&self, name: &str) -> Result<PathBuf, HubError> {
        let file = self.snapshot.file(name).ok_or_else(|| match self.api {
            Some(_) => HubError::Unusable { repo: self.repo.clone(), revision: self.snapshot.commit.clone(), what: format!("no file {name}") },
            None => HubError::NotCached { cache: self.options.cache_dir.clone(), missing: format!("holds dataset {} without {name}", self.repo) },
        })?;
        if let Some(api) = &self.api {
            Fetcher::new(api, &self.repo, RepoType::Dataset, &self.options, &self.snapshot).fetch(file)?;
        }
        Ok(self.snapshot_dir().join(name))
    }
}

fn list_files(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<RepoFile>) -> Result<(), HubError> {
    for entry in std::fs::read_dir(dir).map_err(HubError::io(dir))? {
        let path = entry.map_err(HubError::io(dir))?.path();
        if path.is_dir() {
            list_files(root, &path, out)?;
        } else if let (Ok(meta), Ok(rel)) = (std::fs::metadata(&path), path.strip_prefix(root)) {
            let name = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            out.push(RepoFile { name, size: meta.len(), sha256: None, git_blob_id: None });
        }
    }
    Ok(())
}
