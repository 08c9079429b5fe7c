//! Text in, token ids out: a checkpoint's own tokenizer (`tokenizer.json`) and chat template, as
//! transformers' `AutoTokenizer` applies them.
//!
//! - Plain text ([`TextProcessor::encode_document`]) is tokenized like `tokenizer(text)`: with
//!   the tokenizer's own special tokens (Llama 3 prepends `<|begin_of_text|>`, Qwen adds none).
//! - Conversations ([`ChatProcessor::chat_input`]) are rendered with the chat template and
//!   tokenized without added special tokens, as `apply_chat_template(..., tokenize=True)` does.
//!   Message content goes to the template as a plain string, the form text templates expect.

use std::path::Path;

use interlace_chat::labels::{assistant_labels, TurnMarkers};
use interlace_chat::{ChatExample, ChatMessage, ChatProcessor, ChatTemplate, ContentPart, RenderOptions};
use serde_json::{json, Value};
use tokenizers::Tokenizer;

use crate::{LlamaError, Result, TextInput};

/// The tokenizer and chat template of a text checkpoint.
pub struct TextProcessor {
    tokenizer: Tokenizer,
    template: Option<ChatTemplate>,
    bos_token_id: Option<u32>,
    eos_token_id: Option<u32>,
}

impl std::fmt::Debug for TextProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextProcessor").field("template", &self.template.as_ref().map(ChatTemplate::source_name)).finish_non_exhaustive()
    }
}

impl TextProcessor {
    /// Reads `dir/tokenizer.json` and, where the directory has one, its chat template
    /// (`chat_template.jinja`, `chat_template.json` or `tokenizer_config.json`'s field).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let path = dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&path).map_err(|e| LlamaError::Input(format!("cannot load {}: {e}", path.display())))?;
        let has_template = ["chat_template.jinja", "chat_template.json"].iter().any(|f| dir.join(f).is_file()) || tokenizer_config_has_template(dir);
        let template = if has_template { Some(ChatTemplate::from_dir(dir).map_err(|e| LlamaError::Input(e.to_string()))?) } else { None };
        let config = tokenizer_config(dir);
        let special = |key: &str| {
            let token = match config.as_ref()?.get(key)? {
                Value::String(s) => s.clone(),
                Value::Object(o) => o.get("content")?.as_str()?.to_string(),
                _ => return None,
            };
            tokenizer.token_to_id(&token)
        };
        let (bos_token_id, eos_token_id) = (special("bos_token"), special("eos_token"));
        Ok(Self { tokenizer, template, bos_token_id, eos_token_id })
    }

    /// The id of `tokenizer_config.json`'s `bos_token` (Llama 3: `<|begin_of_text|>`; Qwen: none).
    pub fn bos_token_id(&self) -> Option<u32> {
        self.bos_token_id
    }

    /// The id of `tokenizer_config.json`'s `eos_token`.
    pub fn eos_token_id(&self) -> Option<u32> {
        self.eos_token_id
    }

    /// Token ids of `text`, with the tokenizer's own special tokens when `special`
    /// (`tokenizer.encode(text, add_special_tokens=special)`).
    pub fn encode_with(&self, text: &str, special: bool) -> Result<Vec<u32>> {
        self.encode(text, special).map_err(LlamaError::Input)
    }

    /// The underlying tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Token ids of a document, with the tokenizer's own special tokens (`tokenizer(text)`).
    pub fn encode_document(&self, text: &str) -> Result<Vec<u32>> {
        self.encode(text, true).map_err(LlamaError::Input)
    }

    fn encode(&self, text: &str, special: bool) -> std::result::Result<Vec<u32>, String> {
        self.tokenizer.encode(text, special).map(|e| e.get_ids().to_vec()).map_err(|e| format!("cannot tokenize: {e}"))
    }

    /// The rendered conversation (the template's text, before tokenizing).
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> std::result::Result<String, String> {
        let template =
            self.template.as_ref().ok_or("this checkpoint has no chat template (chat_template.jinja, chat_template.json or tokenizer_config.json)")?;
        let messages = messages.iter().map(text_message).collect::<std::result::Result<Vec<_>, _>>()?;
        template.render_json(&Value::Array(messages), RenderOptions { add_generation_prompt, add_vision_id: false }).map_err(|e| e.to_string())
    }

    /// `<|im_start|>` / `assistant\n` / `<|im_end|>` of ChatML templates (Qwen, and the tiny
    /// fixtures); other turn formats have no supervised-span rule here yet.
    fn turn_markers(&self) -> std::result::Result<TurnMarkers, String> {
        let token = |t: &str| {
            self.tokenizer.token_to_id(t).ok_or_else(|| format!("assistant-only labels need ChatML turn markers, and the tokenizer has no {t} token"))
        };
        Ok(TurnMarkers { im_start: token("<|im_start|>")?, im_end: token("<|im_end|>")?, assistant_header: self.encode("assistant\n", false)? })
    }
}

fn tokenizer_config(dir: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer_config.json")).ok()?).ok()
}

fn tokenizer_config_has_template(dir: &Path) -> bool {
    tokenizer_config(dir).is_some_and(|config| config.get("chat_template").is_some_and(|t| !t.is_null()))
}

/// `{"role", "content": "text"}`; a text model cannot take images.
fn text_message(message: &ChatMessage) -> std::result::Result<Value, String> {
    let mut text = String::new();
    for part in &message.content {
        match part {
            ContentPart::Text(t) => text.push_str(t),
            ContentPart::Image(_) => return Err("a text model cannot take images; remove the image from the message".into()),
        }
    }
    Ok(json!({ "role": message.role, "content": text }))
}

impl ChatProcessor for TextProcessor {
    type Input = TextInput;

    fn chat_input(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> std::result::Result<TextInput, String> {
        Ok(TextInput::from(self.encode(&self.render(messages, add_generation_prompt)?, false)?))
    }

    fn chat_example(&self, messages: &[ChatMessage], max_length: usize) -> std::result::Result<ChatExample<TextInput>, String> {
        let mut ids = self.encode(&self.render(messages, false)?, false)?;
        let mut labels = assistant_labels(&ids, &self.turn_markers()?);
        ids.truncate(max_length);
        labels.truncate(max_length);
        Ok(ChatExample { input: TextInput::from(ids), labels })
    }

    fn document_input(&self, text: &str) -> std::result::Result<TextInput, String> {
        Ok(TextInput::from(self.encode(text, true)?))
    }

    fn encode_text(&self, text: &str) -> std::result::Result<Vec<u32>, String> {
        self.encode(text, false)
    }

    fn decode_tokens(&self, ids: &[u32], skip_special: bool) -> std::result::Result<String, String> {
        self.tokenizer.decode(ids, skip_special).map_err(|e| format!("cannot decode: {e}"))
    }
}
