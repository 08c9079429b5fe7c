//! Files that appear complete or not at all: written beside their destination and renamed.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::DataError;

/// The temporary name `path` is written under before the rename.
pub(crate) fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// Writes the bytes `write` produces to `path` atomically: a crash leaves either the old file
/// (or none) or the whole new one, never a truncated one.
pub(crate) fn write_atomically(path: &Path, write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>) -> Result<(), DataError> {
    let partial = partial_path(path);
    let result = (|| {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&partial)?);
        write(&mut out)?;
        out.flush()?;
        out.get_ref().sync_data()?;
        std::fs::rename(&partial, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        DataError::io(path)(e)
    })
}
