//! Text in, token ids out: a checkpoint's own tokenizer (`tokenizer.json`) and chat template, as
//! transformers' `AutoTokenizer` applies them.
//!
//! - Plain text ([`TextProcessor::encode_document`]) is tokenized like `tokenizer(text)`: with
//!   the tokenizer's own special tokens (Llama 3 prepends `<|begin_of_text|>`, Qwen adds none).
//! - Conversations ([`ChatProcessor::chat_input`]) are rendered with the chat template and
//!   tokenized without added special tokens, as `apply_chat_template(..., tokenize=True)` does.
//!   Message content goes to the template as a plain string, the form text templates expect.

use std::ops::Range;
use std::path::Path;

use interlace_chat::labels::IGNORE_INDEX;
use interlace_chat::{ChatExample, ChatMessage, ChatProcessor, ChatTemplate, ContentPart, RenderOptions, Role};
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

    /// The rendered conversation and the byte spans of it the assistant writes: for each
    /// assistant message `k`, what rendering `messages[..=k]` adds to rendering `messages[..k]`
    /// with the generation prompt, i.e. its content and the template's end of turn (ChatML:
    /// `content<|im_end|>\n`; Llama 3: `content<|eot_id|>`). Works for any template that renders
    /// a conversation's earlier turns the same whatever follows them.
    pub fn assistant_spans(&self, messages: &[ChatMessage]) -> std::result::Result<(String, Vec<Range<usize>>), String> {
        let full = self.render(messages, false)?;
        let mut spans = Vec::new();
        for (k, _) in messages.iter().enumerate().filter(|(_, m)| m.role == Role::Assistant) {
            let prompt = self.render(&messages[..k], true)?;
            let through = self.render(&messages[..=k], false)?;
            if !through.starts_with(&prompt) || !full.starts_with(&through) {
                return Err("the chat template renders earlier turns differently once later ones follow (it may strip reasoning from past turns), \
                            so assistant-only labels cannot be placed"
                    .into());
            }
            spans.push(prompt.len()..through.len());
        }
        Ok((full, spans))
    }

    /// Token ids of a whole conversation and one label per token: the token where it starts
    /// inside an assistant span ([`Self::assistant_spans`]), [`IGNORE_INDEX`] elsewhere.
    pub fn supervised_ids(&self, messages: &[ChatMessage]) -> std::result::Result<(Vec<u32>, Vec<i64>), String> {
        let (full, spans) = self.assistant_spans(messages)?;
        let encoding = self.tokenizer.encode(full.as_str(), false).map_err(|e| format!("cannot tokenize: {e}"))?;
        let ids = encoding.get_ids().to_vec();
        let labels = ids
            .iter()
            .zip(encoding.get_offsets())
            .map(|(&id, &(start, _))| if spans.iter().any(|span| span.contains(&start)) { id as i64 } else { IGNORE_INDEX })
            .collect();
        Ok((ids, labels))
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
        let (mut ids, mut labels) = self.supervised_ids(messages)?;
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
