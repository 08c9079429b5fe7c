//! Open-answer scoring: `ImageVQADataset.evaluate` (`process_line`, `hit_calculate`) and
//! `OCRBench.evaluate`.

use std::collections::{BTreeMap, BTreeSet};

use super::answer::process_answer;
use super::score::{field, mean, Answered, DatasetScore};

/// `process_line`'s method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// TextVQA: for each reference, `min(1, (other references equal to the prediction) / 3)`,
    /// all normalised by `process_answer`; the question scores the mean.
    VqaScore,
    /// ChartQA: within 5% of a non-zero numeric reference, else equal ignoring case; the
    /// question scores the best reference.
    RelaxedAccuracy,
    /// VLMEvalKit's default: the share of references equal to the prediction after
    /// `process_answer`.
    Exact,
}

/// Python's `float(text)`: surrounding whitespace and `_` between digits allowed.
fn python_float(text: &str) -> Option<f64> {
    let text = text.trim();
    let bytes = text.as_bytes();
    let underscores_ok =
        bytes.iter().enumerate().all(|(i, &b)| b != b'_' || (i > 0 && i + 1 < bytes.len() && bytes[i - 1].is_ascii_digit() && bytes[i + 1].is_ascii_digit()));
    if !underscores_ok {
        return None;
    }
    text.replace('_', "").parse::<f64>().ok()
}

/// `relaxed_correctness._to_float`: a trailing `%` (all of them) divides by 100.
fn to_float(text: &str) -> Option<f64> {
    if text.ends_with('%') {
        python_float(text.trim_end_matches('%')).map(|v| v / 100.0)
    } else {
        python_float(text)
    }
}

/// `relaxed_correctness(target, prediction)` with a 5% tolerance.
pub fn relaxed_correctness(target: &str, prediction: &str) -> bool {
    match (to_float(prediction), to_float(target)) {
        // `if prediction_float is not None and target_float:` (0.0 is falsy, NaN is not).
        (Some(p), Some(t)) if t != 0.0 => (p - t).abs() / t.abs() <= 0.05,
        _ => prediction.to_lowercase() == target.to_lowercase(),
    }
}

/// The row's references: the `answer` list, or the one answer.
fn references<'a>(a: &Answered<'a>) -> &'a [String] {
    &a.item.answers
}

/// `process_line` then `hit_calculate`: one question's score in `[0, 1]`.
pub fn question_score(a: &Answered, method: Method) -> f64 {
    let answers = references(a);
    match method {
        Method::VqaScore => {
            let gts: Vec<String> = answers.iter().map(|x| process_answer(x)).collect();
            let prediction = process_answer(a.prediction);
            mean((0..gts.len()).map(|i| {
                let matching = gts.iter().enumerate().filter(|(j, g)| *j != i && **g == prediction).count();
                (matching as f64 / 3.0).min(1.0)
            }))
        }
        Method::RelaxedAccuracy => {
            let prediction = a.prediction.trim();
            let best = answers.iter().any(|x| relaxed_correctness(x, prediction));
            f64::from(u8::from(best))
        }
        Method::Exact => {
            let prediction = process_answer(a.prediction);
            mean(answers.iter().map(|x| f64::from(u8::from(process_answer(x) == prediction))))
        }
    }
}

/// `ImageVQADataset.evaluate_heuristic`: `Overall` and, with a `split` column, each split;
/// otherwise each `category`; all in percent.
pub fn vqa(answered: &[Answered], method: Method) -> DatasetScore {
    let scores: Vec<f64> = answered.iter().map(|a| question_score(a, method)).collect();
    let mut details = BTreeMap::new();
    details.insert("Overall".to_string(), 100.0 * mean(scores.iter().copied()));
    let group = if answered.iter().any(|a| field(a.item, "split").is_some()) { "split" } else { "category" };
    let names: BTreeSet<&str> = answered.iter().filter_map(|a| field(a.item, group)).collect();
    for name in names {
        let values = answered.iter().zip(&scores).filter(|(a, _)| field(a.item, group) == Some(name)).map(|(_, s)| *s);
        details.insert(name.to_string(), 100.0 * mean(values));
    }
    let metric = match method {
        Method::VqaScore => "VQA accuracy (%)",
        Method::RelaxedAccuracy => "relaxed accuracy (%)",
        Method::Exact => "exact match (%)",
    };
    let score = details.get("Overall").copied();
    DatasetScore::new(metric, score, details, scores.into_iter().map(Some).collect())
}

/// OCRBench's ten categories.
const OCRBENCH_CATEGORIES: [&str; 10] = [
    "Regular Text Recognition",
    "Irregular Text Recognition",
    "Artistic Text Recognition",
    "Handwriting Recognition",
    "Digit String Recognition",
    "Non-Semantic Text Recognition",
    "Scene Text-centric VQA",
    "Doc-oriented VQA",
    "Key Information Extraction",
    "Handwritten Mathematical Expression Recognition",
];
const HMER: &str = "Handwritten Mathematical Expression Recognition";

/// OCRBench's rule for one question: some reference is a substring of the prediction,
/// case-insensitive after trimming; for handwritten formulas, with all spaces removed instead.
fn ocrbench_hit(a: &Answered) -> bool {
    let formula = field(a.item, "category") == Some(HMER);
    let prepare = |text: &str| {
        if formula {
            text.trim().replace('\n', " ").replace(' ', "")
        } else {
            text.to_lowercase().trim().replace('\n', " ")
        }
    };
    let prediction = prepare(a.prediction);
    references(a).iter().any(|answer| prediction.contains(&prepare(answer)))
}

/// `OCRBench.evaluate`: questions right per category, the five reported groups, `Final Score`
/// (of 1000) and `Final Score Norm` (of 100, the headline).
pub fn ocrbench(answered: &[Answered]) -> DatasetScore {
    let mut counts: BTreeMap<&str, f64> = OCRBENCH_CATEGORIES.iter().map(|c| (*c, 0.0)).collect();
    let hits: Vec<bool> = answered.iter().map(ocrbench_hit).collect();
    for (a, hit) in answered.iter().zip(&hits) {
        if let (true, Some(count)) = (*hit, field(a.item, "category").and_then(|c| counts.get_mut(c))) {
            *count += 1.0;
        }
    }
    let mut details = BTreeMap::new();
    details.insert("Text Recognition".to_string(), OCRBENCH_CATEGORIES[..6].iter().map(|c| counts[c]).sum());
    for group in &OCRBENCH_CATEGORIES[6..] {
        details.insert(group.to_string(), counts[group]);
    }
    let total: f64 = details.values().sum();
    details.insert("Final Score".into(), total);
    details.insert("Final Score Norm".into(), total / 10.0);
    let item_scores = hits.into_iter().map(|h| Some(f64::from(u8::from(h)))).collect();
    DatasetScore::new("OCRBench final score (of 1000, /10)", Some(total / 10.0), details, item_scores)
}
