//! A downloaded file against the Hub's metadata: size, then SHA-256 (LFS) or git blob id.

use std::io::Read;
use std::path::Path;

use sha1::Digest as _;

use crate::{HubError, RepoFile};

/// Checks the file at `path` against `expected`; says what differs.
pub(crate) fn verify(path: &Path, expected: &RepoFile) -> Result<Result<(), String>, HubError> {
    let size = std::fs::metadata(path).map_err(HubError::io(path))?.len();
    if size != expected.size {
        return Ok(Err(format!("{size} bytes, the Hub says {}", expected.size)));
    }
    if let Some(want) = &expected.sha256 {
        let got = hex(&digest(path, sha2::Sha256::new(), None)?);
        return Ok(if &got == want { Ok(()) } else { Err(format!("SHA-256 {got}, the Hub says {want}")) });
    }
    if let Some(want) = &expected.git_blob_id {
        let got = hex(&digest(path, sha1::Sha1::new(), Some(git_blob_header(size).as_bytes()))?);
        return Ok(if &got == want { Ok(()) } else { Err(format!("git blob id {got}, the Hub says {want}")) });
    }
    Ok(Ok(()))
}

fn digest<D: sha1::Digest>(path: &Path, mut hasher: D, prefix: Option<&[u8]>) -> Result<Vec<u8>, HubError> {
    if let Some(prefix) = prefix {
        hasher.update(prefix);
    }
    let mut file = std::fs::File::open(path).map_err(HubError::io(path))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(HubError::io(path))?;
        if n == 0 {
            return Ok(hasher.finalize().to_vec());
        }
        hasher.update(&buf[..n]);
    }
}

/// What git hashes before a file's bytes to make its blob id.
pub(crate) fn git_blob_header(size: u64) -> String {
    format!("blob {size}\0")
}

/// Lower-case hexadecimal, as the Hub writes hashes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_blob_id_and_sha256_of_known_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "hello\n").unwrap();
        // `printf 'hello\n' | git hash-object --stdin` and `sha256sum`.
        let file = |sha256: Option<&str>, blob: Option<&str>| RepoFile {
            name: "f".into(),
            size: 6,
            sha256: sha256.map(Into::into),
            git_blob_id: blob.map(Into::into),
        };
        assert_eq!(verify(&path, &file(None, Some("ce013625030ba8dba906f756967f9e9ca394464a"))).unwrap(), Ok(()));
        assert_eq!(verify(&path, &file(Some("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"), None)).unwrap(), Ok(()));
        assert!(verify(&path, &file(None, Some("0000000000000000000000000000000000000000"))).unwrap().unwrap_err().contains("git blob id"));
        assert!(verify(&path, &RepoFile { size: 7, ..file(None, None) }).unwrap().unwrap_err().contains("6 bytes, the Hub says 7"));
    }
}
