//! Benchmark files: VLMEvalKit TSV or JSONL, into [`BenchItem`]s.
//!
//! Both layouts carry the same fields: `index`, `question`, `hint`, option columns `A`..`Z`
//! (JSONL may also give `options` as an object or a list), `answer` (a string, or several as a
//! list), `category`, and images as `image` (base64, or the `index` of another row whose image
//! it shares, as VLMEvalKit de-duplicates them) or `image_path` (relative to the file). A list
//! of images is a JSON list or a Python-literal list.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::images::ImageData;
use crate::item::{BenchItem, Malformed, QuestionKind};
use crate::listfield::parse_list;
use crate::tsv::parse_tsv;
use crate::vlmeval::pandas::column_as_pandas;
use crate::vlmeval::Dataset;
use crate::EvalError;

/// One row's fields by column name, or why the row could not even be split into fields.
type RawRow = Result<Map<String, Value>, String>;

/// A benchmark file, read.
#[derive(Debug, Clone)]
pub struct Benchmark {
    /// Name used in the report: the file name without its extension.
    pub name: String,
    /// Where it was read from.
    pub path: PathBuf,
    /// The usable questions, in file order.
    pub items: Vec<BenchItem>,
    /// Rows that were skipped.
    pub malformed: Vec<Malformed>,
    /// The VLMEvalKit dataset the file name names ([`Dataset::detect`]); `None` for a file
    /// VLMEvalKit does not know, which is then prompted and scored by its questions' kind.
    /// Set it to override the detection (`--dataset`).
    pub dataset: Option<Dataset>,
    /// The file's columns in order (TSV header, or first-seen JSON keys), for the predictions
    /// file.
    pub columns: Vec<String>,
}

/// Reads a `.tsv` file (VLMEvalKit) or a `.jsonl` / `.json` file (one object per line).
///
/// TSV cells are typed as `pandas.read_csv` types them (VLMEvalKit's reader), so a number
/// reads as VLMEvalKit formats it (`3.0` in a float column) and pandas' missing-value
/// spellings (`NA`, `nan`, `None`, ...) are empty cells. Rows that cannot be used are returned in [`Benchmark::malformed`]; with `strict` the first
/// of them is an error instead.
pub fn read_benchmark(path: &Path, strict: bool) -> Result<Benchmark, EvalError> {
    read_benchmark_as(path, strict, None)
}

/// [`read_benchmark`] for the VLMEvalKit dataset `dataset` whatever the file is called
/// (`None`: detected from the file name). The dataset decides which rows VLMEvalKit keeps.
pub fn read_benchmark_as(path: &Path, strict: bool, dataset: Option<Dataset>) -> Result<Benchmark, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io { path: path.to_path_buf(), source })?;
    let format = |reason: String| EvalError::Format { path: path.to_path_buf(), reason };
    let is_jsonl = matches!(path.extension().and_then(|e| e.to_str()), Some("jsonl") | Some("json"));
    let mut rows: Vec<(usize, RawRow)> = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    if is_jsonl {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let row = match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(map)) => {
                    columns.extend(map.keys().filter(|k| !columns.contains(k)).cloned().collect::<Vec<_>>());
                    Ok(map)
                }
                Ok(_) => Err("the line is not a JSON object".to_string()),
                Err(e) => Err(format!("the line is not valid JSON: {e}")),
            };
            rows.push((i + 1, row));
        }
    } else {
        let mut records = parse_tsv(&text).map_err(format)?.into_iter();
        let header = records.next().ok_or_else(|| format("the file is empty (no header row)".into()))?;
        if !header.fields.iter().any(|h| h == "question") {
            return Err(format(format!("the header has no `question` column (found: {})", header.fields.join(", "))));
        }
        let records: Vec<_> = records.collect();
        let well_formed: Vec<&Vec<String>> = records.iter().filter(|r| r.fields.len() == header.fields.len()).map(|r| &r.fields).collect();
        let typed: Vec<Vec<Option<String>>> =
            (0..header.fields.len()).map(|c| column_as_pandas(&well_formed.iter().map(|r| r[c].as_str()).collect::<Vec<_>>())).collect();
        let mut next_typed = 0;
        for record in &records {
            let row = if record.fields.len() != header.fields.len() {
                Err(format!("{} fields, but the header has {}", record.fields.len(), header.fields.len()))
            } else {
                let row = next_typed;
                next_typed += 1;
                let cells = typed.iter().map(|column| column[row].clone().map_or(Value::Null, Value::String));
                Ok(header.fields.iter().cloned().zip(cells).collect())
            };
            rows.push((record.line, row));
        }
        columns = header.fields.clone();
    }

    // VLMEvalKit stores a repeated image once and puts the owning row's index in the others.
    // It resolves the references in file order, in place, so a reference to a row that comes
    // earlier and is itself a reference resolves too.
    let mut image_by_index: HashMap<String, Value> = HashMap::new();
    for (_, row) in rows.iter() {
        if let Ok(row) = row {
            if let (Some(index), Some(image)) = (row.get("index").and_then(scalar), row.get("image")) {
                let resolved = match scalar(image) {
                    Some(target) if is_reference(&target) => image_by_index.get(&target).cloned().unwrap_or_else(|| image.clone()),
                    _ => image.clone(),
                };
                image_by_index.insert(index, resolved);
            }
        }
    }

    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "benchmark".into());
    let dataset = dataset.or_else(|| Dataset::detect(&name));
    let has_image_column = columns.iter().any(|c| c == "image");
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut items = Vec::new();
    let mut malformed = Vec::new();
    for (line, row) in rows {
        let result = row
            .map_err(|reason| Malformed { index: format!("line {line}"), line, reason })
            .and_then(|row| item_from_row(&row, line, &base_dir, &image_by_index, dataset))
            .and_then(|item| {
                // VLMEvalKit's datasets drop rows without an image (`skip_noimg`).
                if dataset.is_some() && has_image_column && item.images.is_empty() {
                    Err(Malformed { index: item.index, line, reason: "no image (VLMEvalKit drops such rows of its datasets)".into() })
                } else {
                    Ok(item)
                }
            });
        match result {
            Ok(item) => items.push(item),
            Err(bad) if strict => {
                return Err(EvalError::Malformed { path: path.to_path_buf(), index: bad.index, reason: bad.reason });
            }
            Err(bad) => malformed.push(bad),
        }
    }
    Ok(Benchmark { name, path: path.to_path_buf(), items, malformed, dataset, columns })
}

/// A string or number as text, unchanged (VLMEvalKit formats cells as they are); `None` for
/// null and empty strings (TSV cells pandas reads as missing are null already).
fn scalar(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        _ => return None,
    };
    (!text.trim().is_empty()).then_some(text)
}

/// A list field: a JSON array, a Python/JSON list literal in a string, or one scalar.
fn list(value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::Array(values) => values.iter().map(|v| scalar(v).ok_or_else(|| format!("list entry {v} is not a string"))).collect(),
        Value::String(s) if s.trim_start().starts_with('[') => parse_list(s).ok_or_else(|| format!("cannot read the list `{}`", abbreviate(s))),
        other => Ok(scalar(other).into_iter().collect()),
    }
}

fn abbreviate(text: &str) -> String {
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(60).collect::<String>())
    } else {
        text.to_string()
    }
}

/// An `image` cell that names another row instead of holding an image: a short all-digit value.
fn is_reference(cell: &str) -> bool {
    cell.len() < 32 && cell.chars().all(|c| c.is_ascii_digit())
}

/// `dataset`: the VLMEvalKit dataset of the file. Its rows keep a multiple-choice answer that
/// is not among the options (VLMEvalKit scores it wrong; other files report the row), and a
/// dataset scored only by a judge needs no `answer` column.
fn item_from_row(
    row: &Map<String, Value>,
    line: usize,
    base_dir: &Path,
    image_by_index: &HashMap<String, Value>,
    dataset: Option<Dataset>,
) -> Result<BenchItem, Malformed> {
    let known_dataset = dataset.is_some();
    let index = row.get("index").and_then(scalar).unwrap_or_else(|| format!("line {line}"));
    let bad = |reason: String| Malformed { index: index.clone(), line, reason };
    let question = row.get("question").and_then(scalar).ok_or_else(|| bad("no question".into()))?;
    let hint = row.get("hint").and_then(scalar);
    let category = row.get("category").and_then(scalar);

    let mut options: Vec<(char, String)> = ('A'..='Z').filter_map(|l| row.get(&l.to_string()).and_then(scalar).map(|t| (l, t))).collect();
    if options.is_empty() {
        match row.get("options") {
            Some(Value::Object(map)) => {
                for (key, value) in map {
                    let mut chars = key.chars();
                    match (chars.next(), chars.next(), scalar(value)) {
                        (Some(l), None, Some(text)) if l.is_ascii_uppercase() => options.push((l, text)),
                        (_, _, None) => {}
                        _ => return Err(bad(format!("option key `{key}` is not a capital letter"))),
                    }
                }
                options.sort_by_key(|(l, _)| *l);
            }
            Some(Value::Array(values)) => {
                for (value, letter) in values.iter().zip('A'..='Z') {
                    options.push((letter, scalar(value).ok_or_else(|| bad(format!("option {letter} is empty")))?));
                }
            }
            _ => {}
        }
    }

    let answers = match row.get("answer") {
        Some(value) => list(value).map_err(&bad)?,
        None => Vec::new(),
    };
    if answers.is_empty() && !dataset.is_some_and(Dataset::needs_judge) {
        return Err(bad("no answer".into()));
    }

    let mut images = Vec::new();
    if let Some(value) = row.get("image") {
        for entry in list(value).map_err(&bad)? {
            // A short all-digit value is the index of the row that holds the image.
            if is_reference(&entry) {
                let target = image_by_index.get(&entry).ok_or_else(|| bad(format!("image refers to row {entry}, which does not exist")))?;
                let resolved = list(target).map_err(&bad)?;
                if resolved.iter().any(|r| is_reference(r)) {
                    return Err(bad(format!("image refers to row {entry}, whose image is itself a reference")));
                }
                images.extend(resolved.into_iter().map(ImageData::Base64));
            } else {
                images.push(ImageData::Base64(entry));
            }
        }
    }
    // With images in the file, VLMEvalKit ignores `image_path` (MME has both).
    if let (Some(value), true) = (row.get("image_path"), images.is_empty()) {
        images.extend(list(value).map_err(&bad)?.into_iter().map(|p| ImageData::Path(base_dir.join(p))));
    }

    let fields = row.iter().filter(|(k, _)| k.as_str() != "image").filter_map(|(k, v)| scalar(v).map(|v| (k.clone(), v))).collect();
    let item = BenchItem { index: index.clone(), line, question, hint, options, answers, category, images, fields };
    if !known_dataset && item.kind() == QuestionKind::MultipleChoice && item.answer_letter().is_none() {
        let letters: String = item.options.iter().map(|(l, _)| *l).collect();
        return Err(bad(format!("answer `{}` is not one of the option letters {letters}", item.answers.join(", "))));
    }
    Ok(item)
}
