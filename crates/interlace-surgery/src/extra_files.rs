//! Copying the files of a model directory that surgery does not rewrite (tokenizer, chat
//! template, processor and generation configs, model card, ...).

use std::collections::HashSet;
use std::path::Path;

use crate::SurgeryError;

/// Copies every entry of `source` not named in `skip` into `dest`, recursing into directories
/// and following symlinks (Hugging Face cache snapshots are made of symlinks to blobs).
/// Returns the copied file names (top level), sorted.
pub fn copy_extra_files(source: &Path, dest: &Path, skip: &HashSet<String>) -> Result<Vec<String>, SurgeryError> {
    let mut copied = Vec::new();
    for entry in std::fs::read_dir(source).map_err(SurgeryError::io("cannot list", source))? {
        let entry = entry.map_err(SurgeryError::io("cannot list", source))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if skip.contains(&name) {
            continue;
        }
        copy_entry(&entry.path(), &dest.join(&name))?;
        copied.push(name);
    }
    copied.sort();
    Ok(copied)
}

fn copy_entry(from: &Path, to: &Path) -> Result<(), SurgeryError> {
    let meta = std::fs::metadata(from).map_err(SurgeryError::io("cannot inspect", from))?;
    if meta.is_dir() {
        std::fs::create_dir(to).map_err(SurgeryError::io("cannot create", to))?;
        for entry in std::fs::read_dir(from).map_err(SurgeryError::io("cannot list", from))? {
            let entry = entry.map_err(SurgeryError::io("cannot list", from))?;
            copy_entry(&entry.path(), &to.join(entry.file_name()))?;
        }
        return Ok(());
    }
    std::fs::copy(from, to).map_err(SurgeryError::io("cannot copy", from))?;
    Ok(())
}
