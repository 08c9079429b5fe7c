//! The per-question predictions file, in the layout VLMEvalKit's own evaluation reads.
//!
//! VLMEvalKit's inference writes the dataset's rows without the `image` column plus a
//! `prediction` column, and `evaluate(eval_file)` scores that file. interlace writes the same
//! table as TSV (VLMEvalKit reads `.tsv` prediction files; run it with `PRED_FORMAT=tsv`),
//! with the file's own columns in order and cells as pandas typed them, quoted as
//! `DataFrame.to_csv(sep='\t')` quotes.

use std::path::Path;

use crate::evaluate::BenchmarkResult;
use crate::reader::Benchmark;
use crate::report::write_atomically;
use crate::EvalError;

/// A cell as `to_csv` writes it: quoted (inner quotes doubled) when it holds a tab, a quote or
/// a line break.
fn tsv_cell(text: &str) -> String {
    if text.contains(['\t', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The predictions of `result` on `benchmark` as a TSV table.
pub fn predictions_tsv(benchmark: &Benchmark, result: &BenchmarkResult) -> String {
    let columns: Vec<&String> = benchmark.columns.iter().filter(|c| c.as_str() != "image" && c.as_str() != "prediction").collect();
    let mut out = String::new();
    let header: Vec<String> = columns.iter().map(|c| tsv_cell(c)).chain(std::iter::once("prediction".to_string())).collect();
    out.push_str(&header.join("\t"));
    out.push('\n');
    let by_index: std::collections::HashMap<&str, &crate::BenchItem> = benchmark.items.iter().map(|i| (i.index.as_str(), i)).collect();
    for answered in &result.items {
        let Some(item) = by_index.get(answered.index.as_str()) else { continue };
        let mut cells: Vec<String> = columns.iter().map(|c| item.fields.get(*c).map(|v| tsv_cell(v)).unwrap_or_default()).collect();
        cells.push(tsv_cell(&answered.prediction));
        out.push_str(&cells.join("\t"));
        out.push('\n');
    }
    out
}

/// Writes the predictions of `result` to `path` atomically.
pub fn write_predictions(path: &Path, benchmark: &Benchmark, result: &BenchmarkResult) -> Result<(), EvalError> {
    write_atomically(path, predictions_tsv(benchmark, result).as_bytes())
}
