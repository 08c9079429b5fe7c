//! LLaVA / FineVision conversation records and the training examples built from them.
//!
//! A record is `{"image": "a.jpg" | ["a.jpg", ...], "conversations": [{"from": "human" | "gpt" |
//! "system", "value": "..."}]}` in a JSON array or a JSONL file. User turns place the record's
//! images at their `<image>` placeholders, as the official Qwen-VL fine-tuning
//! (`_build_messages`) does.

use std::path::{Path, PathBuf};

use interlace_qwen3vl::processor::{ChatMessage, ContentPart, Qwen3VlProcessor, Role};
use interlace_qwen3vl::Qwen3VlInput;
use serde::Deserialize;

use crate::labels::{assistant_labels, supervised_tokens, TurnMarkers};
use crate::TrainError;

/// One or several image paths.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Images {
    /// A single path.
    One(String),
    /// Several paths, in placeholder order.
    Many(Vec<String>),
}

/// One turn of a record.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Turn {
    /// `human`, `gpt` or `system` (also `user` / `assistant`).
    pub from: String,
    /// The text, with `<image>` placeholders in user turns.
    pub value: String,
}

/// One conversation record.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ConversationRecord {
    /// Image paths, relative to the data file (or the image root).
    #[serde(default)]
    pub image: Option<Images>,
    /// The turns.
    pub conversations: Vec<Turn>,
}

/// A record that could not be used, with where it was.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Skipped {
    /// 1-based line (JSONL) or element (JSON array) number.
    pub line: usize,
    /// Why.
    pub reason: String,
}

impl ConversationRecord {
    /// The image paths, resolved against `image_dir`.
    pub fn image_paths(&self, image_dir: &Path) -> Vec<PathBuf> {
        let names = match &self.image {
            None => Vec::new(),
            Some(Images::One(name)) => vec![name.clone()],
            Some(Images::Many(names)) => names.clone(),
        };
        names.into_iter().map(|n| image_dir.join(n)).collect()
    }

    /// The whole conversation as chat messages: images at their `<image>` placeholders in user
    /// turns (text segments trimmed), assistant turns as plain text.
    pub fn to_messages(&self, image_dir: &Path) -> Result<Vec<ChatMessage>, String> {
        let mut images = self.image_paths(image_dir).into_iter();
        let mut messages = Vec::new();
        for turn in &self.conversations {
            let role = match turn.from.as_str() {
                "human" | "user" => Role::User,
                "gpt" | "assistant" => Role::Assistant,
                "system" => Role::System,
                other => return Err(format!("unknown speaker `{other}` (expected human, gpt or system)")),
            };
            let content = if role == Role::User { user_content(&turn.value, &mut images)? } else { vec![ContentPart::text(turn.value.clone())] };
            messages.push(ChatMessage::new(role, content));
        }
        let unused = images.count();
        if unused > 0 {
            return Err(format!("{unused} image(s) have no <image> placeholder"));
        }
        if !messages.iter().any(|m| m.role == Role::Assistant) {
            return Err("no assistant turn to learn from".into());
        }
        Ok(messages)
    }
}

fn user_content(text: &str, images: &mut impl Iterator<Item = PathBuf>) -> Result<Vec<ContentPart>, String> {
    let mut content = Vec::new();
    for (k, segment) in text.split("<image>").enumerate() {
        if k > 0 {
            let image = images.next().ok_or("more <image> placeholders than images")?;
            content.push(ContentPart::image_path(image));
        }
        if !segment.trim().is_empty() {
            content.push(ContentPart::text(segment.trim().to_string()));
        }
    }
    Ok(content)
}

/// Reads a JSON array or JSONL file of records. Unparseable records are returned as
/// [`Skipped`] with their line number instead of failing the whole file.
pub fn read_records(path: &Path) -> Result<(Vec<(usize, ConversationRecord)>, Vec<Skipped>), TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::Data(format!("cannot read {}: {e}", path.display())))?;
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    if text.trim_start().starts_with('[') {
        let values: Vec<serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| TrainError::Data(format!("{} is not a JSON array of records: {e}", path.display())))?;
        for (i, value) in values.into_iter().enumerate() {
            match serde_json::from_value(value) {
                Ok(record) => records.push((i + 1, record)),
                Err(e) => skipped.push(Skipped { line: i + 1, reason: format!("malformed record: {e}") }),
            }
        }
    } else {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(line) {
                Ok(record) => records.push((i + 1, record)),
                Err(e) => skipped.push(Skipped { line: i + 1, reason: format!("malformed record: {e}") }),
            }
        }
    }
    Ok((records, skipped))
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

/// Conversation records turned into Qwen3-VL training examples on demand (images are decoded
/// when a step needs them, so memory does not grow with the dataset).
pub struct ConversationDataset {
    records: Vec<(usize, ConversationRecord)>,
    image_dir: PathBuf,
    processor: Qwen3VlProcessor,
    markers: TurnMarkers,
    max_length: usize,
}

impl ConversationDataset {
    /// Opens `data` (JSON or JSONL). Images resolve against `image_root` or the data file's
    /// folder. Returns the dataset and the records skipped while reading.
    pub fn open(data: &Path, image_root: Option<&Path>, processor: Qwen3VlProcessor, max_length: usize) -> Result<(Self, Vec<Skipped>), TrainError> {
        let (records, skipped) = read_records(data)?;
        let image_dir = match image_root {
            Some(root) => root.to_path_buf(),
            None => data.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let tokenizer = processor.tokenizer();
        let token = |t: &str| tokenizer.token_to_id(t).ok_or_else(|| TrainError::Data(format!("the tokenizer has no {t} token")));
        let markers = TurnMarkers {
            im_start: token("<|im_start|>")?,
            im_end: token("<|im_end|>")?,
            assistant_header: processor.encode("assistant\n").map_err(|e| TrainError::Data(e.to_string()))?,
        };
        if max_length < 2 {
            return Err(TrainError::Data(format!("max_length {max_length} is too short to train on")));
        }
        Ok((Self { records, image_dir, processor, markers, max_length }, skipped))
    }

    /// Source line of example `index` (for messages).
    pub fn line_of(&self, index: usize) -> usize {
        self.records[index].0
    }
}

impl ExampleSource for ConversationDataset {
    type Input = Qwen3VlInput;

    fn len(&self) -> usize {
        self.records.len()
    }

    fn example(&self, index: usize) -> Result<TrainingExample<Qwen3VlInput>, TrainError> {
        let (line, record) = &self.records[index];
        let at = |reason: String| TrainError::Data(format!("record at line {line}: {reason}"));
        let messages = record.to_messages(&self.image_dir).map_err(at)?;
        let processed = self.processor.process(&messages, false).map_err(|e| at(e.to_string()))?;
        let mut labels = assistant_labels(&processed.input_ids, &self.markers);
        let mut input: Qwen3VlInput = processed.into();
        if input.input_ids.len() > self.max_length {
            // Truncation may not split an image: its features must all find their tokens.
            let image_token = self.processor.image_token_id();
            if input.input_ids[self.max_length..].contains(&image_token) {
                return Err(at(format!("{} tokens exceed max_length {} inside an image", input.input_ids.len(), self.max_length)));
            }
            input.input_ids.truncate(self.max_length);
            labels.truncate(self.max_length);
        }
        let example = TrainingExample { input, labels };
        if example.supervised_tokens() == 0 {
            return Err(at("no assistant token left to learn from".into()));
        }
        Ok(example)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> ConversationRecord {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn images_go_to_their_placeholders() {
        let r = record(r#"{"image": ["a.png", "b.png"], "conversations": [
            {"from": "human", "value": "<image>\nFirst <image> second"}, {"from": "gpt", "value": "ok"}]}"#);
        let messages = r.to_messages(Path::new("/d")).unwrap();
        let parts = &messages[0].content;
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], ContentPart::image_path("/d/a.png"));
        assert_eq!(parts[1], ContentPart::text("First"));
        assert_eq!(parts[2], ContentPart::image_path("/d/b.png"));
        assert_eq!(parts[3], ContentPart::text("second"));
        assert_eq!(messages[1].role, Role::Assistant);
    }

    #[test]
    fn placeholder_mismatches_and_unknown_speakers_are_errors() {
        let extra = record(r#"{"image": "a.png", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "ok"}]}"#);
        assert!(extra.to_messages(Path::new(".")).unwrap_err().contains("no <image> placeholder"));
        let missing = record(r#"{"conversations": [{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "ok"}]}"#);
        assert!(missing.to_messages(Path::new(".")).unwrap_err().contains("more <image>"));
        let who = record(r#"{"conversations": [{"from": "bot", "value": "x"}]}"#);
        assert!(who.to_messages(Path::new(".")).unwrap_err().contains("`bot`"));
    }

    #[test]
    fn jsonl_reports_malformed_lines() {
        let dir = std::env::temp_dir().join(format!("interlace-data-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("d.jsonl");
        std::fs::write(&path, "{\"conversations\": []}\nnot json\n\n{\"conversations\": [{\"from\": \"gpt\", \"value\": \"x\"}]}\n").unwrap();
        let (records, skipped) = read_records(&path).unwrap();
        assert_eq!(records.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 4]);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].line, 2);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
