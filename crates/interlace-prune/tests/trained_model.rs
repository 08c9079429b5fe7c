//! The embedded trained model (`fixtures/trained/shapes-qwen3vl`, made by
//! `fixtures/make_trained_fixtures.py`): interlace must reproduce what transformers recorded for
//! it — its greedy reply to every held-out question and its scores — so a regression in the
//! model code, the processor or the scoring shows up as a wrong answer.

use std::path::PathBuf;

use burn::backend::NdArray;
use interlace_prune::eval::{read_benchmark, EvalOptions, Sampling};
use interlace_prune::{compare_prefill_dirs, evaluate_dir, DirEvalOptions};
use serde_json::Value;

fn trained() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/trained")
}

#[test]
fn greedy_replies_and_scores_equal_the_recorded_ones() {
    let record: Value = serde_json::from_str(&std::fs::read_to_string(trained().join("training.json")).unwrap()).unwrap();
    let recorded = &record["eval"]["float32"];
    let kinds = [("mcq", "shapes_mcq"), ("yesno", "shapes_yesno"), ("open", "shapes_open")];
    let benches: Vec<_> = kinds.iter().map(|(_, file)| read_benchmark(&trained().join(format!("eval/{file}.tsv")), true).unwrap()).collect();
    let options = DirEvalOptions {
        eval: EvalOptions { max_new_tokens: 4, sampling: Sampling::greedy(), ..EvalOptions::new(Vec::new()) },
        model_pixels: false,
        speed: None,
        dtype: burn::tensor::DType::F32,
    };
    let evaluation = evaluate_dir::<NdArray<f32>>(&trained().join("shapes-qwen3vl"), &benches, &options, &Default::default(), |_, _| {}).unwrap();
    for ((kind, _), result) in kinds.iter().zip(&evaluation.results) {
        let expected = &recorded[kind];
        let replies = expected["replies"].as_array().unwrap();
        assert_eq!(replies.len(), result.items.len(), "{kind}: every row's reply is recorded");
        for reply in replies {
            let index = reply["index"].to_string();
            let ours = result.items.iter().find(|i| i.index == index).unwrap();
            assert_eq!(ours.prediction.trim(), reply["reply"].as_str().unwrap().trim(), "{kind} row {index}");
        }
        let accuracy = expected["accuracy"].as_f64().unwrap();
        assert_eq!(result.evaluated, expected["n"].as_u64().unwrap() as usize, "{kind}");
        assert!((result.score.unwrap() - 100.0 * accuracy).abs() < 1e-9, "{kind}: {:?} vs transformers' {accuracy}", result.score);
    }
}

#[test]
fn prefill_comparison_times_every_benchmark_in_pairs() {
    let benches: Vec<_> = ["shapes_mcq", "shapes_open"].iter().map(|file| read_benchmark(&trained().join(format!("eval/{file}.tsv")), true).unwrap()).collect();
    let options = DirEvalOptions { eval: EvalOptions::new(Vec::new()), model_pixels: false, speed: None, dtype: burn::tensor::DType::F32 };
    let model = trained().join("shapes-qwen3vl");
    let comparisons = compare_prefill_dirs::<NdArray<f32>>(&model, &model, &benches, &options, 3, &Default::default()).unwrap();
    assert_eq!(comparisons.len(), 2, "one comparison per benchmark");
    for paired in comparisons {
        let paired = paired.expect("every benchmark has an image question");
        assert_eq!(paired.pairs, 3);
        assert!(paired.speedup.is_finite() && paired.speedup > 0.0 && paired.base_ms > 0.0 && paired.model_ms > 0.0, "{paired:?}");
    }
}
