//! Plain-text documents out of parquet (the `text` column of a corpus shard, as `datasets`
//! writes them) into the `{"text": ...}` JSONL that text-LLM calibration reads (SLEB /
//! ShortGPT-style calibration on raw text).

use std::io::Write;
use std::path::{Path, PathBuf};

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use crate::arrow_values::string_at;
use crate::atomic::write_atomically;
use crate::DataError;

/// What [`parquet_documents`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextDocuments {
    /// Documents written.
    pub written: usize,
    /// Rows left out because their text is null or empty (a calibration sample needs tokens).
    pub skipped: usize,
}

/// Writes the string column `column` of the parquet files `sources` (in order, rows in file
/// order) to `out` as JSONL `{"text": ...}`, at most `limit` documents; null and empty texts
/// are skipped and counted. `out` appears complete or not at all.
pub fn parquet_documents(sources: &[PathBuf], column: &str, limit: Option<usize>, out: &Path) -> Result<TextDocuments, DataError> {
    let limit = limit.unwrap_or(usize::MAX);
    let mut lines = Vec::new();
    let mut skipped = 0;
    for path in sources {
        if lines.len() >= limit {
            break;
        }
        let parquet_error = |source| DataError::Parquet { path: path.clone(), source };
        let file = std::fs::File::open(path).map_err(DataError::io(path))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?;
        let fields: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
        let Some(index) = fields.iter().position(|f| f == column) else {
            return Err(DataError::Schema { path: path.clone(), what: format!("no column `{column}` (columns: {})", fields.join(", ")) });
        };
        let mask = ProjectionMask::roots(builder.parquet_schema(), [index]);
        let mut row = 0;
        for batch in builder.with_projection(mask).build().map_err(parquet_error)? {
            let batch = batch.map_err(|e| DataError::Schema { path: path.clone(), what: e.to_string() })?;
            let texts = batch.column(0);
            for i in 0..batch.num_rows() {
                let text = string_at(texts.as_ref(), i).map_err(|what| DataError::Row { path: path.clone(), row: (row + i) as u64, what })?;
                match text.filter(|t| !t.is_empty()) {
                    Some(text) if lines.len() < limit => lines.push(serde_json::json!({ "text": text }).to_string()),
                    Some(_) => break,
                    None => skipped += 1,
                }
            }
            row += batch.num_rows();
            if lines.len() >= limit {
                break;
            }
        }
    }
    write_atomically(out, |w| lines.iter().try_for_each(|line| writeln!(w, "{line}")))?;
    Ok(TextDocuments { written: lines.len(), skipped })
}

/// The parquet files of `source`: the file itself, or every `.parquet` file under the folder,
/// sorted by path.
pub fn parquet_files(source: &Path) -> Result<Vec<PathBuf>, DataError> {
    if source.is_file() {
        return Ok(vec![source.to_path_buf()]);
    }
    let mut files = Vec::new();
    crate::split::collect_parquet(source, &mut files)?;
    files.sort();
    if files.is_empty() {
        return Err(DataError::Schema { path: source.to_path_buf(), what: "no .parquet file here".into() });
    }
    Ok(files)
}
