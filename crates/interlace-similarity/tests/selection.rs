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

/// A 10-layer table where every strategy has an unambiguous first choice.
fn ten_layers() -> SimilarityTables {
    use std::collections::BTreeMap;
    let pack1: Vec<f64> = vec![0.10, 0.90, 0.20, 0.80, 0.30, 0.70, 0.40, 0.60, 0.50];
    let pack2: Vec<f64> = (0..8).map(|i| 0.1 * i as f64).collect();
    let pack3: Vec<f64> = vec![0.95, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65];
    // Blocks of 2: the closest starts at 0, then 5.
    let angular = BTreeMap::from([(2, vec![0.01, 0.50, 0.40, 0.30, 0.20, 0.02, 0.60, 0.70])]);
    let tables = SimilarityTables::from_means(10, Some(pack1), Some(pack2), Some(pack3)).unwrap();
    SimilarityTables { angular_last_token: angular.clone(), angular, ..tables }
}

#[test]
fn protected_layers_are_passed_over_by_every_strategy() {
    use interlace_similarity::{select_with, SelectOptions};
    let tables = ten_layers();
    let protect = |layers: &[usize]| SelectOptions { protect: layers.to_vec(), finetune: None };
    let drop = |strategy, options: &SelectOptions| select_with(&tables, strategy, 0.2, 42, options).unwrap().drop;
    // Unprotected first choices, then the same with those layers protected.
    assert_eq!(drop(Strategy::LowestInfluence, &protect(&[])), vec![1, 3]);
    assert_eq!(drop(Strategy::LowestInfluence, &protect(&[1])), vec![3, 5]);
    assert_eq!(drop(Strategy::AngularBlock, &protect(&[])), vec![0, 1]);
    assert_eq!(drop(Strategy::AngularBlock, &protect(&[0])), vec![5, 6]);
    assert_eq!(drop(Strategy::AngularBlockLastToken, &protect(&[1, 6])), vec![4, 5]);
    // INTERLACE: triplet 0 (pack 3 = 0.95) drops layer 1 (pack 1: 0.90 > 0.10).
    let interlace = select_with(&tables, Strategy::Interlace, 0.1, 42, &protect(&[])).unwrap();
    assert_eq!((interlace.drop, interlace.finetune), (vec![1], vec![0]));
    let protected = select_with(&tables, Strategy::Interlace, 0.1, 42, &protect(&[1])).unwrap();
    assert!(!protected.drop.contains(&1), "{protected:?}");
    let random = select_with(&tables, Strategy::Random, 0.3, 42, &protect(&[0, 1, 2, 3, 4])).unwrap();
    assert!(random.drop.iter().all(|&l| l >= 5), "{random:?}");
    assert_eq!(select(&tables, Strategy::Random, 0.3, 42).unwrap(), select_with(&tables, Strategy::Random, 0.3, 42, &protect(&[])).unwrap());
    let consecutive = select_with(&tables, Strategy::Consecutive, 0.2, 42, &protect(&[2])).unwrap();
    assert!(!consecutive.drop.contains(&2), "{consecutive:?}");
}

#[test]
fn angular_blocks_explain_what_is_missing_or_impossible() {
    use interlace_similarity::{select_with, FinetuneRule, SelectOptions};
    let tables = ten_layers();
    let err = select(&tables, Strategy::AngularBlock, 0.3, 42).unwrap_err().to_string();
    assert!(err.contains("angular3.json") && err.contains("include 3"), "{err}");
    let every_block = SelectOptions { protect: vec![1, 3, 5, 7], finetune: None };
    let err = select_with(&tables, Strategy::AngularBlock, 0.2, 42, &every_block).unwrap_err().to_string();
    assert!(err.contains("every block of 2 consecutive layers holds a protected layer"), "{err}");
    let next = SelectOptions { protect: Vec::new(), finetune: Some(FinetuneRule::Next) };
    assert_eq!(select_with(&tables, Strategy::AngularBlock, 0.2, 42, &next).unwrap().finetune, vec![2]);
    let err = select_with(&tables, Strategy::Interlace, 0.2, 42, &next).unwrap_err().to_string();
    assert!(err.contains("chooses its own fine-tune layers"), "{err}");
    let bad = SelectOptions { protect: vec![10], finetune: None };
    assert!(select_with(&tables, Strategy::LowestInfluence, 0.2, 42, &bad).is_err());
}
