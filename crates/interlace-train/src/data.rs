//! LLaVA / FineVision conversation records and the training examples built from them.
//!
//! A record is `{"image": "a.jpg" | ["a.jpg", ...], "conversations": [{"from": "human" | "gpt" |
//! "system", "value": "..."}]}` in a JSON array or a JSONL file. User turns place the record's
//! images at their `<image>` placeholders, as the official Qwen-VL fine-tuning
//! (`_build_messages`) does.
//!
//! The record types and the streaming file reader live in [`interlace_chat::llava`] (shared
//! with calibration) and are re-exported here; the model family's processor
//! ([`ChatProcessor`]) builds each example and applies its label rule. Records stay on disk: every record is parsed
//! once when the data set is opened, so malformed ones are reported up front as [`Skipped`],
//! and parsed again when its example is built.

use std::path::{Path, PathBuf};

use interlace_chat::labels::supervised_tokens;
use interlace_chat::llava::{LlavaError, RecordFile};
use interlace_chat::ChatProcessor;

use crate::TrainError;

pub use interlace_chat::llava::{ConversationRecord, Images, Skipped, Turn};

/// The usable records of a data file. Only their positions are in memory; each record is read
/// from disk when asked for, so FineVision-size files do not have to fit in memory.
#[derive(Debug)]
pub struct ConversationRecords {
    file: RecordFile,
    /// Indices in `file` of the records that parsed.
    usable: Vec<usize>,
}

impl ConversationRecords {
    /// Number of usable records.
    pub fn len(&self) -> usize {
        self.usable.len()
    }

    /// True when no record is usable.
    pub fn is_empty(&self) -> bool {
        self.usable.is_empty()
    }

    /// 1-based line (JSONL) or element (JSON array) number of record `index`.
    pub fn line_of(&self, index: usize) -> usize {
        position(&self.file, self.usable[index])
    }

    /// Record `index` (`< len()`), read from disk. It parsed when the file was opened, so an
    /// error here means the file changed or could not be read.
    pub fn get(&self, index: usize) -> Result<ConversationRecord, TrainError> {
        self.file.record(self.usable[index]).map_err(data_error)
    }
}

/// Where a record is, for messages: JSONL by line, a JSON array by element number.
fn position(file: &RecordFile, index: usize) -> usize {
    if file.is_array() {
        index + 1
    } else {
        file.line_of(index)
    }
}

fn data_error(error: LlavaError) -> TrainError {
    TrainError::Data(error.to_string())
}

/// Opens a JSON array or JSONL file of records and parses each record once to check it.
/// Unparseable records are returned as [`Skipped`] with their line number instead of failing
/// the whole file; the records themselves are not kept in memory.
pub fn read_records(path: &Path) -> Result<(ConversationRecords, Vec<Skipped>), TrainError> {
    let file = RecordFile::open(path).map_err(data_error)?;
    let mut usable = Vec::new();
    let mut skipped = Vec::new();
    for index in 0..file.len() {
        match file.record(index) {
            Ok(_) => usable.push(index),
            Err(LlavaError::Record { reason, .. }) => skipped.push(Skipped { line: position(&file, index), reason }),
            Err(error) => return Err(data_error(error)),
        }
    }
    Ok((ConversationRecords { file, usable }, skipped))
}

/// A model input with its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingExample<I> {
    /// What the model consumes.
    pub input: I,
    /// One label per input token ([`crate::IGNORE_INDEX`] where unsupervised).
    pub labels: Vec<i64>,
}

impl<I> TrainingExample<I> {
    /// Number of positions that contribute to the loss.
    pub fn supervised_tokens(&self) -> usize {
        supervised_tokens(&self.labels)
    }
}

/// Where training examples come from: random access so shuffling and resuming are cheap.
pub trait ExampleSource {
    /// The model input type.
    type Input;
    /// Number of examples.
    fn len(&self) -> usize;
    /// True when there is nothing to train on.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Example `index`; an error skips it (the trainer logs it) without stopping the run.
    fn example(&self, index: usize) -> Result<TrainingExample<Self::Input>, TrainError>;
}

/// Conversation records turned into training examples of a model family on demand (records are
/// read and images decoded when a step needs them, so memory does not grow with the dataset).
/// `Send + Sync`: data-parallel training shares one dataset between its replicas.
pub struct ConversationDataset<P> {
    records: ConversationRecords,
    image_dir: PathBuf,
    processor: P,
    max_length: usize,
}

impl<P: ChatProcessor> ConversationDataset<P> {
    /// Opens `data` (JSON or JSONL). Images resolve against `image_root` or the data file's
    /// folder. Returns the dataset and the records skipped while reading.
    pub fn open(data: &Path, image_root: Option<&Path>, processor: P, max_length: usize) -> Result<(Self, Vec<Skipped>), TrainError> {
        let (records, skipped) = read_records(data)?;
        let image_dir = match image_root {
            Some(root) => root.to_path_buf(),
            None => data.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        if max_length < 2 {
            return Err(TrainError::Data(format!("max_length {max_length} is too short to train on")));
        }
        Ok((Self { records, image_dir, processor, max_length }, skipped))
    }

    /// Source line of example `index` (for messages).
    pub fn line_of(&self, index: usize) -> usize {
        self.records.line_of(index)
    }
}

impl<P: ChatProcessor> ExampleSource for ConversationDataset<P> {
    type Input = P::Input;

    fn len(&self) -> usize {
        self.records.len()
    }

    fn example(&self, index: usize) -> Result<TrainingExample<P::Input>, TrainError> {
        let line = self.records.line_of(index);
        let at = |reason: String| TrainError::Data(format!("record at line {line}: {reason}"));
        let record = self.records.get(index)?;
        let messages = record.to_messages(&self.image_dir).map_err(at)?;
        let chat = self.processor.chat_example(&messages, self.max_length).map_err(at)?;
        let example = TrainingExample { input: chat.input, labels: chat.labels };
        if example.supervised_tokens() == 0 {
            return Err(at("no assistant token left to learn from".into()));
        }
        Ok(example)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_reports_malformed_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        std::fs::write(&path, "{\"conversations\": []}\nnot json\n\n{\"conversations\": [{\"from\": \"gpt\", \"value\": \"x\"}]}\n").unwrap();
        let (records, skipped) = read_records(&path).unwrap();
        assert_eq!((0..records.len()).map(|i| records.line_of(i)).collect::<Vec<_>>(), vec![1, 4]);
        assert_eq!(records.get(1).unwrap().conversations[0].value, "x");
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].line, 2);
    }

    #[test]
    fn json_arrays_are_numbered_by_element() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.json");
        std::fs::write(&path, "[\n  {\"conversations\": 1},\n  {\"conversations\": [{\"from\": \"gpt\", \"value\": \"x\"}]}\n]").unwrap();
        let (records, skipped) = read_records(&path).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records.line_of(0), 2);
        assert_eq!(skipped, vec![Skipped { line: 1, reason: skipped[0].reason.clone() }]);
        assert!(skipped[0].reason.starts_with("malformed record"), "{skipped:?}");
    }

    #[test]
    fn the_dataset_can_be_shared_by_replicas() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<ConversationDataset<interlace_qwen3vl::processor::Qwen3VlProcessor>>();
    }
}
