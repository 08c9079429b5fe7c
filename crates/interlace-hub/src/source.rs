//! What a `--model` argument names: a local directory or a Hub repository at a revision.

use std::path::{Path, PathBuf};

use crate::HubError;

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A directory on this machine, used as it is.
    Local(PathBuf),
    /// A model repository on the Hub at a revision (branch, tag or commit).
    Hub {
        /// `owner/name`.
        repo: String,
        /// Branch, tag or commit; `main` when the argument names none.
        revision: String,
    },
}

impl ModelSource {
    /// Reads a `--model` argument: a path that exists is [`ModelSource::Local`]; otherwise
    /// `owner/name` or `owner/name@revision` is [`ModelSource::Hub`]. Anything else (a path
    /// that does not exist and is not a repository id) is an error that says both.
    pub fn parse(arg: &str) -> Result<Self, HubError> {
        if Path::new(arg).exists() {
            return Ok(Self::Local(arg.into()));
        }
        let (repo, revision) = match arg.split_once('@') {
            Some((repo, revision)) => (repo, revision),
            None => (arg, "main"),
        };
        if is_repo_id(repo) && is_revision(revision) {
            return Ok(Self::Hub { repo: repo.into(), revision: revision.into() });
        }
        Err(HubError::BadModelArgument(arg.into()))
    }
}

/// `owner/name` as the Hub spells repository ids: two non-empty parts of letters, digits, `-`,
/// `_` and `.`, neither starting with `-` or `.`, no `--` or `..`, at most 96 characters each.
fn is_repo_id(id: &str) -> bool {
    let mut parts = id.split('/');
    let (Some(owner), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    [owner, name].iter().all(|part| {
        !part.is_empty()
            && part.len() <= 96
            && part.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && !part.starts_with(['-', '.'])
            && !part.contains("--")
            && !part.contains("..")
    })
}

/// A branch, tag or commit: non-empty, no whitespace, no `..` (it becomes a cache path).
fn is_revision(revision: &str) -> bool {
    !revision.is_empty() && !revision.chars().any(char::is_whitespace) && !revision.contains("..") && !revision.starts_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(repo: &str, revision: &str) -> ModelSource {
        ModelSource::Hub { repo: repo.into(), revision: revision.into() }
    }

    #[test]
    fn repository_ids_and_revisions() {
        assert_eq!(ModelSource::parse("Qwen/Qwen3-VL-8B-Instruct").unwrap(), hub("Qwen/Qwen3-VL-8B-Instruct", "main"));
        assert_eq!(ModelSource::parse("Qwen/Qwen3-VL-8B-Instruct@v1.0").unwrap(), hub("Qwen/Qwen3-VL-8B-Instruct", "v1.0"));
        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(ModelSource::parse(&format!("meta-llama/Llama-3.2-1B@{commit}")).unwrap(), hub("meta-llama/Llama-3.2-1B", commit));
        assert_eq!(ModelSource::parse("org/name@refs/pr/1").unwrap(), hub("org/name", "refs/pr/1"));
    }

    #[test]
    fn an_existing_path_is_local_even_if_it_looks_like_an_id() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("org/name")).unwrap();
        let arg = dir.path().join("org/name");
        assert_eq!(ModelSource::parse(arg.to_str().unwrap()).unwrap(), ModelSource::Local(arg));
    }

    #[test]
    fn neither_a_directory_nor_an_id() {
        for arg in ["./missing-dir", "/no/such/dir", "gpt2", "a/b/c", "org/-name", "org/na--me", "org/name@", "org/name@a b", "org/../x", ""] {
            let error = ModelSource::parse(arg).unwrap_err();
            assert!(matches!(error, HubError::BadModelArgument(_)), "{arg}: {error}");
            assert!(error.to_string().contains("neither a directory nor a Hub model id"), "{error}");
        }
    }
}
