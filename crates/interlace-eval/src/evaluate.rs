//! Scoring a model on benchmark questions.

use std::collections::BTreeMap;

use interlace_chat::ChatProcessor;
use serde::Serialize;

use crate::choice::best_choice;
use crate::extract::{extract_choice, extract_yes_no, open_answer};
use crate::item::{BenchItem, Malformed, QuestionKind};
use crate::model::EvalModel;
use crate::normalize::open_score;
use crate::prompt::messages;
use crate::reader::Benchmark;
use crate::EvalError;

/// How closed questions (multiple choice, yes/no) are answered. Open questions are always
/// answered by greedy decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoringMode {
    /// The answer whose tokens are most likely right after the generation prompt: option
    /// letters `A`, `B`, ...; `Yes`/`yes` against `No`/`no` (the larger of each pair). Does not
    /// depend on decoding: a model that prefers the right letter scores even if it would have
    /// rambled.
    LogLikelihood,
    /// Greedy decoding, then the answer is read out of the reply ([`crate::extract`]).
    Generate,
}

/// Settings of an evaluation run.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    /// How closed questions are scored.
    pub mode: ScoringMode,
    /// Upper bound on generated tokens per reply.
    pub max_new_tokens: usize,
    /// Tokens that end a reply (the model's `generation_config.json` eos ids).
    pub eos_token_ids: Vec<u32>,
    /// Evaluate only the first `limit` usable questions of each benchmark.
    pub limit: Option<usize>,
    /// A row that fails while being evaluated is an error instead of being skipped.
    pub strict: bool,
}

impl EvalOptions {
    /// Log-likelihood scoring, replies of at most 32 tokens, every question.
    pub fn new(eos_token_ids: Vec<u32>) -> Self {
        Self { mode: ScoringMode::LogLikelihood, max_new_tokens: 32, eos_token_ids, limit: None, strict: false }
    }
}

/// The outcome of one question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemResult {
    /// The row's `index`.
    pub index: String,
    /// The row's category.
    pub category: Option<String>,
    /// The question's kind.
    pub kind: QuestionKind,
    /// What the model answered: a letter, `Yes`/`No`, or the reply's first line.
    pub prediction: String,
    /// The reply as generated (empty under log-likelihood scoring).
    pub reply: String,
    /// Log-likelihood of each candidate (option letters in order, or yes then no); empty when
    /// the answer was generated.
    pub log_probs: Vec<f64>,
    /// Score in `[0, 1]`.
    pub score: f64,
}

/// A model's result on one benchmark.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchmarkResult {
    /// The benchmark's name.
    pub name: String,
    /// Mean question score in percent (0 when nothing was evaluated).
    pub score: f64,
    /// Number of questions evaluated.
    pub evaluated: usize,
    /// Mean score in percent per category.
    pub per_category: BTreeMap<String, f64>,
    /// Every question's outcome.
    pub items: Vec<ItemResult>,
    /// Rows skipped, while reading or while evaluating.
    pub malformed: Vec<Malformed>,
}

/// The model input of a question: images decoded, prompt rendered with the generation prompt.
///
/// A question that cannot be prepared (undecodable image, ...) is [`EvalError::Item`].
pub fn prepare_input<P: ChatProcessor>(processor: &P, item: &BenchItem) -> Result<P::Input, EvalError> {
    let bad = |reason: String| EvalError::Item { index: item.index.clone(), reason };
    let images = item.images.iter().map(|image| image.load()).collect::<Result<Vec<_>, _>>().map_err(bad)?;
    processor.chat_input(&messages(item, images), true).map_err(bad)
}

fn encode<P: ChatProcessor>(processor: &P, text: &str) -> Result<Vec<u32>, EvalError> {
    let tokens = processor.encode_text(text).map_err(EvalError::Processor)?;
    if tokens.is_empty() {
        return Err(EvalError::Input(format!("`{text}` encodes to no tokens")));
    }
    Ok(tokens)
}

fn reply<P: ChatProcessor, M: EvalModel<Input = P::Input>>(model: &M, processor: &P, input: &P::Input, options: &EvalOptions) -> Result<String, EvalError> {
    let tokens = model.greedy(input, options.max_new_tokens, &options.eos_token_ids)?;
    processor.decode_tokens(&tokens, true).map_err(EvalError::Processor)
}

/// Answers and scores one question.
///
/// A question that cannot be prepared (undecodable image, ...) is [`EvalError::Item`].
pub fn evaluate_item<P: ChatProcessor, M: EvalModel<Input = P::Input>>(
    model: &M,
    processor: &P,
    item: &BenchItem,
    options: &EvalOptions,
) -> Result<ItemResult, EvalError> {
    let input = prepare_input(processor, item)?;
    let kind = item.kind();
    let mut result = ItemResult {
        index: item.index.clone(),
        category: item.category.clone(),
        kind,
        prediction: String::new(),
        reply: String::new(),
        log_probs: Vec::new(),
        score: 0.0,
    };
    match (kind, options.mode) {
        (QuestionKind::MultipleChoice, ScoringMode::LogLikelihood) => {
            let continuations = item.options.iter().map(|(l, _)| encode(processor, &l.to_string())).collect::<Result<Vec<_>, _>>()?;
            result.log_probs = model.continuation_log_probs(&input, &continuations)?;
            if let Some(best) = best_choice(&result.log_probs) {
                result.prediction = item.options[best].0.to_string();
            }
        }
        (QuestionKind::MultipleChoice, ScoringMode::Generate) => {
            result.reply = reply(model, processor, &input, options)?;
            result.prediction = extract_choice(&result.reply, &item.options).map(String::from).unwrap_or_default();
        }
        (QuestionKind::YesNo, ScoringMode::LogLikelihood) => {
            // Capitalised and lowercase spellings are both natural first words; the likelier
            // spelling stands for each answer.
            let words = ["Yes", "yes", "No", "no"];
            let continuations = words.iter().map(|w| encode(processor, w)).collect::<Result<Vec<_>, _>>()?;
            let lp = model.continuation_log_probs(&input, &continuations)?;
            let (yes, no) = (lp[0].max(lp[1]), lp[2].max(lp[3]));
            result.log_probs = vec![yes, no];
            result.prediction = if yes >= no { "Yes" } else { "No" }.to_string();
        }
        (QuestionKind::YesNo, ScoringMode::Generate) => {
            result.reply = reply(model, processor, &input, options)?;
            result.prediction = match extract_yes_no(&result.reply) {
                Some(true) => "Yes".into(),
                Some(false) => "No".into(),
                None => String::new(),
            };
        }
        (QuestionKind::Open, _) => {
            result.reply = reply(model, processor, &input, options)?;
            result.prediction = open_answer(&result.reply);
        }
    }
    result.score = match kind {
        QuestionKind::MultipleChoice => f64::from(item.answer_letter().map(String::from) == Some(result.prediction.clone())),
        QuestionKind::YesNo => f64::from(!result.prediction.is_empty() && result.prediction.eq_ignore_ascii_case(item.answers[0].trim())),
        QuestionKind::Open => open_score(&result.prediction, &item.answers),
    };
    Ok(result)
}

/// Evaluates every usable question of `benchmark` (up to `options.limit`), calling `progress`
/// with the number done after each. Rows that fail while being evaluated join the malformed
/// list (or, with `options.strict`, stop the run).
pub fn evaluate_benchmark<P: ChatProcessor, M: EvalModel<Input = P::Input>>(
    model: &M,
    processor: &P,
    benchmark: &Benchmark,
    options: &EvalOptions,
    mut progress: impl FnMut(usize),
) -> Result<BenchmarkResult, EvalError> {
    let take = options.limit.unwrap_or(usize::MAX).min(benchmark.items.len());
    let mut items = Vec::with_capacity(take);
    let mut malformed = benchmark.malformed.clone();
    for (done, item) in benchmark.items.iter().take(take).enumerate() {
        match evaluate_item(model, processor, item, options) {
            Ok(result) => items.push(result),
            Err(EvalError::Item { index, reason }) => {
                if options.strict {
                    return Err(EvalError::Malformed { path: benchmark.path.clone(), index, reason });
                }
                malformed.push(Malformed { index, line: item.line, reason });
            }
            Err(other) => return Err(other),
        }
        progress(done + 1);
    }
    let mean = |scores: &[f64]| if scores.is_empty() { 0.0 } else { 100.0 * scores.iter().sum::<f64>() / scores.len() as f64 };
    let mut by_category: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for item in &items {
        if let Some(category) = &item.category {
            by_category.entry(category.clone()).or_default().push(item.score);
        }
    }
    let scores: Vec<f64> = items.iter().map(|i| i.score).collect();
    Ok(BenchmarkResult {
        name: benchmark.name.clone(),
        score: mean(&scores),
        evaluated: items.len(),
        per_category: by_category.into_iter().map(|(k, v)| (k, mean(&v))).collect(),
        items,
        malformed,
    })
}
