//! The Qwen-VL processor (all four families) behind the model-agnostic [`ChatProcessor`] trait,
//! with the official Qwen-VL fine-tuning label rule (assistant turns of the ChatML rendering).
//! Qwen2-VL, Qwen2.5-VL and Qwen3-VL share it: their templates all render ChatML, and Qwen's
//! fine-tuning code (`qwen-vl-finetune`, `preprocess_qwen_2_visual`) masks all but the assistant
//! turns the same way for each; Qwen2's default system prompt comes from its template and is
//! masked like any other non-assistant turn.

use interlace_chat::labels::{assistant_labels, TurnMarkers};
use interlace_chat::{ChatExample, ChatMessage, ChatProcessor};

use crate::processor::Qwen3VlProcessor;
use crate::Qwen3VlInput;

impl ChatProcessor for Qwen3VlProcessor {
    type Input = Qwen3VlInput;

    fn chat_input(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<Qwen3VlInput, String> {
        Ok(self.process(messages, add_generation_prompt).map_err(|e| e.to_string())?.into())
    }

    fn chat_example(&self, messages: &[ChatMessage], max_length: usize) -> Result<ChatExample<Qwen3VlInput>, String> {
        let processed = self.process(messages, false).map_err(|e| e.to_string())?;
        let mut labels = assistant_labels(&processed.input_ids, &self.turn_markers()?);
        let mut input: Qwen3VlInput = processed.into();
        if input.input_ids.len() > max_length {
            // Truncation may not split an image: its features must all find their tokens.
            if input.input_ids[max_length..].contains(&self.image_token_id()) {
                return Err(format!("{} tokens exceed max_length {max_length} inside an image", input.input_ids.len()));
            }
            input.input_ids.truncate(max_length);
            labels.truncate(max_length);
        }
        Ok(ChatExample { input, labels })
    }

    fn encode_text(&self, text: &str) -> Result<Vec<u32>, String> {
        self.encode(text).map_err(|e| e.to_string())
    }

    fn decode_tokens(&self, ids: &[u32], skip_special: bool) -> Result<String, String> {
        self.decode(ids, skip_special).map_err(|e| e.to_string())
    }
}

impl Qwen3VlProcessor {
    /// The ChatML tokens that delimit assistant turns: `<|im_start|>`, the tokens of
    /// `assistant\n`, `<|im_end|>`.
    pub fn turn_markers(&self) -> Result<TurnMarkers, String> {
        let token = |t: &str| self.tokenizer().token_to_id(t).ok_or_else(|| format!("the tokenizer has no {t} token"));
        Ok(TurnMarkers {
            im_start: token("<|im_start|>")?,
            im_end: token("<|im_end|>")?,
            assistant_header: self.encode("assistant\n").map_err(|e| e.to_string())?,
        })
    }
}
