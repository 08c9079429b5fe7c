//! Chat messages in the transformers format: roles, text and image items.

use std::path::PathBuf;
use std::sync::Arc;

use image::DynamicImage;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

/// The author of a chat message; serialises to `"system"`, `"user"` or `"assistant"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// System prompt.
    System,
    /// User turn.
    User,
    /// Assistant turn.
    Assistant,
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// A file path, opened as given (a relative path is relative to the current directory).
    Path(PathBuf),
    /// An already decoded image.
    Memory(Arc<DynamicImage>),
}

/// One item of a message's content.
///
/// Serialises to what transformers feeds the template: `{"type": "text", "text": ...}`,
/// `{"type": "image", "image": "<path>"}` for a path, `{"type": "image"}` for an in-memory image.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentPart {
    /// An image; rendered by the Qwen3-VL template as
    /// `<|vision_start|><|image_pad|><|vision_end|>`.
    Image(ImageSource),
    /// Verbatim text.
    Text(String),
}

impl ContentPart {
    /// A text item.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// An image item read from `path`.
    pub fn image_path(path: impl Into<PathBuf>) -> Self {
        Self::Image(ImageSource::Path(path.into()))
    }

    /// An in-memory image item.
    pub fn image(img: DynamicImage) -> Self {
        Self::Image(ImageSource::Memory(Arc::new(img)))
    }
}

impl Serialize for ContentPart {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            ContentPart::Text(t) => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("type", "text")?;
                m.serialize_entry("text", t)?;
                m.end()
            }
            ContentPart::Image(ImageSource::Path(p)) => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("type", "image")?;
                m.serialize_entry("image", &p.to_string_lossy())?;
                m.end()
            }
            ContentPart::Image(ImageSource::Memory(_)) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("type", "image")?;
                m.end()
            }
        }
    }
}

/// One chat message: a role and a list of content items.
///
/// Deserialises from the transformers message format; string content becomes one text item
/// (the Qwen templates render both identically), image items may use the keys `image`,
/// `path` or `url` (taken as a file path).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawMessage")]
pub struct ChatMessage {
    /// Author of the message.
    pub role: Role,
    /// Content items in order.
    pub content: Vec<ContentPart>,
}

impl ChatMessage {
    /// A message from explicit parts.
    pub fn new(role: Role, content: Vec<ContentPart>) -> Self {
        Self { role, content }
    }

    /// A system message with one text item.
    pub fn system(text: impl Into<String>) -> Self {
        Self::new(Role::System, vec![ContentPart::text(text)])
    }

    /// A user message from parts.
    pub fn user(content: Vec<ContentPart>) -> Self {
        Self::new(Role::User, content)
    }

    /// An assistant message with one text item.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::new(Role::Assistant, vec![ContentPart::text(text)])
    }

    /// The image items of this message, in order.
    pub fn images(&self) -> impl Iterator<Item = &ImageSource> {
        self.content.iter().filter_map(|c| match c {
            ContentPart::Image(src) => Some(src),
            ContentPart::Text(_) => None,
        })
    }
}

#[derive(Deserialize)]
struct RawMessage {
    role: Role,
    content: RawContent,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawContent {
    Text(String),
    Parts(Vec<serde_json::Value>),
}

impl TryFrom<RawMessage> for ChatMessage {
    type Error = String;

    fn try_from(raw: RawMessage) -> std::result::Result<Self, String> {
        let content = match raw.content {
            RawContent::Text(t) => vec![ContentPart::Text(t)],
            RawContent::Parts(parts) => parts
                .into_iter()
                .map(|p| {
                    let ty = p.get("type").and_then(|t| t.as_str());
                    let image_src = ["image", "path", "url"].iter().find_map(|k| p.get(*k).and_then(|v| v.as_str()));
                    match ty {
                        Some("text") | None if p.get("text").is_some() => {
                            p.get("text").and_then(|t| t.as_str()).map(ContentPart::text).ok_or_else(|| format!("text item without a string `text`: {p}"))
                        }
                        Some("image") | None if image_src.is_some() || ty.is_some() => {
                            image_src.map(ContentPart::image_path).ok_or_else(|| format!("image item without a path: {p}"))
                        }
                        _ => Err(format!("unsupported content item: {p}")),
                    }
                })
                .collect::<std::result::Result<_, _>>()?,
        };
        Ok(ChatMessage { role: raw.role, content })
    }
}
