//! The one thing the analysis, training and evaluation crates need from a model family's
//! processor: chat messages in, the family's model input out.

use crate::message::ChatMessage;

/// A supervised conversation: the model input and one label per input token (the token to
/// learn at that position, or [`crate::labels::IGNORE_INDEX`] where the family's fine-tuning
/// rule masks it).
#[derive(Debug, Clone)]
pub struct ChatExample<I> {
    /// The model input.
    pub input: I,
    /// One label per input token.
    pub labels: Vec<i64>,
}

/// A model family's processor: renders messages with the family's chat template, tokenizes
/// them and preprocesses their images. Implemented by each model crate; `Send + Sync` because
/// data-parallel training shares one between its replicas.
pub trait ChatProcessor: Send + Sync {
    /// The model's input type (`ObservedForward::Input`).
    type Input;

    /// The input for `messages`, with the assistant generation prompt appended when asked
    /// (calibration and generation), or why it cannot be built (an unreadable image, ...).
    fn chat_input(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<Self::Input, String>;

    /// A training example of a whole conversation (no generation prompt) with the family's
    /// label rule, cut to `max_length` tokens; an error when the cut would split an image.
    fn chat_example(&self, messages: &[ChatMessage], max_length: usize) -> Result<ChatExample<Self::Input>, String>;

    /// The input for a plain-text document (no chat template; the tokenizer's own special tokens
    /// added, as `tokenizer(text)` does): SLEB / ShortGPT-style calibration on raw text. The
    /// default refuses, for families that only take conversations.
    fn document_input(&self, text: &str) -> Result<Self::Input, String> {
        let _ = text;
        Err("this model family takes conversations, not plain-text documents".into())
    }

    /// Token ids of plain `text` (no special tokens added): answer options to score.
    fn encode_text(&self, text: &str) -> Result<Vec<u32>, String>;

    /// Text of token ids, without special tokens when `skip_special`: a generated reply.
    fn decode_tokens(&self, ids: &[u32], skip_special: bool) -> Result<String, String>;
}
