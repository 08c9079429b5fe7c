//! The work-directory guard shared by the examples: a directory is emptied only when an earlier
//! run of an example marked it as its own.

use std::error::Error;
use std::path::Path;

/// File that marks a work directory as this example's own.
const MARKER: &str = ".interlace-example";

/// Makes `work` an empty directory this example owns, never deleting anything it did not make.
///
/// A missing or empty directory is taken (and marked). A directory holding the marker was made
/// by an earlier run of this example and is emptied. Any other directory — `--work ~` by
/// mistake, or a folder with someone's files — is refused: the example does not delete what
/// it did not create.
pub fn claim_work_dir(work: &Path) -> Result<(), Box<dyn Error>> {
    let marker = work.join(MARKER);
    match std::fs::symlink_metadata(work) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(work)?,
        Err(e) => return Err(format!("cannot use --work {}: {e}", work.display()).into()),
        Ok(meta) if !meta.is_dir() => return Err(format!("--work {} exists and is not a directory", work.display()).into()),
        Ok(_) if marker.is_file() => {
            // Ours: remove what an earlier run wrote, entry by entry (the directory itself stays).
            for entry in std::fs::read_dir(work)? {
                let path = entry?.path();
                if path.is_dir() && !path.is_symlink() {
                    std::fs::remove_dir_all(&path)?
                } else {
                    std::fs::remove_file(&path)?
                }
            }
        }
        Ok(_) if std::fs::read_dir(work)?.next().is_none() => {}
        Ok(_) => {
            return Err(format!(
                "--work {} exists, is not empty and was not made by this example (no {MARKER} file); choose another --work, or empty it yourself",
                work.display()
            )
            .into())
        }
    }
    std::fs::write(&marker, "made by an interlace example; the examples empty this directory on every run\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_work_dir_with_user_content_is_never_deleted() {
        let root = tempfile::tempdir().unwrap();
        let theirs = root.path().join("theirs");
        std::fs::create_dir_all(theirs.join("sub")).unwrap();
        std::fs::write(theirs.join("notes.txt"), "keep me").unwrap();
        let err = claim_work_dir(&theirs).unwrap_err().to_string();
        assert!(err.contains("was not made by this example"), "{err}");
        assert_eq!(std::fs::read_to_string(theirs.join("notes.txt")).unwrap(), "keep me");
        assert!(theirs.join("sub").is_dir());

        // A file, not a directory: refused, untouched.
        let file = root.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(claim_work_dir(&file).is_err());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");

        // New and empty directories are taken and marked; a marked one is emptied on the next run.
        let ours = root.path().join("ours");
        claim_work_dir(&ours).unwrap();
        assert!(ours.join(MARKER).is_file());
        std::fs::create_dir_all(ours.join("pruned")).unwrap();
        std::fs::write(ours.join("plan.json"), "{}").unwrap();
        claim_work_dir(&ours).unwrap();
        let left: Vec<_> = std::fs::read_dir(&ours).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from(MARKER)]);
        let empty = root.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        claim_work_dir(&empty).unwrap();
        assert!(empty.join(MARKER).is_file());
    }
}
