//! The output is built in a temporary directory beside the target and renamed into place only
//! when complete, so an interrupted or failed run never leaves a half-written model.

use std::path::{Path, PathBuf};

use crate::SurgeryError;

/// A temporary output directory, removed on drop unless committed.
#[derive(Debug)]
pub struct Staging {
    /// The temporary directory.
    pub path: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl Staging {
    /// Checks `target` (not overlapping `source`, empty unless `force`) and creates the
    /// temporary directory beside it.
    pub fn create(source: &Path, target: &Path, force: bool) -> Result<Self, SurgeryError> {
        let target = absolute_target(target)?;
        check_no_overlap(source, &target)?;
        if !force && is_non_empty(&target)? {
            return Err(SurgeryError::OutputExists { path: target });
        }
        let path = sibling(&target, "tmp");
        if path.exists() {
            // Left by a run that was killed (SIGKILL, power loss): it was never a finished model.
            std::fs::remove_dir_all(&path).map_err(SurgeryError::io("cannot remove stale", &path))?;
        }
        std::fs::create_dir(&path).map_err(SurgeryError::io("cannot create", &path))?;
        Ok(Self { path, target, committed: false })
    }

    /// Moves the finished output into place (replacing an existing target, which `create`
    /// only allowed when empty or forced).
    pub fn commit(mut self) -> Result<PathBuf, SurgeryError> {
        let old = sibling(&self.target, "old");
        let had_target = self.target.exists();
        if had_target {
            std::fs::rename(&self.target, &old).map_err(SurgeryError::io("cannot move aside", &self.target))?;
        }
        std::fs::rename(&self.path, &self.target).map_err(SurgeryError::io("cannot move into place", &self.target))?;
        self.committed = true;
        if had_target {
            remove_any(&old).map_err(SurgeryError::io("cannot remove the replaced output", &old))?;
        }
        Ok(self.target.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the error that got us here is what the user needs to see.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// `target` made absolute with a canonical parent (created if missing).
fn absolute_target(target: &Path) -> Result<PathBuf, SurgeryError> {
    let name = target.file_name().ok_or_else(|| SurgeryError::Io {
        action: "invalid output path",
        path: target.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "the output path must end in a directory name"),
    })?;
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(SurgeryError::io("cannot create", &parent))?;
    let parent = parent.canonicalize().map_err(SurgeryError::io("cannot resolve", &parent))?;
    Ok(parent.join(name))
}

fn check_no_overlap(source: &Path, target: &Path) -> Result<(), SurgeryError> {
    let source = source.canonicalize().map_err(SurgeryError::io("cannot resolve", source))?;
    // A target that is a symlink to a directory resolves to that directory.
    let resolved = target.canonicalize().unwrap_or_else(|_| target.to_path_buf());
    for t in [target, resolved.as_path()] {
        if t.starts_with(&source) || source.starts_with(t) {
            return Err(SurgeryError::OutputOverlapsSource { out: target.to_path_buf(), source_dir: source });
        }
    }
    Ok(())
}

fn is_non_empty(path: &Path) -> Result<bool, SurgeryError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(SurgeryError::Io { action: "cannot inspect", path: path.to_path_buf(), source: e }),
        Ok(meta) if meta.is_dir() => {
            let mut entries = std::fs::read_dir(path).map_err(SurgeryError::io("cannot list", path))?;
            Ok(entries.next().is_some())
        }
        Ok(_) => Ok(true),
    }
}

fn sibling(target: &Path, what: &str) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    target.with_file_name(format!(".{name}.interlace-{what}-{}", std::process::id()))
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(path)?.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}
