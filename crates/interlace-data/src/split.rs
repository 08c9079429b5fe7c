//! One split of a dataset as the Hub stores it: parquet shards read in name order, counted from
//! their footers and streamed a few rows at a time.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::DataError;

/// Rows decoded at a time: FineVision rows carry up to a few megabytes of images each, so a
/// small batch keeps memory bounded.
const BATCH_ROWS: usize = 16;

/// The parquet shards of one split, in the order `datasets` reads them (sorted paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The shards, sorted.
    pub files: Vec<PathBuf>,
}

impl Split {
    /// The shards of `split` under `dir` (searched recursively): parquet files whose name starts
    /// with the split's name followed by `-`, `_` or `.` (`train-00000-of-00004.parquet`,
    /// `train.parquet`), or that sit in a directory named after it (the Hub's parquet conversion,
    /// `refs/convert/parquet`: `default/train/0000.parquet`). Errors if there are none.
    pub fn find(dir: &Path, split: &str) -> Result<Self, DataError> {
        Self::select(dir, |relative| is_shard_of(relative, split))?
            .ok_or_else(|| DataError::Source { path: dir.into(), what: format!("no `{split}` parquet shards ({split}-*.parquet) in it") })
    }

    /// The parquet files under `root` (searched recursively) whose `/`-separated path relative
    /// to it `keep` accepts, sorted; `None` if there are none.
    pub(crate) fn select(root: &Path, keep: impl Fn(&str) -> bool) -> Result<Option<Self>, DataError> {
        let mut files = Vec::new();
        collect_parquet(root, &mut files)?;
        files.retain(|f| {
            let relative = f.strip_prefix(root).unwrap_or(f).components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            keep(&relative)
        });
        files.sort();
        Ok((!files.is_empty()).then_some(Self { files }))
    }

    /// The number of rows, summed from the shards' footers (no data is read).
    pub fn num_rows(&self) -> Result<u64, DataError> {
        self.files.iter().map(|f| file_rows(f)).sum()
    }

    /// Calls `visit(row, batch, index_in_batch)` for rows `start..start + limit` of the split
    /// (fewer if the split ends first), reading only `columns` (those of them the files have)
    /// and skipping whole shards before `start` by their footers.
    pub fn for_each_row(
        &self,
        columns: &[&str],
        start: u64,
        limit: u64,
        mut visit: impl FnMut(u64, &RecordBatch, usize, &Path) -> Result<(), DataError>,
    ) -> Result<(), DataError> {
        let end = start.saturating_add(limit);
        let mut shard_start = 0u64;
        for path in &self.files {
            if shard_start >= end {
                break;
            }
            let rows = file_rows(path)?;
            let shard_end = shard_start + rows;
            if shard_end > start {
                let offset = start.saturating_sub(shard_start);
                let take = end.min(shard_end) - shard_start - offset;
                let mut row = shard_start + offset;
                for batch in open_rows(path, columns, offset, take)? {
                    let batch = batch.map_err(|e| DataError::Parquet { path: path.clone(), source: e.into() })?;
                    for i in 0..batch.num_rows() {
                        visit(row, &batch, i, path)?;
                        row += 1;
                    }
                }
            }
            shard_start = shard_end;
        }
        Ok(())
    }
}

/// Whether the parquet file at `path` (`/`-separated) belongs to `split`:
/// `data/train-00000-of-00004.parquet`, `train.parquet`, `train_0.parquet` and
/// `default/train/0000.parquet` do; `training.parquet` and `data/validation-0.parquet` do not.
pub(crate) fn is_shard_of(path: &str, split: &str) -> bool {
    let mut parts = path.rsplit('/');
    let file = parts.next().unwrap_or(path);
    let in_split_dir = parts.next() == Some(split);
    file.ends_with(".parquet") && (in_split_dir || file.strip_prefix(split).is_some_and(|rest| rest.starts_with(['-', '_', '.'])))
}

pub(crate) fn collect_parquet(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(DataError::io(dir))? {
        let path = entry.map_err(DataError::io(dir))?.path();
        if path.is_dir() {
            collect_parquet(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    Ok(())
}

fn open(path: &Path) -> Result<File, DataError> {
    File::open(path).map_err(DataError::io(path))
}

/// The row count in a parquet file's footer.
pub(crate) fn file_rows(path: &Path) -> Result<u64, DataError> {
    let reader = SerializedFileReader::new(open(path)?).map_err(|source| DataError::Parquet { path: path.into(), source })?;
    Ok(reader.metadata().file_metadata().num_rows().max(0) as u64)
}

fn open_rows(path: &Path, columns: &[&str], offset: u64, limit: u64) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader, DataError> {
    let parquet_error = |source| DataError::Parquet { path: path.into(), source };
    let builder = ParquetRecordBatchReaderBuilder::try_new(open(path)?).map_err(parquet_error)?;
    let schema = builder.schema().clone();
    let roots: Vec<usize> = schema.fields().iter().enumerate().filter(|(_, f)| columns.contains(&f.name().as_str())).map(|(i, _)| i).collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    builder.with_projection(mask).with_batch_size(BATCH_ROWS).with_offset(offset as usize).with_limit(limit as usize).build().map_err(parquet_error)
}

#[cfg(test)]
mod tests {
    use super::is_shard_of;

    #[test]
    fn shards_belong_to_a_split_by_name_or_directory() {
        for yes in ["data/train-00000-of-00004.parquet", "train.parquet", "train_0.parquet", "default/train/0000.parquet"] {
            assert!(is_shard_of(yes, "train"), "{yes}");
        }
        for no in ["training.parquet", "data/validation-0.parquet", "default/validation/0000.parquet", "train-0.json"] {
            assert!(!is_shard_of(no, "train"), "{no}");
        }
    }
}
