//! Calibration data: LLaVA/FineVision conversation records, as a JSON array or JSONL.
//!
//! A record is `{"image": "a.jpg" | ["a.jpg", "b.png"], "conversations": [{"from":
//! "human"|"gpt"|"system", "value": "..."}]}`; text-only records have no `image`. The prompt
//! follows `src/get_hidden_states.py` of the official repository: the record's images in order,
//! then the text of the first human turn with every `"<image>\n"` removed (text-only records:
//! the text unchanged). The official code reads `conversations[0]`, which is the first human
//! turn in LLaVA data; we look for the first `"human"` turn so that a leading system turn is
//! not taken for the question.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::pyrandom::PyRandom;
use crate::SimilarityError;

/// One calibration sample, ready to be turned into model input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalibrationRecord {
    /// 1-based line of the data file where the record starts.
    pub line: usize,
    /// Image files, resolved against the image root, in prompt order.
    pub images: Vec<PathBuf>,
    /// The user text (placeholders removed).
    pub text: String,
}

/// Where each record's text lives.
#[derive(Debug)]
enum Layout {
    /// JSONL: `(line, byte offset, byte length)` of every non-blank line; read on demand, so
    /// memory grows by one entry per record, not with the records' size.
    Lines { file: BufReader<File>, spans: Vec<(usize, u64, usize)> },
    /// JSON array: the file text and `(line, start, end)` of every element. A JSON array has to
    /// be parsed as a whole (like `json.load` in the official code); prefer JSONL for big sets.
    Array { text: String, spans: Vec<(usize, usize, usize)> },
}

/// A calibration data file opened for random access by record index.
#[derive(Debug)]
pub struct CalibrationData {
    path: PathBuf,
    image_root: PathBuf,
    layout: Layout,
}

impl CalibrationData {
    /// Opens `path` (JSON array if its first non-blank character is `[`, JSONL otherwise).
    /// Image paths are resolved against `image_root`, or the data file's directory.
    pub fn open(path: impl AsRef<Path>, image_root: Option<&Path>) -> Result<Self, SimilarityError> {
        let path = path.as_ref().to_path_buf();
        let image_root = match image_root {
            Some(root) => root.to_path_buf(),
            None => path.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let mut file = File::open(&path).map_err(SimilarityError::io(&path))?;
        let layout = if first_char(&mut file, &path)? == Some(b'[') {
            array_layout(file, &path)?
        } else {
            lines_layout(file, &path)?
        };
        Ok(Self { path, image_root, layout })
    }

    /// The data file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of records (JSONL: non-blank lines, malformed ones included).
    pub fn len(&self) -> usize {
        match &self.layout {
            Layout::Lines { spans, .. } => spans.len(),
            Layout::Array { spans, .. } => spans.len(),
        }
    }

    /// True when the file holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// 1-based line where record `index` starts.
    pub fn line_of(&self, index: usize) -> usize {
        match &self.layout {
            Layout::Lines { spans, .. } => spans.get(index).map_or(0, |s| s.0),
            Layout::Array { spans, .. } => spans.get(index).map_or(0, |s| s.0),
        }
    }

    /// Reads, parses and checks record `index` (`< len()`); a malformed record or a missing
    /// image is a [`SimilarityError::Record`] naming the line.
    pub fn record(&mut self, index: usize) -> Result<CalibrationRecord, SimilarityError> {
        let line = self.line_of(index);
        let text = self.raw(index)?;
        let value: Value = serde_json::from_str(&text).map_err(|e| self.record_error(line, format!("not valid JSON: {e}")))?;
        parse_record(&value, line, &self.image_root).map_err(|reason| self.record_error(line, reason))
    }

    fn record_error(&self, line: usize, reason: String) -> SimilarityError {
        SimilarityError::Record { path: self.path.clone(), line, reason }
    }

    fn raw(&mut self, index: usize) -> Result<String, SimilarityError> {
        match &mut self.layout {
            Layout::Lines { file, spans } => {
                let (_, offset, len) = spans[index];
                let mut buf = vec![0u8; len];
                file.seek(SeekFrom::Start(offset)).and_then(|_| file.read_exact(&mut buf)).map_err(SimilarityError::io(&self.path))?;
                String::from_utf8(buf).map_err(|_| SimilarityError::Record { path: self.path.clone(), line: spans[index].0, reason: "not UTF-8".into() })
            }
            Layout::Array { text, spans } => {
                let (_, start, end) = spans[index];
                Ok(text[start..end].to_string())
            }
        }
    }
}

fn first_char(file: &mut File, path: &Path) -> Result<Option<u8>, SimilarityError> {
    let mut reader = BufReader::new(&mut *file);
    let found = loop {
        let buf = reader.fill_buf().map_err(SimilarityError::io(path))?;
        if buf.is_empty() {
            break None;
        }
        if let Some(&c) = buf.iter().find(|c| !c.is_ascii_whitespace()) {
            break Some(c);
        }
        let n = buf.len();
        reader.consume(n);
    };
    drop(reader);
    file.seek(SeekFrom::Start(0)).map_err(SimilarityError::io(path))?;
    Ok(found)
}

fn lines_layout(file: File, path: &Path) -> Result<Layout, SimilarityError> {
    let mut reader = BufReader::new(file);
    let mut spans = Vec::new();
    let mut buf = Vec::new();
    let (mut offset, mut line) = (0u64, 0usize);
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(SimilarityError::io(path))?;
        if n == 0 {
            break;
        }
        line += 1;
        if buf.iter().any(|c| !c.is_ascii_whitespace()) {
            spans.push((line, offset, n));
        }
        offset += n as u64;
    }
    Ok(Layout::Lines { file: reader, spans })
}

fn array_layout(mut file: File, path: &Path) -> Result<Layout, SimilarityError> {
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(SimilarityError::io(path))?;
    let elements: Vec<&serde_json::value::RawValue> = serde_json::from_str(&text)
        .map_err(|e| SimilarityError::InvalidFile { path: path.to_path_buf(), reason: format!("not a JSON array of records: {e}") })?;
    let base = text.as_ptr() as usize;
    let spans = elements.iter().map(|raw| {
        let start = raw.get().as_ptr() as usize - base;
        let line = 1 + text.as_bytes()[..start].iter().filter(|&&c| c == b'\n').count();
        (line, start, start + raw.get().len())
    }).collect();
    Ok(Layout::Array { text, spans })
}

/// Checks one record's shape and resolves its images (which must exist).
fn parse_record(value: &Value, line: usize, image_root: &Path) -> Result<CalibrationRecord, String> {
    let object = value.as_object().ok_or("a record must be a JSON object")?;
    let turns = object.get("conversations").and_then(Value::as_array).ok_or("missing `conversations` array")?;
    let mut human = None;
    for (n, turn) in turns.iter().enumerate() {
        let from = turn.get("from").and_then(Value::as_str).ok_or(format!("conversations[{n}] has no string `from`"))?;
        let text = turn.get("value").and_then(Value::as_str).ok_or(format!("conversations[{n}] has no string `value`"))?;
        if from == "human" && human.is_none() {
            human = Some(text);
        }
    }
    let human = human.ok_or("no `human` turn in `conversations`")?;
    let images: Vec<&str> = match object.get("image") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(list)) => list.iter().enumerate()
            .map(|(n, v)| v.as_str().ok_or(format!("image[{n}] is not a string")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("`image` must be a string or a list of strings".into()),
    };
    let images = images.iter().map(|p| {
        let path = image_root.join(p);
        if path.is_file() { Ok(path) } else { Err(format!("image not found: {}", path.display())) }
    }).collect::<Result<Vec<_>, _>>()?;
    // Official rule: placeholders are removed only when the record has images.
    let text = if object.contains_key("image") { human.replace("<image>\n", "") } else { human.to_string() };
    Ok(CalibrationRecord { line, images, text })
}

/// The record indices to process, in processing order.
///
/// With `portion`, `int(n × portion)` records drawn like the official
/// `random.seed(seed); random.sample(data, k)` (same records, same order); without it, every
/// record in file order. `max_samples` then keeps the first `N`.
pub fn sample_order(n_records: usize, portion: Option<f64>, seed: u64, max_samples: Option<usize>) -> Result<Vec<usize>, SimilarityError> {
    let mut order: Vec<usize> = match portion {
        None => (0..n_records).collect(),
        Some(p) if !(p > 0.0 && p <= 1.0) => {
            return Err(SimilarityError::InvalidOption { option: "--sample-portion", reason: format!("{p} is not in (0, 1]") });
        }
        Some(p) => {
            let k = (n_records as f64 * p) as usize;
            PyRandom::new(seed).sample(n_records, k).unwrap_or_default()
        }
    };
    if max_samples == Some(0) {
        return Err(SimilarityError::InvalidOption { option: "--max-samples", reason: "must be at least 1".into() });
    }
    if let Some(max) = max_samples {
        order.truncate(max);
    }
    if order.is_empty() {
        return Err(SimilarityError::InvalidOption {
            option: "--sample-portion",
            reason: format!("selects no sample out of {n_records} records (portion {})", portion.unwrap_or(1.0)),
        });
    }
    Ok(order)
}
