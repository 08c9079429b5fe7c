//! Prompts, following VLMEvalKit's conventions for Qwen2-VL / Qwen3-VL.
//!
//! The user turn holds the images first (in row order), then one text part:
//!
//! - multiple choice (VLMEvalKit `build_prompt` of the Qwen VL wrappers and `ImageMCQDataset`):
//!   `Hint: {hint}\n` (when there is one), `Question: {question}\n`, `Options:\n`, one
//!   `{letter}. {text}\n` per option, then `Please select the correct answer from the options
//!   above.` (VLMEvalKit appends ` \n` and strips trailing whitespace, which leaves exactly this);
//! - yes/no (`ImageYORNDataset`): `{question} Please answer yes or no.`;
//! - open (`ImageVQADataset`): `{question}\nAnswer the question using a single word or phrase.`
//!
//! The chat template then adds `<|im_start|>assistant\n` (the generation prompt); answers are
//! scored or generated right after it, with no system prompt.

use image::DynamicImage;
use interlace_chat::{ChatMessage, ContentPart};

use crate::item::{BenchItem, QuestionKind};

/// Appended to multiple-choice prompts.
pub const MCQ_INSTRUCTION: &str = "Please select the correct answer from the options above.";
/// Appended to yes/no questions.
pub const YES_NO_INSTRUCTION: &str = " Please answer yes or no.";
/// Appended to open questions.
pub const OPEN_INSTRUCTION: &str = "\nAnswer the question using a single word or phrase.";

/// The text part of the user turn for `item`.
pub fn prompt_text(item: &BenchItem) -> String {
    match item.kind() {
        QuestionKind::MultipleChoice => {
            let mut text = String::new();
            if let Some(hint) = &item.hint {
                text.push_str(&format!("Hint: {hint}\n"));
            }
            text.push_str(&format!("Question: {}\n", item.question));
            text.push_str("Options:\n");
            for (letter, option) in &item.options {
                text.push_str(&format!("{letter}. {option}\n"));
            }
            text.push_str(MCQ_INSTRUCTION);
            text
        }
        QuestionKind::YesNo => format!("{}{YES_NO_INSTRUCTION}", item.question),
        QuestionKind::Open => format!("{}{OPEN_INSTRUCTION}", item.question),
    }
}

/// The conversation to feed the processor: one user turn, images first, then the prompt text.
pub fn messages(item: &BenchItem, images: Vec<DynamicImage>) -> Vec<ChatMessage> {
    let mut content: Vec<ContentPart> = images.into_iter().map(ContentPart::image).collect();
    content.push(ContentPart::text(prompt_text(item)));
    vec![ChatMessage::user(content)]
}
