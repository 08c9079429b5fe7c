//! Yes/no scoring: `YOrN_Extraction` per reply, then `POPE_rating`, `MME_rating` or
//! `default_rating`.

use std::collections::{BTreeMap, BTreeSet};

use super::answer::yes_or_no;
use super::score::{field, mean, Answered, DatasetScore};

/// `data['answer'] == data['extracted']`: the raw answer must be exactly `Yes` or `No` as
/// extracted (so a file answering `yes` never scores, as in VLMEvalKit).
fn correct(a: &Answered) -> bool {
    a.item.answers.first().is_some_and(|answer| answer == yes_or_no(a.prediction))
}

/// F1, precision and recall of the `Yes` class, each 0 when undefined.
fn f1(pairs: &[(bool, bool)]) -> (f64, f64, f64) {
    let count = |truth: bool, predicted: bool| pairs.iter().filter(|&&p| p == (truth, predicted)).count() as f64;
    let (tp, fp, fn_) = (count(true, true), count(false, true), count(true, false));
    let precision = if tp + fp != 0.0 { tp / (tp + fp) } else { 0.0 };
    let recall = if tp + fn_ != 0.0 { tp / (tp + fn_) } else { 0.0 };
    let f1 = if precision + recall != 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    (f1, precision, recall)
}

/// `POPE_rating`: rows are repeated once per comma-separated category; then F1 (reported as
/// `Overall`), accuracy, precision and recall, all rows and per category, in percent.
pub fn pope(answered: &[Answered]) -> DatasetScore {
    // (category, truth is yes, extracted is yes, correct)
    let mut rows: Vec<(Option<String>, bool, bool, bool)> = Vec::new();
    for a in answered {
        let truth = a.item.answers.first().is_some_and(|x| x == "Yes");
        let predicted = yes_or_no(a.prediction) == "Yes";
        let categories: Vec<Option<String>> = match field(a.item, "category") {
            Some(c) => c.split(',').map(|s| Some(s.to_string())).collect(),
            None => vec![None],
        };
        for category in categories {
            rows.push((category, truth, predicted, correct(a)));
        }
    }
    let mut details = BTreeMap::new();
    let mut report = |name: &str, subset: Vec<&(Option<String>, bool, bool, bool)>| {
        let pairs: Vec<(bool, bool)> = subset.iter().map(|r| (r.1, r.2)).collect();
        let (f1, precision, recall) = f1(&pairs);
        details.insert(format!("{name}/Overall"), 100.0 * f1);
        details.insert(format!("{name}/acc"), 100.0 * mean(subset.iter().map(|r| f64::from(u8::from(r.3)))));
        details.insert(format!("{name}/precision"), 100.0 * precision);
        details.insert(format!("{name}/recall"), 100.0 * recall);
    };
    report("Overall", rows.iter().collect());
    let categories: BTreeSet<&String> = rows.iter().filter_map(|r| r.0.as_ref()).collect();
    for category in categories {
        report(category, rows.iter().filter(|r| r.0.as_ref() == Some(category)).collect());
    }
    let score = details.get("Overall/Overall").copied();
    let item_scores = answered.iter().map(|a| Some(f64::from(u8::from(correct(a))))).collect();
    DatasetScore::new("F1 of yes (%)", score, details, item_scores)
}

/// MME's perception and reasoning categories (`MME_rating`'s `super_cates`).
const MME_PERCEPTION: [&str; 10] = ["OCR", "artwork", "celebrity", "color", "count", "existence", "landmark", "position", "posters", "scene"];
const MME_REASONING: [&str; 4] = ["code_reasoning", "commonsense_reasoning", "numerical_calculation", "text_translation"];

/// `MME_rating`: per category, accuracy plus accuracy+ (both questions about an image right),
/// each in percent, so a category scores up to 200; `perception` and `reasoning` are sums of
/// their categories. The headline is perception + reasoning (up to 2800), as MME reports.
/// Images are told apart by `image_path` (the real MME file has it), else by the image itself.
pub fn mme(answered: &[Answered]) -> DatasetScore {
    let mut stats: BTreeMap<String, Vec<(String, Vec<f64>)>> = BTreeMap::new();
    for a in answered {
        let category = field(a.item, "category").unwrap_or("nan").to_string();
        let image = field(a.item, "image_path").map(str::to_string).unwrap_or_else(|| format!("{:?}", a.item.images));
        let per_image = stats.entry(category).or_default();
        let score = f64::from(u8::from(correct(a)));
        match per_image.iter_mut().find(|(path, _)| *path == image) {
            Some((_, scores)) => scores.push(score),
            None => per_image.push((image, vec![score])),
        }
    }
    let mut details = BTreeMap::new();
    for (category, images) in &stats {
        let accuracy = mean(images.iter().flat_map(|(_, s)| s.iter().copied()));
        // An image with one question (never in the real file) counts that answer for acc+.
        let plus = mean(images.iter().map(|(_, s)| s.iter().take(2).product::<f64>()));
        details.insert(category.clone(), 100.0 * accuracy + 100.0 * plus);
    }
    let sum_of = |names: &[&str]| names.iter().filter_map(|n| details.get(*n)).sum::<f64>();
    let (perception, reasoning) = (sum_of(&MME_PERCEPTION), sum_of(&MME_REASONING));
    details.insert("perception".into(), perception);
    details.insert("reasoning".into(), reasoning);
    let item_scores = answered.iter().map(|a| Some(f64::from(u8::from(correct(a))))).collect();
    DatasetScore::new("perception + reasoning (of 2800)", Some(perception + reasoning), details, item_scores)
}

/// `default_rating`: accuracy overall and per `category` and `l2-category`, in percent. Used
/// for yes/no files VLMEvalKit does not know, so the answer is compared ignoring case (VLMEvalKit
/// would count a lowercase `yes` wrong whatever the reply).
pub fn default_rating(answered: &[Answered]) -> DatasetScore {
    let matches = |a: &Answered| a.item.answers.first().is_some_and(|answer| answer.eq_ignore_ascii_case(yes_or_no(a.prediction)));
    let scores: Vec<f64> = answered.iter().map(|a| f64::from(u8::from(matches(a)))).collect();
    let mut details = BTreeMap::new();
    details.insert("Overall".to_string(), 100.0 * mean(scores.iter().copied()));
    for group in ["category", "l2-category"] {
        let names: BTreeSet<&str> = answered.iter().filter_map(|a| field(a.item, group)).collect();
        for name in names {
            let values = answered.iter().zip(&scores).filter(|(a, _)| field(a.item, group) == Some(name)).map(|(_, s)| *s);
            details.insert(name.to_string(), 100.0 * mean(values));
        }
    }
    let score = details.get("Overall").copied();
    DatasetScore::new("accuracy (%)", score, details, scores.into_iter().map(Some).collect())
}
