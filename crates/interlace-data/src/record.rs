//! The LLaVA conversation record the official scripts write and `interlace train` reads.

use serde::{Deserialize, Serialize};

/// One training record: its image path(s), if any, then the conversation. Fields serialise in
/// this order, as the official scripts write them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlavaRecord {
    /// One path for a single image, a list for two or three, absent without images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImagePaths>,
    /// The turns in order.
    pub conversations: Vec<LlavaTurn>,
}

/// The `image` field: a string for one image, a list for several (as the official scripts write).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ImagePaths {
    /// A single image.
    One(String),
    /// Two or three images, in the order their `<image>` markers appear.
    Many(Vec<String>),
}

/// One turn: `from` is `human`, `gpt` or `system`; `value` is null where the source had a null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlavaTurn {
    /// Who speaks.
    pub from: String,
    /// What is said.
    pub value: Option<String>,
}

impl LlavaTurn {
    /// A turn from `from` saying `value`.
    pub fn new(from: &str, value: Option<String>) -> Self {
        Self { from: from.into(), value }
    }
}
