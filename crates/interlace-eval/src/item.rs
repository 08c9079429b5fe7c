//! One benchmark question, whatever file it came from.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::images::ImageData;

/// How a question is answered and scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// Options `A`, `B`, ...; the answer is a letter (MMBench, AI2D, ScienceQA, RealWorldQA,
    /// HRBench, V-Star).
    MultipleChoice,
    /// No options and every reference answer is yes or no (POPE).
    YesNo,
    /// A short free-form answer (TextVQA, ChartQA, OCRBench).
    Open,
}

/// One question of a benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchItem {
    /// The row's `index` (or `line N` when the file has none).
    pub index: String,
    /// 1-based line of the file where the row starts.
    pub line: usize,
    /// The question text.
    pub question: String,
    /// Extra context shown before the question (MMBench `hint`).
    pub hint: Option<String>,
    /// Options in letter order; empty for yes/no and open questions.
    pub options: Vec<(char, String)>,
    /// Reference answers: one letter for multiple choice, `yes`/`no`, or one or more strings.
    pub answers: Vec<String>,
    /// The row's category, for the per-category breakdown.
    pub category: Option<String>,
    /// Images, shown before the text in the order given.
    pub images: Vec<ImageData>,
    /// Every non-empty cell of the row except the images, as `str()` of pandas' value (TSV) or
    /// the JSON scalar: what dataset rules read (`split`, `g_index`, `l2-category`,
    /// `cycle_category`, `image_path`, ...) and what the predictions file repeats.
    pub fields: BTreeMap<String, String>,
}

impl BenchItem {
    /// Options make a multiple-choice question; otherwise yes/no references make a yes/no
    /// question; anything else is open.
    pub fn kind(&self) -> QuestionKind {
        if !self.options.is_empty() {
            QuestionKind::MultipleChoice
        } else if !self.answers.is_empty() && self.answers.iter().all(|a| is_yes_or_no(a)) {
            QuestionKind::YesNo
        } else {
            QuestionKind::Open
        }
    }

    /// The correct option's letter of a multiple-choice question.
    pub fn answer_letter(&self) -> Option<char> {
        let answer = self.answers.first()?.trim();
        let mut chars = answer.chars();
        let letter = chars.next()?.to_ascii_uppercase();
        (chars.next().is_none() && self.options.iter().any(|(l, _)| *l == letter)).then_some(letter)
    }
}

fn is_yes_or_no(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "yes" | "no")
}

/// A row that was skipped, with where it was and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Malformed {
    /// The row's `index` (or `line N`).
    pub index: String,
    /// 1-based line of the file where the row starts.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}
