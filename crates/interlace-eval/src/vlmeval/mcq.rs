//! Multiple-choice scoring: `mcq_vanilla_eval`, `mcq_circular_eval`, `report_acc` and
//! `report_acc_hrbench`, with exact matching (no judge).

use std::collections::{BTreeMap, BTreeSet};

use super::choice::infer_choice;
use super::score::{field, mean, Answered, DatasetScore};

/// MMBench's ability names, shortened as `report_acc` prints them.
const MMB_ABBREVIATIONS: [(&str, &str); 6] = [
    ("coarse_perception", "CP"),
    ("finegrained_perception (instance-level)", "FP-S"),
    ("finegrained_perception (cross-instance)", "FP-C"),
    ("logic_reasoning", "LR"),
    ("relation_reasoning", "RR"),
    ("attribute_reasoning", "AR"),
];

/// Whether the reply's extracted option is the answer (`opt == item['GT']`).
fn hit(answered: &Answered) -> bool {
    let answer = answered.item.answers.first().map(String::as_str).unwrap_or_default();
    infer_choice(answered.prediction, &answered.item.options).letter().is_some_and(|letter| answer.chars().eq(std::iter::once(letter)))
}

/// `report_acc`: per split (the `split` column, else `none`), the overall accuracy and the
/// accuracy per `l2-category` and per `category` (fractions, as VLMEvalKit reports them).
fn report_acc(rows: &[(&Answered, f64)]) -> BTreeMap<String, f64> {
    let split_of = |a: &Answered| field(a.item, "split").unwrap_or("none").to_string();
    let splits: BTreeSet<String> = rows.iter().map(|(a, _)| split_of(a)).collect();
    let mut details = BTreeMap::new();
    for split in &splits {
        let in_split: Vec<&(&Answered, f64)> = rows.iter().filter(|(a, _)| &split_of(a) == split).collect();
        details.insert(format!("{split}/Overall"), mean(in_split.iter().map(|(_, h)| *h)));
        for group in ["l2-category", "category"] {
            let abilities: BTreeSet<&str> = rows.iter().filter_map(|(a, _)| field(a.item, group)).collect();
            for ability in abilities {
                let name = MMB_ABBREVIATIONS.iter().find(|(k, _)| *k == ability).map_or(ability, |(_, v)| v);
                let hits = in_split.iter().filter(|(a, _)| field(a.item, group) == Some(ability)).map(|(_, h)| *h);
                details.insert(format!("{split}/{name}"), mean(hits));
            }
        }
    }
    details
}

/// The headline of a `report_acc` table: the one split's overall accuracy, in percent (with
/// several splits, the accuracy over all of them).
fn headline(details: &BTreeMap<String, f64>, rows: &[(&Answered, f64)]) -> f64 {
    let overall: Vec<f64> = details.iter().filter(|(k, _)| k.ends_with("/Overall")).map(|(_, v)| *v).collect();
    100.0 * if overall.len() == 1 { overall[0] } else { mean(rows.iter().map(|(_, h)| *h)) }
}

/// `ImageMCQDataset.evaluate` with `mcq_vanilla_eval`: each question on its own.
pub fn vanilla(answered: &[Answered]) -> DatasetScore {
    let rows: Vec<(&Answered, f64)> = answered.iter().map(|a| (a, f64::from(u8::from(hit(a))))).collect();
    let details = report_acc(&rows);
    let score = headline(&details, &rows);
    DatasetScore::new("accuracy (%)", Some(score), details, rows.iter().map(|(_, h)| Some(*h)).collect())
}

/// The integer `index` and `g_index` (group) of a circular row; `g_index` defaults to
/// `index % 1e6`, as in `mcq_circular_eval`.
fn circular_ids(answered: &Answered) -> Option<(i64, i64)> {
    let index: i64 = answered.item.index.parse().ok()?;
    let group = match field(answered.item, "g_index") {
        Some(g) => g.parse().ok()?,
        None => index % 1_000_000,
    };
    Some((index, group))
}

/// `ImageMCQDataset.evaluate` with `mcq_circular_eval` (MMBench): a question counts only if
/// the option extracted from every rotation of it is the answer. Only each group's original
/// row (`index == g_index`) enters the report.
pub fn circular(answered: &[Answered]) -> DatasetScore {
    let ids: Vec<Option<(i64, i64)>> = answered.iter().map(circular_ids).collect();
    let mut group_hit: BTreeMap<i64, bool> = BTreeMap::new();
    for (a, id) in answered.iter().zip(&ids) {
        if let Some((_, group)) = id {
            *group_hit.entry(*group).or_insert(true) &= hit(a);
        }
    }
    let mut rows = Vec::new();
    let mut item_scores = Vec::with_capacity(answered.len());
    for (a, id) in answered.iter().zip(&ids) {
        match id {
            Some((index, group)) if index == group => {
                let h = f64::from(u8::from(group_hit[group]));
                rows.push((a, h));
                item_scores.push(Some(h));
            }
            _ => item_scores.push(None),
        }
    }
    let details = report_acc(&rows);
    let score = headline(&details, &rows);
    DatasetScore::new("circular accuracy (%)", Some(score), details, item_scores)
}

/// `HRBenchDataset.evaluate`: vanilla hits, then `report_acc_hrbench`: per `cycle_category`, the
/// accuracy overall (`all`) and per `category`; then `Average` over the cycles of each.
pub fn hrbench(answered: &[Answered]) -> DatasetScore {
    let hits: Vec<f64> = answered.iter().map(|a| f64::from(u8::from(hit(a)))).collect();
    let cycles: BTreeSet<&str> = answered.iter().filter_map(|a| field(a.item, "cycle_category")).collect();
    let mut details = BTreeMap::new();
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for cycle in &cycles {
        let in_cycle: Vec<(usize, &Answered)> = answered.iter().enumerate().filter(|(_, a)| field(a.item, "cycle_category") == Some(cycle)).collect();
        let mut types: BTreeMap<String, f64> = BTreeMap::new();
        types.insert("all".into(), mean(in_cycle.iter().map(|(i, _)| hits[*i])));
        let categories: BTreeSet<&str> = in_cycle.iter().filter_map(|(_, a)| field(a.item, "category")).collect();
        for category in categories {
            types.insert(category.into(), mean(in_cycle.iter().filter(|(_, a)| field(a.item, "category") == Some(category)).map(|(i, _)| hits[*i])));
        }
        for (kind, accuracy) in types {
            *sums.entry(kind.clone()).or_default() += accuracy;
            details.insert(format!("{cycle}/{kind}"), accuracy);
        }
    }
    for (kind, sum) in sums {
        details.insert(format!("Average/{kind}"), sum / cycles.len() as f64);
    }
    let score = details.get("Average/all").map(|v| 100.0 * v);
    DatasetScore::new("accuracy averaged over cycles (%)", score, details, hits.into_iter().map(Some).collect())
}
