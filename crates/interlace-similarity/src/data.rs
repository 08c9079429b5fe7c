//! Calibration data: LLaVA/FineVision conversation records, as a JSON array or JSONL.
//!
//! A record is `{"image": "a.jpg" | ["a.jpg", "b.png"], "conversations": [{"from":
//! "human"|"gpt"|"system", "value": "..."}]}`; text-only records have no `image`. The prompt
//! follows `src/get_hidden_states.py` of the official repository: the record's images in order,
//! then the text of the first human turn with every `"<image>\n"` removed (text-only records:
//! the text unchanged). The official code reads `conversations[0]`, which is the first human
//! turn in LLaVA data; we look for the first `"human"` turn so that a leading system turn is
//! not taken for the question.
//!
//! A record may instead be a plain-text document, `{"text": "..."}` (SLEB / ShortGPT-style
//! calibration of text LLMs): its text is the whole input, tokenized without a chat template.
//!
//! The file format and its streaming reader are shared with training
//! ([`interlace_chat::llava`]); this module only turns a record into a prompt.

use std::path::{Path, PathBuf};

use interlace_chat::llava::{ConversationRecord, LlavaError, RecordFile};

use crate::pyrandom::PyRandom;
use crate::SimilarityError;

/// One calibration sample, ready to be turned into model input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalibrationRecord {
    /// 1-based line of the data file where the record starts.
    pub line: usize,
    /// Image files, resolved against the image root, in prompt order.
    pub images: Vec<PathBuf>,
    /// The user text (placeholders removed), or the whole document.
    pub text: String,
    /// True for a `{"text": ...}` document, which is tokenized as it is; false for a
    /// conversation record, whose text becomes a user turn of the chat template.
    pub document: bool,
}

/// A calibration data file opened for random access by record index. Only the records'
/// positions are held in memory; each record is read from disk when asked for.
#[derive(Debug)]
pub struct CalibrationData {
    records: RecordFile,
    image_root: PathBuf,
}

impl CalibrationData {
    /// Opens `path` (JSON array if its first non-blank character is `[`, JSONL otherwise).
    /// Image paths are resolved against `image_root`, or the data file's directory.
    pub fn open(path: impl AsRef<Path>, image_root: Option<&Path>) -> Result<Self, SimilarityError> {
        let path = path.as_ref();
        let image_root = match image_root {
            Some(root) => root.to_path_buf(),
            None => path.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let records = RecordFile::open(path).map_err(similarity_error)?;
        Ok(Self { records, image_root })
    }

    /// The data file.
    pub fn path(&self) -> &Path {
        self.records.path()
    }

    /// Number of records (JSONL: non-blank lines, malformed ones included).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when the file holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// 1-based line where record `index` starts.
    pub fn line_of(&self, index: usize) -> usize {
        self.records.line_of(index)
    }

    /// Reads, parses and checks record `index` (`< len()`); a malformed record or a missing
    /// image is a [`SimilarityError::Record`] naming the line.
    pub fn record(&mut self, index: usize) -> Result<CalibrationRecord, SimilarityError> {
        let line = self.line_of(index);
        let record_error = |reason| SimilarityError::Record { path: self.path().to_path_buf(), line, reason };
        let raw = self.records.text(index).map_err(similarity_error)?;
        if let Some(text) = document_text(&raw) {
            return Ok(CalibrationRecord { line, images: Vec::new(), text, document: true });
        }
        let record = self.records.record(index).map_err(similarity_error)?;
        prompt(&record, line, &self.image_root).map_err(record_error)
    }
}

/// The shared reader's errors as this crate's: an unreadable file stays an I/O error (fatal),
/// a bad record stays a record error (skipped unless strict).
fn similarity_error(error: LlavaError) -> SimilarityError {
    match error {
        LlavaError::Io { path, source } => SimilarityError::Io { path, source },
        LlavaError::NotAnArray { path, reason } => SimilarityError::InvalidFile { path, reason: format!("not a JSON array of records: {reason}") },
        LlavaError::Record { path, line, reason } => SimilarityError::Record { path, line, reason },
        error @ LlavaError::NoRecord { .. } => SimilarityError::InvalidOption { option: "record index", reason: error.to_string() },
    }
}

/// The text of a `{"text": "..."}` document (an object with a string `text` and neither
/// `conversations` nor `messages`).
fn document_text(raw: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(raw).ok()?;
    let object = value.as_object()?;
    if object.contains_key("conversations") || object.contains_key("messages") {
        return None;
    }
    object.get("text")?.as_str().map(str::to_string)
}

/// The official prompt of a record: its images (which must exist) and its first human turn.
fn prompt(record: &ConversationRecord, line: usize, image_root: &Path) -> Result<CalibrationRecord, String> {
    // `user` is the chat form's (and some LLaVA files') name for the human turn.
    let human = record.conversations.iter().find(|turn| turn.from == "human" || turn.from == "user").ok_or("no `human` turn in `conversations`")?;
    let images = record
        .image_paths(image_root)
        .into_iter()
        .map(|path| if path.is_file() { Ok(path) } else { Err(format!("image not found: {}", path.display())) })
        .collect::<Result<Vec<_>, _>>()?;
    // Official rule: placeholders are removed only when the record has images.
    let text = if record.image.is_some() { human.value.replace("<image>\n", "") } else { human.value.clone() };
    Ok(CalibrationRecord { line, images, text, document: false })
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
