//! A benchmark's score as VLMEvalKit computes it without a judge model.

use std::collections::BTreeMap;

use serde::Serialize;

use super::dataset::{Dataset, DatasetKind};
use super::{mcq, open, yesno};
use crate::item::BenchItem;

/// One question and the model's reply to it, as the scorers see them.
#[derive(Debug, Clone, Copy)]
pub struct Answered<'a> {
    /// The question.
    pub item: &'a BenchItem,
    /// The raw reply (VLMEvalKit's `prediction` column).
    pub prediction: &'a str,
}

/// What VLMEvalKit's `evaluate` reports for one benchmark.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetScore {
    /// What [`DatasetScore::score`] measures, e.g. `circular accuracy (%)`.
    pub metric: String,
    /// The headline number (percent, or VLMEvalKit's own scale where the model cards use it);
    /// `None` when only a judge model can score the benchmark.
    pub score: Option<f64>,
    /// Every number VLMEvalKit's `evaluate` returns, in its own units, keyed
    /// `row/column` for tables (`none/Overall`, `Average/all`) or by name for dictionaries.
    pub details: BTreeMap<String, f64>,
    /// Each question's own score in `[0, 1]`, in input order (for circular benchmarks a group's
    /// first row carries the group's score); `None` where the benchmark has no per-question rule.
    pub item_scores: Vec<Option<f64>>,
    /// Why the benchmark is not (fully) scored by rules, when it is not.
    pub judge_note: Option<String>,
}

impl DatasetScore {
    pub(crate) fn new(metric: &str, score: Option<f64>, details: BTreeMap<String, f64>, item_scores: Vec<Option<f64>>) -> Self {
        Self { metric: metric.to_string(), score, details, item_scores, judge_note: None }
    }
}

/// The arithmetic mean (`np.mean`); NaN for no values, as numpy gives.
pub(crate) fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = values.into_iter().fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

/// A row's field (after pandas' typing), if present.
pub(crate) fn field<'a>(item: &'a BenchItem, name: &str) -> Option<&'a str> {
    item.fields.get(name).map(String::as_str)
}

/// Scores `answered` as VLMEvalKit scores `dataset`; a file VLMEvalKit does not know is scored
/// by the generic rules of its kind (`ImageMCQDataset`, `ImageYORNDataset`, `ImageVQADataset`).
///
/// An empty reply is scored as `nan`: VLMEvalKit saves replies to a spreadsheet and reads them
/// back, which turns an empty cell into NaN and then the string `nan`.
pub fn score_dataset(dataset: Option<Dataset>, kind: DatasetKind, answered: &[Answered]) -> DatasetScore {
    let answered: Vec<Answered> =
        answered.iter().map(|a| Answered { item: a.item, prediction: if a.prediction.is_empty() { "nan" } else { a.prediction } }).collect();
    let answered = answered.as_slice();
    match dataset {
        Some(Dataset::MmBenchDevEnV11) => mcq::circular(answered),
        Some(Dataset::HrBench4K | Dataset::HrBench8K) => mcq::hrbench(answered),
        Some(Dataset::Pope) => yesno::pope(answered),
        Some(Dataset::Mme) => yesno::mme(answered),
        Some(Dataset::TextVqaVal) => open::vqa(answered, open::Method::VqaScore),
        Some(Dataset::ChartQaTest) => open::vqa(answered, open::Method::RelaxedAccuracy),
        Some(Dataset::OcrBench) => open::ocrbench(answered),
        Some(Dataset::MiaBench) => {
            let mut score = DatasetScore::new("judge score", None, BTreeMap::new(), vec![None; answered.len()]);
            score.judge_note = Some(
                "MIA-Bench is scored only by an LLM judge (VLMEvalKit's MIABench.evaluate has no rule-based fallback); the replies are in the predictions file for VLMEvalKit to judge".into(),
            );
            score
        }
        Some(_) => mcq::vanilla(answered),
        None => match kind {
            DatasetKind::MultipleChoice => mcq::vanilla(answered),
            DatasetKind::YesNo => yesno::default_rating(answered),
            DatasetKind::Open => open::vqa(answered, open::Method::Exact),
        },
    }
}
