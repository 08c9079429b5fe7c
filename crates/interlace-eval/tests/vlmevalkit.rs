//! interlace's prompts and scores against VLMEvalKit's own, for each benchmark of the paper plus
//! MME and MMStar. `fixtures/make_vlmeval_fixtures.py` ran VLMEvalKit's dataset classes
//! (`build_prompt`, `evaluate` with exact matching) on the small TSVs in `fixtures/vlmeval/`
//! with fixed predictions; every prompt must be identical and every reported number equal.

use std::collections::BTreeMap;
use std::path::PathBuf;

use interlace_eval::vlmeval::{build_prompt, infer_choice, score_dataset, Answered, Dataset, PromptPart};
use interlace_eval::{read_benchmark, BenchItem, Benchmark};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Case {
    bench: Benchmark,
    golden: Value,
}

fn case(dataset: Dataset) -> Case {
    let name = dataset.name();
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(root().join(format!("fixtures/golden/vlmeval/{name}.json"))).unwrap()).unwrap();
    let bench = read_benchmark(&root().join(golden["tsv"].as_str().unwrap()), true).unwrap();
    assert_eq!(bench.dataset, Some(dataset), "{name}: the file name names the dataset");
    Case { bench, golden }
}

fn item<'a>(bench: &'a Benchmark, index: &str) -> &'a BenchItem {
    bench.items.iter().find(|i| i.index == index).unwrap_or_else(|| panic!("{}: no row {index}", bench.name))
}

fn predictions(case: &Case) -> Vec<(String, String)> {
    case.golden["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["index"].as_str().unwrap().to_string(), p["prediction"].as_str().unwrap().to_string()))
        .collect()
}

/// VLMEvalKit's `evaluate` result as `row/column` (tables) or `name` (dicts and one-row tables).
fn golden_numbers(scores: &Value) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let number = |v: &Value| v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    match (scores.get("columns"), scores.get("rows")) {
        (Some(columns), Some(rows)) => {
            let columns: Vec<&str> = columns.as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
            for row in rows.as_array().unwrap() {
                let row = row.as_array().unwrap();
                if columns == ["cycle", "type", "accuracy"] {
                    out.insert(format!("{}/{}", row[0].as_str().unwrap(), row[1].as_str().unwrap()), number(&row[2]));
                } else if columns[0] == "split" {
                    for (c, v) in columns.iter().zip(row).skip(1) {
                        out.insert(format!("{}/{c}", row[0].as_str().unwrap()), number(v));
                    }
                } else {
                    for (c, v) in columns.iter().zip(row) {
                        out.insert(c.to_string(), number(v));
                    }
                }
            }
        }
        _ => {
            for (k, v) in scores.as_object().unwrap() {
                out.insert(k.clone(), number(v));
            }
        }
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

fn check(dataset: Dataset) {
    let case = case(dataset);
    let name = dataset.name();

    // Prompts: the rows VLMEvalKit kept, each message identical.
    let prompts = case.golden["prompts"].as_array().unwrap();
    assert_eq!(case.bench.items.len(), prompts.len(), "{name}: rows kept");
    for prompt in prompts {
        let index = prompt["index"].as_str().unwrap();
        let ours: Vec<Value> = build_prompt(case.bench.dataset, item(&case.bench, index))
            .into_iter()
            .map(|part| match part {
                PromptPart::Image(_) => serde_json::json!({"type": "image"}),
                PromptPart::Text(text) => serde_json::json!({"type": "text", "value": text}),
            })
            .collect();
        assert_eq!(&Value::Array(ours), &prompt["messages"], "{name}: prompt of row {index}");
    }

    // Option extraction, row by row (multiple choice): VLMEvalKit's `Z` is "no option".
    if let Some(extraction) = case.golden.get("extraction").and_then(Value::as_array) {
        let replies: BTreeMap<String, String> = predictions(&case).into_iter().collect();
        for e in extraction {
            let index = e["index"].as_str().unwrap();
            let reply = replies[index].as_str();
            let reply = if reply.is_empty() { "nan" } else { reply };
            let ours = infer_choice(reply, &item(&case.bench, index).options).letter().unwrap_or('Z');
            assert_eq!(ours.to_string(), e["opt"].as_str().unwrap(), "{name}: option read from row {index}'s reply {reply:?}");
        }
    }

    // Scores.
    let predictions = predictions(&case);
    let answered: Vec<Answered> = predictions.iter().map(|(index, p)| Answered { item: item(&case.bench, index), prediction: p }).collect();
    let scored = score_dataset(case.bench.dataset, dataset.kind(), &answered);
    if case.golden.get("needs_judge").and_then(Value::as_bool) == Some(true) {
        assert_eq!(scored.score, None, "{name}: no rule-based score");
        assert!(scored.judge_note.as_deref().is_some_and(|n| n.contains("judge")), "{name}: says it needs a judge");
        return;
    }
    let expected = golden_numbers(&case.golden["scores"]);
    assert_eq!(scored.details.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "{name}: reported numbers");
    for (key, value) in &expected {
        assert!(close(scored.details[key], *value), "{name}: {key} = {} but VLMEvalKit reports {value}", scored.details[key]);
    }

    // Each question's own score, where VLMEvalKit records one.
    let position: BTreeMap<&str, usize> = predictions.iter().enumerate().map(|(i, (index, _))| (index.as_str(), i)).collect();
    for golden_item in case.golden["items"].as_array().unwrap() {
        let index = golden_item["index"].as_str().unwrap();
        let expected =
            ["hit", "score"].iter().find_map(|k| golden_item.get(*k)).and_then(|v| v.as_f64().or_else(|| v.as_bool().map(|b| f64::from(u8::from(b)))));
        if let Some(expected) = expected {
            let ours = scored.item_scores[position[index]].unwrap_or_else(|| panic!("{name}: row {index} has no score of its own"));
            assert!(close(ours, expected), "{name}: row {index} scores {ours}, VLMEvalKit {expected}");
        }
    }
}

#[test]
fn ai2d() {
    check(Dataset::Ai2dTest);
}

#[test]
fn chartqa() {
    check(Dataset::ChartQaTest);
}

#[test]
fn ocrbench() {
    check(Dataset::OcrBench);
}

#[test]
fn textvqa() {
    check(Dataset::TextVqaVal);
}

#[test]
fn mmbench_circular() {
    check(Dataset::MmBenchDevEnV11);
}

#[test]
fn pope() {
    check(Dataset::Pope);
}

#[test]
fn realworldqa() {
    check(Dataset::RealWorldQa);
}

#[test]
fn hrbench_4k() {
    check(Dataset::HrBench4K);
}

#[test]
fn hrbench_8k() {
    check(Dataset::HrBench8K);
}

#[test]
fn vstar() {
    check(Dataset::VStarBench);
}

#[test]
fn mia_bench_needs_a_judge() {
    check(Dataset::MiaBench);
}

#[test]
fn scienceqa() {
    check(Dataset::ScienceQaTest);
}

#[test]
fn mme() {
    check(Dataset::Mme);
}

#[test]
fn mmstar() {
    check(Dataset::MmStar);
}

#[test]
fn every_dataset_has_a_golden() {
    for dataset in Dataset::ALL {
        assert!(root().join(format!("fixtures/golden/vlmeval/{}.json", dataset.name())).exists(), "{dataset}");
    }
}

/// The predictions file interlace writes for the golden replies is committed in
/// `fixtures/vlmeval/predictions/`; `make_vlmeval_fixtures.py` runs VLMEvalKit's `evaluate` on
/// those very files (`PRED_FORMAT=tsv`) and requires the scores it got from its own xlsx files.
/// Run with `INTERLACE_WRITE_PREDICTION_FIXTURES=1` to rewrite them, then rerun the script.
#[test]
fn predictions_files_are_the_ones_vlmevalkit_scored() {
    let write = std::env::var_os("INTERLACE_WRITE_PREDICTION_FIXTURES").is_some();
    for dataset in Dataset::ALL {
        let case = case(dataset);
        let replies = predictions(&case);
        let answered: Vec<(&BenchItem, interlace_eval::ItemResult)> = replies
            .iter()
            .map(|(index, p)| {
                let item = item(&case.bench, index);
                let result = interlace_eval::ItemResult {
                    index: index.clone(),
                    category: item.category.clone(),
                    kind: dataset.kind(),
                    prediction: p.clone(),
                    log_probs: Vec::new(),
                    score: None,
                };
                (item, result)
            })
            .collect();
        let result = interlace_eval::score_answers(&case.bench, answered, Vec::new());
        let table = interlace_eval::predictions_tsv(&case.bench, &result);
        let path = root().join(format!("fixtures/vlmeval/predictions/{}.tsv", dataset.name()));
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &table).unwrap();
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), table, "{dataset}: predictions file");
        if dataset.needs_judge() || write {
            continue;
        }
        assert_eq!(
            case.golden["predictions_tsv_scores_equal"].as_bool(),
            Some(true),
            "{dataset}: VLMEvalKit scored interlace's predictions file as its own (rerun make_vlmeval_fixtures.py)"
        );
    }
}
