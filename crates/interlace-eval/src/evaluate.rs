//! Answering a benchmark's questions and scoring them as VLMEvalKit does.

use std::collections::BTreeMap;

use interlace_chat::{ChatMessage, ChatProcessor, ContentPart};
use serde::Serialize;

use crate::choice::best_choice;
use crate::item::{BenchItem, Malformed};
use crate::model::EvalModel;
use crate::reader::Benchmark;
use crate::sampling::Sampling;
use crate::speed::SpeedReport;
use crate::vlmeval::{build_prompt, item_kind, score_dataset, Answered, DatasetKind, DatasetScore, PromptPart};
use crate::EvalError;

/// How replies are produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoringMode {
    /// VLMEvalKit's way (the default): every question is answered by generation with the
    /// dataset's prompt, and the reply is scored by the dataset's rules (option extraction,
    /// yes/no extraction, VQA accuracy, ...).
    Generate,
    /// A fast mode that is *not* VLMEvalKit's: multiple-choice and yes/no questions are answered
    /// by the likeliest answer right after the prompt (option letters; `Yes`/`yes` against
    /// `No`/`no`), which needs one prefill instead of a decode; open questions are still
    /// generated. The chosen letter or word is then scored by the same dataset rules.
    LogLikelihood,
}

/// Settings of an evaluation run.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    /// How replies are produced.
    pub mode: ScoringMode,
    /// Upper bound on generated tokens per reply.
    pub max_new_tokens: usize,
    /// How generated tokens are chosen.
    pub sampling: Sampling,
    /// Tokens that end a reply (the model's `generation_config.json` eos ids).
    pub eos_token_ids: Vec<u32>,
    /// Evaluate only the first `limit` usable questions of each benchmark.
    pub limit: Option<usize>,
    /// A row that fails while being evaluated is an error instead of being skipped.
    pub strict: bool,
}

impl EvalOptions {
    /// VLMEvalKit's run of Qwen3-VL: generation with [`Sampling::vlmevalkit_qwen3vl`] and up
    /// to 16384 new tokens, every question.
    pub fn new(eos_token_ids: Vec<u32>) -> Self {
        Self { mode: ScoringMode::Generate, max_new_tokens: 16384, sampling: Sampling::vlmevalkit_qwen3vl(), eos_token_ids, limit: None, strict: false }
    }
}

/// The outcome of one question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemResult {
    /// The row's `index`.
    pub index: String,
    /// The row's category.
    pub category: Option<String>,
    /// How the question was scored.
    pub kind: DatasetKind,
    /// What the scorer read: the reply (generation), or the chosen letter / `Yes` / `No`
    /// (log-likelihood mode). VLMEvalKit's `prediction` column.
    pub prediction: String,
    /// Log-likelihood of each candidate (option letters in order, or yes then no); empty when
    /// the answer was generated.
    pub log_probs: Vec<f64>,
    /// The question's own score in `[0, 1]` under the dataset's rules (`None` where the rules
    /// score only groups or need a judge).
    pub score: Option<f64>,
}

/// A model's result on one benchmark.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchmarkResult {
    /// The benchmark's name (the file name).
    pub name: String,
    /// The VLMEvalKit dataset whose rules scored it, if it is one.
    pub dataset: Option<String>,
    /// What [`BenchmarkResult::score`] measures.
    pub metric: String,
    /// The headline score; `None` when only a judge model can score the benchmark.
    pub score: Option<f64>,
    /// Every number VLMEvalKit's evaluation reports for it, in its units.
    pub details: BTreeMap<String, f64>,
    /// Why the benchmark is not scored by rules, when it is not.
    pub judge_note: Option<String>,
    /// Number of questions evaluated.
    pub evaluated: usize,
    /// Every question's outcome.
    pub items: Vec<ItemResult>,
    /// Rows skipped, while reading or while evaluating.
    pub malformed: Vec<Malformed>,
    /// Time to first token and decode speed on the benchmark's first question with an image.
    pub speed: Option<SpeedReport>,
}

/// How a question of `benchmark` is scored: its dataset's kind, else its own.
pub fn question_kind(benchmark: &Benchmark, item: &BenchItem) -> DatasetKind {
    benchmark.dataset.map(|d| d.kind()).unwrap_or_else(|| item_kind(item))
}

/// The conversation VLMEvalKit sends: one user turn, the row's images, then the prompt text.
pub fn messages(benchmark: &Benchmark, item: &BenchItem, images: Vec<image::DynamicImage>) -> Vec<ChatMessage> {
    let mut images = images.into_iter();
    let content: Vec<ContentPart> = build_prompt(benchmark.dataset, item)
        .into_iter()
        .filter_map(|part| match part {
            PromptPart::Image(_) => images.next().map(ContentPart::image),
            PromptPart::Text(text) => Some(ContentPart::text(text)),
        })
        .collect();
    vec![ChatMessage::user(content)]
}

/// The model input of a question: images decoded, prompt rendered with the generation prompt.
///
/// A question that cannot be prepared (undecodable image, ...) is [`EvalError::Item`].
pub fn prepare_input<P: ChatProcessor>(processor: &P, benchmark: &Benchmark, item: &BenchItem) -> Result<P::Input, EvalError> {
    let bad = |reason: String| EvalError::Item { index: item.index.clone(), reason };
    let images = item.images.iter().map(|image| image.load()).collect::<Result<Vec<_>, _>>().map_err(bad)?;
    processor.chat_input(&messages(benchmark, item, images), true).map_err(bad)
}

fn encode<P: ChatProcessor>(processor: &P, text: &str) -> Result<Vec<u32>, EvalError> {
    let tokens = processor.encode_text(text).map_err(EvalError::Processor)?;
    if tokens.is_empty() {
        return Err(EvalError::Input(format!("`{text}` encodes to no tokens")));
    }
    Ok(tokens)
}

/// Answers one question (scoring needs the whole benchmark: see [`evaluate_benchmark`]).
///
/// A question that cannot be prepared (undecodable image, ...) is [`EvalError::Item`].
pub fn answer_item<P: ChatProcessor, M: EvalModel<Input = P::Input>>(
    model: &M,
    processor: &P,
    benchmark: &Benchmark,
    item: &BenchItem,
    options: &EvalOptions,
) -> Result<ItemResult, EvalError> {
    let input = prepare_input(processor, benchmark, item)?;
    let kind = question_kind(benchmark, item);
    let mut result =
        ItemResult { index: item.index.clone(), category: item.category.clone(), kind, prediction: String::new(), log_probs: Vec::new(), score: None };
    match (kind, options.mode) {
        (DatasetKind::MultipleChoice, ScoringMode::LogLikelihood) if !item.options.is_empty() => {
            let continuations = item.options.iter().map(|(l, _)| encode(processor, &l.to_string())).collect::<Result<Vec<_>, _>>()?;
            result.log_probs = model.continuation_log_probs(&input, &continuations)?;
            result.prediction = best_choice(&result.log_probs).map(|best| item.options[best].0.to_string()).unwrap_or_default();
        }
        (DatasetKind::YesNo, ScoringMode::LogLikelihood) => {
            // Capitalised and lowercase spellings are both natural first words; the likelier
            // spelling stands for each answer.
            let words = ["Yes", "yes", "No", "no"];
            let continuations = words.iter().map(|w| encode(processor, w)).collect::<Result<Vec<_>, _>>()?;
            let lp = model.continuation_log_probs(&input, &continuations)?;
            let (yes, no) = (lp[0].max(lp[1]), lp[2].max(lp[3]));
            result.log_probs = vec![yes, no];
            result.prediction = if yes >= no { "Yes" } else { "No" }.to_string();
        }
        _ => {
            let tokens = model.generate(&input, options.max_new_tokens, &options.eos_token_ids, &options.sampling, item.line as u64)?;
            result.prediction = processor.decode_tokens(&tokens, true).map_err(EvalError::Processor)?;
        }
    }
    Ok(result)
}

/// Answers every usable question of `benchmark` (up to `options.limit`), calling `progress`
/// with the number done after each, then scores them with the dataset's rules. Rows that fail
/// while being evaluated join the malformed list (or, with `options.strict`, stop the run).
pub fn evaluate_benchmark<P: ChatProcessor, M: EvalModel<Input = P::Input>>(
    model: &M,
    processor: &P,
    benchmark: &Benchmark,
    options: &EvalOptions,
    mut progress: impl FnMut(usize),
) -> Result<BenchmarkResult, EvalError> {
    let take = options.limit.unwrap_or(usize::MAX).min(benchmark.items.len());
    let mut answered = Vec::with_capacity(take);
    let mut malformed = benchmark.malformed.clone();
    for (done, item) in benchmark.items.iter().take(take).enumerate() {
        match answer_item(model, processor, benchmark, item, options) {
            Ok(result) => answered.push((item, result)),
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
    Ok(score_answers(benchmark, answered, malformed))
}

/// Scores answered questions of `benchmark` with its dataset's rules. A file VLMEvalKit does
/// not know is scored by the generic rules of each question's kind; when it mixes kinds, each
/// kind is scored on its own (details prefixed by the kind) and the headline is the mean
/// question score.
pub fn score_answers(benchmark: &Benchmark, answered: Vec<(&BenchItem, ItemResult)>, malformed: Vec<Malformed>) -> BenchmarkResult {
    let inputs: Vec<Answered> = answered.iter().map(|(item, r)| Answered { item, prediction: &r.prediction }).collect();
    let kinds: Vec<DatasetKind> = answered.iter().map(|(_, r)| r.kind).collect();
    let mut distinct = kinds.clone();
    distinct.dedup();
    distinct.sort_by_key(|k| *k as u8);
    distinct.dedup();
    let scored = if benchmark.dataset.is_some() || distinct.len() <= 1 {
        score_dataset(benchmark.dataset, distinct.first().copied().unwrap_or(DatasetKind::Open), &inputs)
    } else {
        mixed_kinds(&inputs, &kinds, &distinct)
    };
    let items: Vec<ItemResult> = answered.into_iter().zip(&scored.item_scores).map(|((_, r), s)| ItemResult { score: *s, ..r }).collect();
    BenchmarkResult {
        name: benchmark.name.clone(),
        dataset: benchmark.dataset.map(|d| d.name().to_string()),
        metric: scored.metric,
        score: scored.score.filter(|s| !s.is_nan()),
        details: scored.details,
        judge_note: scored.judge_note,
        evaluated: items.len(),
        items,
        malformed,
        speed: None,
    }
}

fn mixed_kinds(inputs: &[Answered], kinds: &[DatasetKind], distinct: &[DatasetKind]) -> DatasetScore {
    let mut item_scores = vec![None; inputs.len()];
    let mut details = BTreeMap::new();
    for &kind in distinct {
        let positions: Vec<usize> = (0..inputs.len()).filter(|&i| kinds[i] == kind).collect();
        let subset: Vec<Answered> = positions.iter().map(|&i| inputs[i]).collect();
        let part = score_dataset(None, kind, &subset);
        for (&i, s) in positions.iter().zip(part.item_scores) {
            item_scores[i] = s;
        }
        let label = serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        details.extend(part.details.into_iter().map(|(k, v)| (format!("{label}/{k}"), v)));
    }
    let scores: Vec<f64> = item_scores.iter().flatten().copied().collect();
    let score = (!scores.is_empty()).then(|| 100.0 * scores.iter().sum::<f64>() / scores.len() as f64);
    DatasetScore { metric: "mean question score over mixed kinds (%)".into(), score, details, item_scores, judge_note: None }
}
