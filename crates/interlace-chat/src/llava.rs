//! LLaVA / FineVision conversation records and the files that hold them.
//!
//! A record is `{"image": "a.jpg" | ["a.jpg", ...], "conversations": [{"from": "human" | "gpt" |
//! "system", "value": "..."}]}`; text-only records have no `image`. The chat form
//! `{"messages": [{"role", "content"}]}` is read too (text only). A data file is either a JSON
//! array of records or JSONL (one record per line, blank lines ignored).
//!
//! [`RecordFile`] finds where every record lies once, then reads one record at a time from
//! disk: memory grows by a few words per record, never with the records' size, so
//! FineVision-size sets can be opened. Calibration (`interlace-similarity`) and training
//! (`interlace-train`) both read their data through this module.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::Deserialize;

use crate::message::{ChatMessage, ContentPart, Role};

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
///
/// Read from the LLaVA form (`image`, `conversations` of `from` / `value` turns) or from the
/// OpenAI / Hugging Face chat form, `{"messages": [{"role": "user" | "assistant" | "system",
/// "content": "..."}]}` (text content: a string, or a list of `{"type": "text", "text": ...}`
/// parts). Chat-form messages are kept verbatim: no `<image>` placeholders, no trimming.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "RawRecord")]
pub struct ConversationRecord {
    /// Image paths, relative to the data file (or the image root).
    pub image: Option<Images>,
    /// The turns.
    pub conversations: Vec<Turn>,
    /// True for a chat-form record: its text is used as written.
    pub verbatim: bool,
}

/// Either form of a record, as it is in the file.
#[derive(Deserialize)]
struct RawRecord {
    #[serde(default)]
    image: Option<Images>,
    conversations: Option<Vec<Turn>>,
    messages: Option<Vec<RawMessage>>,
}

#[derive(Deserialize)]
struct RawMessage {
    role: String,
    content: RawContent,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawContent {
    Text(String),
    Parts(Vec<serde_json::Value>),
}

impl TryFrom<RawRecord> for ConversationRecord {
    type Error = String;

    fn try_from(raw: RawRecord) -> Result<Self, String> {
        match (raw.conversations, raw.messages) {
            (Some(conversations), None) => Ok(Self { image: raw.image, conversations, verbatim: false }),
            (None, Some(messages)) => {
                if raw.image.is_some() {
                    return Err("`image` goes with LLaVA `conversations`, not with `messages`".into());
                }
                let turns = messages.into_iter().map(|m| Ok(Turn { from: m.role, value: text_content(m.content)? })).collect::<Result<_, String>>()?;
                Ok(Self { image: None, conversations: turns, verbatim: true })
            }
            (Some(_), Some(_)) => Err("a record has either `conversations` or `messages`, not both".into()),
            (None, None) => Err("missing field `conversations` (LLaVA form) or `messages` (chat form)".into()),
        }
    }
}

/// The text of a chat-form message: a string, or the concatenated text parts.
fn text_content(content: RawContent) -> Result<String, String> {
    match content {
        RawContent::Text(text) => Ok(text),
        RawContent::Parts(parts) => parts
            .iter()
            .map(|part| match (part.get("type").and_then(|t| t.as_str()), part.get("text").and_then(|t| t.as_str())) {
                (Some("text"), Some(text)) => Ok(text),
                _ => Err(format!("only text parts are read from `messages` (images: use the LLaVA form), found {part}")),
            })
            .collect(),
    }
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
    /// turns (text segments trimmed), assistant turns as plain text. This is how the official
    /// Qwen-VL fine-tuning (`_build_messages`) places them.
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
            let content =
                if role == Role::User && !self.verbatim { user_content(&turn.value, &mut images)? } else { vec![ContentPart::text(turn.value.clone())] };
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

/// A record that could not be used, with where it was.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Skipped {
    /// 1-based line (JSONL) or element (JSON array) number.
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// Why a data file, or one record in it, cannot be read. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum LlavaError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The data file.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// The file starts with `[` but is not valid JSON.
    #[error("{path} is not a JSON array of records: {reason}")]
    NotAnArray {
        /// The data file.
        path: PathBuf,
        /// The JSON parser's explanation.
        reason: String,
    },
    /// One record is not UTF-8, not JSON, or not shaped like a conversation record.
    #[error("{path}:{line}: {reason}")]
    Record {
        /// The data file.
        path: PathBuf,
        /// 1-based line of the file where the record starts.
        line: usize,
        /// What is wrong (`not valid JSON: ...` or `malformed record: ...`).
        reason: String,
    },
    /// A record index past the end of the file.
    #[error("{path} has {len} records; there is no record {index}")]
    NoRecord {
        /// The data file.
        path: PathBuf,
        /// The index asked for.
        index: usize,
        /// Number of records.
        len: usize,
    },
}

/// Where one record's text lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    /// 1-based line where the record starts.
    line: usize,
    /// Byte offset of its first byte.
    offset: u64,
    /// Its length in bytes.
    len: usize,
}

/// A JSON-array or JSONL file of conversation records, open for random access by record index.
///
/// Only the position of each record is kept in memory; [`RecordFile::record`] reads and parses
/// that one record from disk. Reading takes `&self` (one file handle behind a lock), so a
/// `RecordFile` can be shared by data-parallel workers.
#[derive(Debug)]
pub struct RecordFile {
    path: PathBuf,
    is_array: bool,
    spans: Vec<Span>,
    // Seek-then-read must not interleave between threads.
    file: Mutex<File>,
}

impl RecordFile {
    /// Opens `path` and indexes its records: a JSON array if the first non-blank character is
    /// `[`, JSONL otherwise. A JSON array must be valid JSON as a whole (like `json.load`);
    /// JSONL lines are checked only when read, so one bad line does not reject the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LlavaError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| LlavaError::Io { path: path.clone(), source };
        let mut file = File::open(&path).map_err(io)?;
        let is_array = first_char(&mut file).map_err(io)? == Some(b'[');
        let spans = if is_array { array_spans(&file, &path)? } else { line_spans(&file).map_err(io)? };
        Ok(Self { path, is_array, spans, file: Mutex::new(file) })
    }

    /// The data file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True for a JSON array, false for JSONL.
    pub fn is_array(&self) -> bool {
        self.is_array
    }

    /// Number of records (JSONL: non-blank lines, malformed ones included).
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when the file holds no record.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// 1-based line of the file where record `index` starts (0 when there is no such record).
    pub fn line_of(&self, index: usize) -> usize {
        self.spans.get(index).map_or(0, |span| span.line)
    }

    /// The JSON text of record `index`, read from disk ([`LlavaError::NoRecord`] past the end).
    pub fn text(&self, index: usize) -> Result<String, LlavaError> {
        let span = *self.spans.get(index).ok_or_else(|| LlavaError::NoRecord { path: self.path.clone(), index, len: self.spans.len() })?;
        let mut bytes = vec![0u8; span.len];
        {
            // A panic elsewhere cannot leave the handle inconsistent: every read seeks first.
            let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
            file.seek(SeekFrom::Start(span.offset))
                .and_then(|_| file.read_exact(&mut bytes))
                .map_err(|source| LlavaError::Io { path: self.path.clone(), source })?;
        }
        String::from_utf8(bytes).map_err(|_| self.record_error(span.line, "not UTF-8".into()))
    }

    /// Reads and parses record `index`. A record that is not JSON or not shaped like a
    /// [`ConversationRecord`] is a [`LlavaError::Record`] naming the file and line.
    pub fn record(&self, index: usize) -> Result<ConversationRecord, LlavaError> {
        let text = self.text(index)?;
        serde_json::from_str(&text).map_err(|e| self.record_error(self.line_of(index), json_reason(&e)))
    }

    fn record_error(&self, line: usize, reason: String) -> LlavaError {
        LlavaError::Record { path: self.path.clone(), line, reason }
    }
}

/// Tells broken JSON apart from JSON of the wrong shape, so a user knows which to look for.
fn json_reason(error: &serde_json::Error) -> String {
    match error.classify() {
        serde_json::error::Category::Data => format!("malformed record: {error}"),
        _ => format!("not valid JSON: {error}"),
    }
}

/// The first non-whitespace byte of `file`, which is left at its start.
fn first_char(file: &mut File) -> std::io::Result<Option<u8>> {
    let mut reader = BufReader::new(&mut *file);
    let found = loop {
        let buf = reader.fill_buf()?;
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
    file.seek(SeekFrom::Start(0))?;
    Ok(found)
}

/// JSONL: one span per non-blank line (the line ending included; JSON ignores it).
fn line_spans(file: &File) -> std::io::Result<Vec<Span>> {
    let mut reader = BufReader::new(file);
    let mut spans = Vec::new();
    let mut buf = Vec::new();
    let (mut offset, mut line) = (0u64, 0usize);
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        line += 1;
        if buf.iter().any(|c| !c.is_ascii_whitespace()) {
            spans.push(Span { line, offset, len: n });
        }
        offset += n as u64;
    }
    Ok(spans)
}

/// JSON array: checks the whole file is valid JSON (streamed, nothing kept), then finds the
/// span of every top-level element.
fn array_spans(mut file: &File, path: &Path) -> Result<Vec<Span>, LlavaError> {
    let io = |source| LlavaError::Io { path: path.to_path_buf(), source };
    serde_json::from_reader::<_, serde::de::IgnoredAny>(BufReader::new(file)).map_err(|e| {
        if e.is_io() {
            io(e.into())
        } else {
            LlavaError::NotAnArray { path: path.to_path_buf(), reason: e.to_string() }
        }
    })?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut reader = BufReader::new(file);
    let mut scanner = ArrayScanner::default();
    let mut offset = 0u64;
    loop {
        let buf = reader.fill_buf().map_err(io)?;
        if buf.is_empty() {
            break;
        }
        for &byte in buf {
            scanner.feed(byte, offset);
            offset += 1;
        }
        let n = buf.len();
        reader.consume(n);
    }
    Ok(scanner.spans)
}

/// Finds the top-level elements of a JSON array byte by byte. The array has already been
/// validated, so only strings (whose brackets and commas do not count) and the nesting depth
/// need tracking.
#[derive(Debug)]
struct ArrayScanner {
    /// 0 outside the array, 1 between its elements, more inside an element.
    depth: usize,
    in_string: bool,
    escaped: bool,
    line: usize,
    /// `(line, offset)` where the element being scanned starts.
    open: Option<(usize, u64)>,
    /// Offset of the last byte that is not whitespace or a separator.
    last: u64,
    spans: Vec<Span>,
}

impl Default for ArrayScanner {
    fn default() -> Self {
        Self { depth: 0, in_string: false, escaped: false, line: 1, open: None, last: 0, spans: Vec::new() }
    }
}

impl ArrayScanner {
    fn feed(&mut self, byte: u8, offset: u64) {
        if self.in_string {
            match byte {
                _ if self.escaped => self.escaped = false,
                b'\\' => self.escaped = true,
                b'"' => self.in_string = false,
                _ => {}
            }
            self.last = offset;
            return;
        }
        match byte {
            b'\n' => self.line += 1,
            b' ' | b'\t' | b'\r' => {}
            b',' if self.depth == 1 => self.close_element(),
            b']' if self.depth == 1 => {
                self.close_element();
                self.depth = 0;
            }
            b']' | b'}' => {
                self.depth = self.depth.saturating_sub(1);
                self.last = offset;
            }
            _ => {
                if self.depth == 1 && self.open.is_none() {
                    self.open = Some((self.line, offset));
                }
                match byte {
                    b'[' | b'{' => self.depth += 1,
                    b'"' => self.in_string = true,
                    _ => {}
                }
                self.last = offset;
            }
        }
    }

    fn close_element(&mut self) {
        if let Some((line, offset)) = self.open.take() {
            self.spans.push(Span { line, offset, len: (self.last + 1 - offset) as usize });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> ConversationRecord {
        serde_json::from_str(json).unwrap()
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn chat_form_records_are_read_verbatim() {
        let r = record(
            r#"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": " Hi <image> "}]},
            {"role": "assistant", "content": "Hello."}]}"#,
        );
        assert!(r.verbatim);
        let messages = r.to_messages(Path::new("/d")).unwrap();
        assert_eq!(messages[1].content, vec![ContentPart::text(" Hi <image> ")], "no placeholder split, no trimming");
        assert_eq!(messages[2].role, Role::Assistant);
        let bad = |json: &str| serde_json::from_str::<ConversationRecord>(json).unwrap_err().to_string();
        assert!(bad(r#"{"messages": [{"role": "user", "content": [{"type": "image", "image": "a.png"}]}]}"#).contains("only text parts"));
        assert!(bad(r#"{"messages": [], "conversations": []}"#).contains("not both"));
        assert!(bad(r#"{"id": 1}"#).contains("`messages`"));
    }

    #[test]
    fn images_go_to_their_placeholders() {
        let r = record(
            r#"{"image": ["a.png", "b.png"], "conversations": [
            {"from": "human", "value": "<image>\nFirst <image> second"}, {"from": "gpt", "value": "ok"}]}"#,
        );
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
    fn jsonl_records_are_read_one_by_one_with_their_lines() {
        let dir = tempfile::tempdir().unwrap();
        let good = r#"{"image": "a.png", "conversations": [{"from": "human", "value": "<image>\nHi"}]}"#;
        let text = format!("{good}\n\n{{not json\n{{\"conversations\": 3}}\r\n  \n{{\"conversations\": []}}");
        let file = RecordFile::open(write(&dir, "d.jsonl", &text)).unwrap();
        assert!(!file.is_array());
        assert_eq!(file.len(), 4, "blank lines are not records");
        assert_eq!((0..4).map(|i| file.line_of(i)).collect::<Vec<_>>(), vec![1, 3, 4, 6]);
        assert_eq!(file.line_of(4), 0);
        assert_eq!(file.record(0).unwrap(), record(good));
        assert_eq!(file.text(0).unwrap().trim_end(), good);
        let broken = file.record(1).unwrap_err().to_string();
        assert!(broken.contains("d.jsonl:3: not valid JSON"), "{broken}");
        let shape = file.record(2).unwrap_err().to_string();
        assert!(shape.contains("d.jsonl:4: malformed record"), "{shape}");
        assert_eq!(file.record(3).unwrap(), ConversationRecord { image: None, conversations: vec![], verbatim: false }, "last line without newline");
        assert!(matches!(file.record(4), Err(LlavaError::NoRecord { index: 4, len: 4, .. })), "past the end: an error, not a panic");
    }

    #[test]
    fn json_array_elements_are_found_without_being_fooled_by_strings() {
        let dir = tempfile::tempdir().unwrap();
        let first = r#"{"image": ["a.png", "b],{.png"], "conversations": [{"from": "human", "value": "say \"],\" \\"}]}"#;
        let second = r#"{"conversations": [{"from": "gpt", "value": "x"}]}"#;
        let text = format!("  [\n  {first},\n\n  {second}  ,\n  {{\"conversations\": \"no\"}}, 7\n]\n");
        let file = RecordFile::open(write(&dir, "d.json", &text)).unwrap();
        assert!(file.is_array());
        assert_eq!(file.len(), 4);
        assert_eq!((0..4).map(|i| file.line_of(i)).collect::<Vec<_>>(), vec![2, 4, 5, 5]);
        assert_eq!(file.text(0).unwrap(), first);
        assert_eq!(file.text(1).unwrap(), second);
        assert_eq!(file.text(3).unwrap(), "7");
        assert_eq!(file.record(0).unwrap(), record(first));
        assert_eq!(file.record(1).unwrap(), record(second));
        assert!(file.record(2).unwrap_err().to_string().contains("d.json:5: malformed record"));
        assert!(file.record(3).is_err());
    }

    #[test]
    fn empty_and_invalid_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(RecordFile::open(write(&dir, "empty.json", " [ ] ")).unwrap().is_empty());
        assert!(RecordFile::open(write(&dir, "empty.jsonl", "")).unwrap().is_empty());
        let truncated = RecordFile::open(write(&dir, "array.json", "[{\"conversations\": []}, ")).unwrap_err().to_string();
        assert!(truncated.contains("array.json is not a JSON array of records"), "{truncated}");
        let trailing = RecordFile::open(write(&dir, "trailing.json", "[] []")).unwrap_err();
        assert!(matches!(trailing, LlavaError::NotAnArray { .. }), "{trailing}");
        let missing = RecordFile::open(dir.path().join("nope.jsonl")).unwrap_err();
        assert!(matches!(missing, LlavaError::Io { .. }) && missing.to_string().contains("nope.jsonl"), "{missing}");
    }

    #[test]
    fn the_file_is_shareable_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<RecordFile>();
    }
}
