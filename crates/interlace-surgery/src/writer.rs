//! Streaming one output shard from memory-mapped sources to disk.
//!
//! Data goes chunk by chunk from the source map through a `BufWriter`; no shard or tensor is
//! ever assembled in memory, and pages already copied are released from the map so the
//! resident set stays small whatever the checkpoint size.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::Path;

use memmap2::{Advice, UncheckedAdvice};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::packing::{OutShard, OutTensor};
use crate::progress::Progress;
use crate::SurgeryError;

/// Bytes copied per write (and per progress tick).
const CHUNK: usize = 16 << 20;

/// A shard that was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WrittenShard {
    /// File name in the output directory.
    pub file: String,
    /// File size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
}

/// Counts copied bytes and relays them to the caller's [`Progress`].
pub struct CopyTracker<'p> {
    /// Bytes copied so far.
    pub copied: u64,
    progress: &'p mut dyn Progress,
}

impl<'p> CopyTracker<'p> {
    /// Starts tracking a copy of `total` bytes.
    pub fn new(progress: &'p mut dyn Progress, total: u64) -> Self {
        progress.start(total);
        Self { copied: 0, progress }
    }

    fn advance(&mut self, bytes: usize) -> Result<(), SurgeryError> {
        self.copied += bytes as u64;
        match self.progress.advance(bytes as u64) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(SurgeryError::Cancelled { bytes_written: self.copied }),
        }
    }

    /// Reports completion.
    pub fn finish(&mut self) {
        self.progress.finish();
    }
}

/// Writes `shard` into `dir` and returns its size and hash, and the open file so the caller
/// can fsync every shard at the end (syncing each one as it completes would stall reading
/// while the kernel flushes it).
pub fn write_shard(dir: &Path, shard: &OutShard, tracker: &mut CopyTracker) -> Result<(WrittenShard, File), SurgeryError> {
    let path = dir.join(&shard.file_name);
    let file = File::create(&path).map_err(SurgeryError::io("cannot create", &path))?;
    let mut out = HashingWriter { inner: BufWriter::with_capacity(1 << 20, file), hasher: Sha256::new() };
    let write_err = SurgeryError::io("cannot write", &path);
    let result = (|| {
        out.write_all(&(shard.header.len() as u64).to_le_bytes())?;
        out.write_all(shard.header.as_bytes())?;
        Ok::<(), std::io::Error>(())
    })();
    result.map_err(write_err)?;
    for tensor in &shard.tensors {
        copy_tensor(tensor, &mut out, tracker, &path)?;
    }
    let HashingWriter { inner, hasher } = out;
    let file = inner.into_inner().map_err(|e| SurgeryError::Io { action: "cannot write", path: path.clone(), source: e.into_error() })?;
    let sha256 = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((WrittenShard { file: shard.file_name.clone(), bytes: shard.file_bytes(), sha256 }, file))
}

fn copy_tensor(t: &OutTensor, out: &mut impl Write, tracker: &mut CopyTracker, path: &Path) -> Result<(), SurgeryError> {
    let mut offset = t.tensor.range.start;
    while offset < t.tensor.range.end {
        let end = (offset + CHUNK).min(t.tensor.range.end);
        // Ask the kernel to start reading the next chunk while this one is hashed and written,
        // so the copy overlaps disk reads with writes the way a read()/write() loop does.
        let ahead = (end + CHUNK).min(t.shard.mmap.len()) - end;
        let _ = t.shard.mmap.advise_range(Advice::WillNeed, end, ahead);
        // Map this chunk's pages in one call instead of one page fault at a time (the faults
        // cost more system time than the copy itself). Unsupported kernels just fault as usual.
        let _ = t.shard.mmap.advise_range(Advice::PopulateRead, offset, end - offset);
        out.write_all(&t.shard.mmap[offset..end]).map_err(SurgeryError::io("cannot write", path))?;
        // SAFETY: the map is a read-only shared file mapping; MADV_DONTNEED only drops our copy of
        // already-copied pages, which the kernel re-reads from the unchanged file if touched again.
        // Failure only means the pages stay resident, so it is ignored.
        let _ = unsafe { t.shard.mmap.unchecked_advise_range(UncheckedAdvice::DontNeed, offset, end - offset) };
        tracker.advance(end - offset)?;
        offset = end;
    }
    Ok(())
}

/// Hashes everything written through it.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
