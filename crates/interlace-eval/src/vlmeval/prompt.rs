//! The prompt VLMEvalKit gives Qwen3-VL for a question.
//!
//! VLMEvalKit's configuration runs Qwen3-VL with `use_custom_prompt=False`, so the prompt is
//! the dataset class's own `build_prompt`: the row's images first, then one text part.
//! - `ImageMCQDataset` (AI2D, MMBench, RealWorldQA, HRBench, VStar, ScienceQA, MMStar):
//!   `Hint: {hint}\n` when there is one, `Question: {question}\n`, then, when the row has
//!   options, `Options:\n`, `{letter}. {text}\n` per option and
//!   `Please select the correct answer from the options above. \n` (trailing space and line
//!   break included: VLMEvalKit sends them).
//! - `ImageYORNDataset` (POPE, MME): the question as written (the files already end it with
//!   "Please answer yes or no.").
//! - `ImageVQADataset` (TextVQA, ChartQA): the question, then
//!   `\nAnswer the question using a single word or phrase.`
//! - OCRBench, MIA-Bench: the question as written.
//!
//! Cells are formatted as pandas reads them (see [`super::pandas`]), so an option `3` in a
//! column with an empty cell reads `3.0`, as in VLMEvalKit.

use super::dataset::{Dataset, DatasetKind};
use crate::item::BenchItem;

/// The multiple-choice instruction, exactly as VLMEvalKit appends it.
pub const MCQ_INSTRUCTION: &str = "Please select the correct answer from the options above. \n";
/// Appended to `ImageVQADataset` questions.
pub const VQA_INSTRUCTION: &str = "\nAnswer the question using a single word or phrase.";

/// One part of the user turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptPart {
    /// The row's image with this position in its image list.
    Image(usize),
    /// Text.
    Text(String),
}

/// How a benchmark's prompts are built: a known dataset, or the generic class of its kind.
pub fn prompt_kind(dataset: Option<Dataset>, item: &BenchItem) -> PromptStyle {
    match dataset {
        Some(Dataset::OcrBench | Dataset::MiaBench) => PromptStyle::Question,
        Some(d) => match d.kind() {
            DatasetKind::MultipleChoice => PromptStyle::MultipleChoice,
            DatasetKind::YesNo => PromptStyle::Question,
            DatasetKind::Open => PromptStyle::ShortAnswer,
        },
        None => match item_kind(item) {
            DatasetKind::MultipleChoice => PromptStyle::MultipleChoice,
            DatasetKind::YesNo => PromptStyle::Question,
            DatasetKind::Open => PromptStyle::ShortAnswer,
        },
    }
}

/// The kind of a question in a file VLMEvalKit does not know: options make it multiple
/// choice, yes/no references a yes/no question, anything else open.
pub fn item_kind(item: &BenchItem) -> DatasetKind {
    match item.kind() {
        crate::QuestionKind::MultipleChoice => DatasetKind::MultipleChoice,
        crate::QuestionKind::YesNo => DatasetKind::YesNo,
        crate::QuestionKind::Open => DatasetKind::Open,
    }
}

/// Which `build_prompt` a question gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptStyle {
    /// `ImageMCQDataset.build_prompt`.
    MultipleChoice,
    /// `ImageBaseDataset.build_prompt`: the question alone.
    Question,
    /// `ImageVQADataset.build_prompt`: the question and the short-answer instruction.
    ShortAnswer,
}

/// The text part of the prompt.
pub fn prompt_text(style: PromptStyle, item: &BenchItem) -> String {
    match style {
        PromptStyle::MultipleChoice => {
            let mut text = String::new();
            if let Some(hint) = &item.hint {
                text.push_str(&format!("Hint: {hint}\n"));
            }
            text.push_str(&format!("Question: {}\n", item.question));
            if !item.options.is_empty() {
                text.push_str("Options:\n");
                for (letter, option) in &item.options {
                    text.push_str(&format!("{letter}. {option}\n"));
                }
                text.push_str(MCQ_INSTRUCTION);
            }
            text
        }
        PromptStyle::Question => item.question.clone(),
        PromptStyle::ShortAnswer => format!("{}{VQA_INSTRUCTION}", item.question),
    }
}

/// The whole user turn: every image of the row, then the text.
pub fn build_prompt(dataset: Option<Dataset>, item: &BenchItem) -> Vec<PromptPart> {
    let mut parts: Vec<PromptPart> = (0..item.images.len()).map(PromptPart::Image).collect();
    parts.push(PromptPart::Text(prompt_text(prompt_kind(dataset, item), item)));
    parts
}
