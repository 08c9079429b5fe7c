//! The Hub's description of a repository at a revision (`/api/models/{id}/revision/{rev}?blobs=true`).

use serde_json::Value;

use crate::HubError;

/// One file of a repository snapshot, as the Hub describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFile {
    /// Path inside the repository (`model-00001-of-00004.safetensors`).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content (LFS files, the weights among them).
    pub sha256: Option<String>,
    /// Git blob id: SHA-1 of `blob {size}\0` followed by the content (files kept in git).
    pub git_blob_id: Option<String>,
}

/// A repository at one commit: the commit and its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSnapshot {
    /// The commit the revision points at.
    pub commit: String,
    /// Every file of the commit.
    pub files: Vec<RepoFile>,
}

impl RepoSnapshot {
    /// Reads the JSON the Hub answers to `/api/models/{id}/revision/{rev}?blobs=true`.
    pub fn from_api_json(repo: &str, text: &str) -> Result<Self, HubError> {
        let bad = |reason: &str| HubError::Protocol { repo: repo.into(), reason: reason.into() };
        let json: Value = serde_json::from_str(text).map_err(|e| bad(&format!("model info is not JSON ({e})")))?;
        let commit = json["sha"].as_str().filter(|s| !s.is_empty()).ok_or_else(|| bad("model info has no commit (`sha`)"))?;
        let siblings = json["siblings"].as_array().ok_or_else(|| bad("model info has no file list (`siblings`)"))?;
        let files = siblings
            .iter()
            .map(|s| {
                let name = s["rfilename"].as_str().ok_or_else(|| bad("a file without `rfilename`"))?;
                let size = s["size"].as_u64().ok_or_else(|| bad(&format!("{name} has no size (was `blobs=true` ignored?)")))?;
                let text = |v: &Value| v.as_str().map(str::to_ascii_lowercase);
                Ok(RepoFile { name: name.into(), size, sha256: text(&s["lfs"]["sha256"]), git_blob_id: text(&s["blobId"]) })
            })
            .collect::<Result<_, HubError>>()?;
        Ok(Self { commit: commit.into(), files })
    }

    /// The file named `name`, if the snapshot has it.
    pub fn file(&self, name: &str) -> Option<&RepoFile> {
        self.files.iter().find(|f| f.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_hub_answer() {
        let text = r#"{"id": "o/n", "sha": "abc123", "siblings": [
            {"rfilename": "config.json", "blobId": "8ACD02", "size": 66},
            {"rfilename": "model.safetensors", "blobId": "cd1c", "size": 22, "lfs": {"sha256": "F934", "size": 22, "pointerSize": 127}}]}"#;
        let snapshot = RepoSnapshot::from_api_json("o/n", text).unwrap();
        assert_eq!(snapshot.commit, "abc123");
        assert_eq!(snapshot.file("config.json").unwrap(), &RepoFile { name: "config.json".into(), size: 66, sha256: None, git_blob_id: Some("8acd02".into()) });
        assert_eq!(snapshot.file("model.safetensors").unwrap().sha256.as_deref(), Some("f934"));
    }

    #[test]
    fn an_answer_without_sizes_is_refused() {
        let error = RepoSnapshot::from_api_json("o/n", r#"{"sha": "abc", "siblings": [{"rfilename": "config.json"}]}"#).unwrap_err();
        assert!(error.to_string().contains("config.json has no size"), "{error}");
        assert!(RepoSnapshot::from_api_json("o/n", "<html>").is_err());
    }
}
