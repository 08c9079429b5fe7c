//! Selection on committed tables (`fixtures/selection/`) gives exactly the plans a Python
//! transcription of the official rules gives (`fixtures/make_similarity_fixtures.py`).

use std::path::PathBuf;

use interlace_core::Plan;
use interlace_similarity::{manual_plan, select, SimilarityError, SimilarityTables, Strategy};
use serde_json::Value;

fn case_dir(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/selection").join(case)
}

fn check_case(case: &str) -> usize {
    let dir = case_dir(case);
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let tables = SimilarityTables::from_dir(&dir).unwrap();
    assert_eq!(tables.n_layers as u64, expected["n_layers"].as_u64().unwrap());
    let seed = expected["seed"].as_u64().unwrap();
    let mut checked = 0;
    for (key, want) in expected["plans"].as_object().unwrap() {
        let (name, ratio) = key.split_once('@').unwrap();
        let strategy = Strategy::from_name(name).unwrap();
        let got = select(&tables, strategy, ratio.parse().unwrap(), seed);
        match want.get("error").and_then(Value::as_str) {
            Some(kind) => {
                let error = got.expect_err(key);
                assert!(matches!(error, SimilarityError::Selection { .. }), "{case} {key}: {error}");
                let text = error.to_string();
                match kind {
                    "consecutive_past_end" => assert!(text.contains("runs past the last layer"), "{text}"),
                    _ => assert!(text.contains("could be chosen"), "{text}"),
                }
            }
            None => {
                let want: Plan = serde_json::from_value(want.clone()).unwrap();
                assert_eq!(got.unwrap_or_else(|e| panic!("{case} {key}: {e}")), want, "{case} {key}");
            }
        }
        checked += 1;
    }
    checked
}

#[test]
fn thirty_six_layer_table() {
    assert_eq!(check_case("layers36"), 24);
}

#[test]
fn ties_go_to_the_lower_layer() {
    assert_eq!(check_case("ties"), 18);
}

#[test]
fn pack2_fallback() {
    assert!(check_case("fallback") >= 12);
    let tables = SimilarityTables::from_dir(&case_dir("fallback")).unwrap();
    let plan = select(&tables, Strategy::Interlace, 0.3, 42).unwrap();
    // Triplets 2..4 and 5..7 give drops 2 and 5; the third drop must come from pack 2.
    assert_eq!(plan.drop, vec![1, 2, 5]);
}

#[test]
fn no_pack2_means_not_enough_triplets() {
    check_case("fallback_without_pack2");
    let tables = SimilarityTables::from_dir(&case_dir("fallback_without_pack2")).unwrap();
    let error = select(&tables, Strategy::Interlace, 0.3, 42).unwrap_err().to_string();
    assert!(error.contains("no pack2.json"), "{error}");
}

#[test]
fn impossible_requests_say_why() {
    let tables = SimilarityTables::from_dir(&case_dir("layers36")).unwrap();
    for ratio in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
        let e = select(&tables, Strategy::Interlace, ratio, 42).unwrap_err().to_string();
        assert!(e.contains("--ratio") && e.contains("not in (0, 1)"), "{e}");
    }
    let e = select(&tables, Strategy::Interlace, 0.02, 42).unwrap_err().to_string();
    assert!(e.contains("drops no layer"), "{e}");
    let only3 = SimilarityTables::from_means(36, None, None, tables.pack3.clone()).unwrap();
    let e = select(&only3, Strategy::Interlace, 0.1, 42).unwrap_err().to_string();
    assert!(e.contains("needs pack1.json"), "{e}");
}

#[test]
fn manual_drop_list() {
    let plan = manual_plan(6, &[4, 1]).unwrap();
    assert_eq!((plan.drop.clone(), plan.finetune.clone(), plan.freeze.clone()), (vec![1, 4], vec![], vec![0, 2, 3, 5]));
    assert_eq!(plan.strategy, "manual");
    assert!(manual_plan(6, &[6]).is_err());
    assert!(manual_plan(6, &[1, 1]).is_err());
    assert!(manual_plan(2, &[0, 1]).is_err());
}

#[test]
fn malformed_tables_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pack1.json"), r#"{"0": [0.5], "2": [0.7]}"#).unwrap();
    let e = SimilarityTables::from_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("pack1.json"), "{e}");
    std::fs::write(dir.path().join("pack1.json"), r#"{"0": [0.5], "1": []}"#).unwrap();
    let e = SimilarityTables::from_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("layer 1"), "{e}");
    std::fs::write(dir.path().join("pack1.json"), r#"{"0": [0.5], "1": [0.6]}"#).unwrap();
    std::fs::write(dir.path().join("pack3.json"), r#"{"0": [0.5], "1": [0.6]}"#).unwrap();
    let e = SimilarityTables::from_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("pack3.json"), "{e}");
}
