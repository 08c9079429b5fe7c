//! SLEB and the one-shot perplexity rule on the tiny Qwen3-VL checkpoints against the reference
//! (`fixtures/make_sleb_fixtures.py`: SLEB's `sleb()` / `get_loss()` transcribed, run with
//! transformers on the pruned model, layers removed from `language_model.layers`). Same
//! calibration prompts (`calibration/calib.jsonl`: images, two images, text only), built end to
//! end by our processor.

use interlace_qwen3vl::processor::Qwen3VlProcessor;
use std::path::PathBuf;

use burn::tensor::DType;
use interlace_qwen3vl::{Qwen3VlForConditionalGeneration, Qwen3VlInput};
use interlace_similarity::{select_by_loss, CalibrationData, ChatInputBuilder, InputBuilder, LossRule, LossSelection, LossSelectionConfig};
use interlace_testkit::Flex;
use serde_json::Value;

type Cpu = Flex<f32>;

/// Largest allowed relative difference of a summed NLL (every candidate of every round and the
/// baseline). Measured (burn-flex, f32, 2026-12-01): 2.29e-8 on tiny-b, 2.21e-8 on tiny-a.
const NLL_LIMIT: f64 = 1e-7;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn golden(name: &str) -> Value {
    let path = fixtures().join("golden/sleb").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

fn inputs(name: &str) -> Vec<Qwen3VlInput> {
    let builder = ChatInputBuilder::new(Qwen3VlProcessor::from_dir(fixtures().join("models").join(name)).unwrap());
    let mut data = CalibrationData::open(fixtures().join("calibration/calib.jsonl"), None).unwrap();
    (0..data.len()).map(|i| builder.build(&data.record(i).unwrap()).unwrap()).collect()
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// Compares every score of every round and returns the worst relative error.
fn compare_rounds(result: &LossSelection, rounds: &[(Vec<usize>, Value)]) -> f64 {
    assert_eq!(result.rounds.len(), rounds.len());
    let mut worst = 0.0f64;
    for (ours, (removed, scores)) in result.rounds.iter().zip(rounds) {
        assert_eq!(&ours.removed_before, removed);
        let scores = scores.as_object().unwrap();
        assert_eq!(ours.scores.len(), scores.len(), "the same candidates");
        for s in &ours.scores {
            let expected = scores[&s.layer.to_string()].as_f64().unwrap();
            worst = worst.max(relative(s.nll, expected));
        }
    }
    worst
}

#[test]
fn sleb_and_one_shot_equal_the_reference_on_tiny_checkpoints() {
    for name in ["tiny-b", "tiny-a"] {
        let g = golden(name);
        let device = Default::default();
        let model = Qwen3VlForConditionalGeneration::<Cpu>::from_pretrained(fixtures().join("models").join(name), &device, DType::F32).unwrap();
        let inputs = inputs(name);
        let protect = usizes(&g["protect"]);
        let n_drop = g["n_drop"].as_u64().unwrap() as usize;

        let sleb = select_by_loss(&model, &inputs, &LossSelectionConfig { rule: LossRule::Sleb, n_drop, protect: protect.clone() }, &mut || {}).unwrap();
        let baseline: f64 = g["baseline_nll"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).sum();
        let tokens: usize = usizes(&g["scored_tokens"]).iter().sum();
        assert_eq!(sleb.baseline.tokens, tokens, "{name}: the same text targets");
        let mut worst = relative(sleb.baseline.nll, baseline);
        let rounds: Vec<(Vec<usize>, Value)> =
            g["sleb"]["rounds"].as_array().unwrap().iter().map(|r| (usizes(&r["removed_before"]), r["scores"].clone())).collect();
        worst = worst.max(compare_rounds(&sleb, &rounds));
        assert_eq!(sleb.order, usizes(&g["sleb"]["order"]), "{name}: SLEB removal order");

        let shot = select_by_loss(&model, &inputs, &LossSelectionConfig { rule: LossRule::OneShot, n_drop, protect }, &mut || {}).unwrap();
        worst = worst.max(compare_rounds(&shot, &[(Vec::new(), g["one_shot"]["scores"].clone())]));
        assert_eq!(shot.order, usizes(&g["one_shot"]["order"]), "{name}: one-shot order");
        println!("{name}: SLEB {:?}, one-shot {:?}, worst relative NLL error {worst:.3e}, {} passes in {:.2?}", sleb.order, shot.order, sleb.passes, sleb.wall);
        assert!(worst <= NLL_LIMIT, "{name}: {worst:.3e} > {NLL_LIMIT:e}");
    }
}

#[test]
fn skipping_layers_equals_removing_them() {
    use interlace_core::{DecoderStack, LayerSet, ObservedForward, SkipLayersForward};
    let device = Default::default();
    let dir = fixtures().join("models/tiny-a");
    let inputs = inputs("tiny-a");
    // tiny-a injects deepstack features after layers 0 and 1: skipping layer 1 must move the
    // second injection to the layer that follows, as in the pruned checkpoint.
    for drop in [vec![1], vec![0, 3], vec![2, 4, 5]] {
        let full = Qwen3VlForConditionalGeneration::<Cpu>::from_pretrained(&dir, &device, DType::F32).unwrap();
        let skip = LayerSet::for_removal(drop.iter().copied(), full.num_layers()).unwrap();
        let pruned = Qwen3VlForConditionalGeneration::<Cpu>::from_pretrained(&dir, &device, DType::F32).unwrap().remove_layers(&skip).unwrap();
        for input in &inputs {
            let a = full.forward_skipping(input, &skip).unwrap().into_data();
            let b = pruned.forward_observed(input, Default::default(), &mut interlace_core::NoObserver).unwrap().into_data();
            assert_eq!(a, b, "drop {drop:?}: bit-identical logits");
        }
    }
}
