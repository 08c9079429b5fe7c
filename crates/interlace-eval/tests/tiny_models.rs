//! The evaluator on the tiny fixture checkpoint, before and after pruning.

use std::path::PathBuf;

use burn::backend::ndarray::NdArrayDevice;
use burn::backend::NdArray;
use burn::tensor::{activation, DType};
use interlace_core::{DecoderStack, LayerSet};
use interlace_eval::{evaluate_benchmark, heldout_loss, measure_speed, read_benchmark, EvalModel, EvalOptions, EvalReport, Sampling, ScoringMode};
use interlace_qwen3vl::processor::Qwen3VlProcessor;
use interlace_qwen3vl::{generate, GenerationConfig, Qwen3VlForConditionalGeneration, Qwen3VlInput};

type B = NdArray<f32>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn load() -> (Qwen3VlForConditionalGeneration<B>, Qwen3VlProcessor) {
    let dir = root().join("models/tiny-a");
    (Qwen3VlForConditionalGeneration::<B>::from_pretrained(&dir, &NdArrayDevice::Cpu, DType::F32).unwrap(), Qwen3VlProcessor::from_dir(&dir).unwrap())
}

fn fresh_processor() -> Qwen3VlProcessor {
    Qwen3VlProcessor::from_dir(root().join("models/tiny-a")).unwrap()
}

fn first_prompt(processor: &Qwen3VlProcessor) -> Qwen3VlInput {
    let bench = read_benchmark(&root().join("bench/mcq.tsv"), false).unwrap();
    let item = &bench.items[0];
    let images = item.images.iter().map(|i| i.load().unwrap()).collect();
    processor.process(&interlace_eval::messages(&bench, item, images), true).unwrap().into()
}

#[test]
fn cached_continuation_scores_equal_a_full_forward() {
    let (model, processor) = load();
    let prompt = first_prompt(&processor);
    let continuations = vec![processor.encode("A").unwrap(), processor.encode("Yes").unwrap(), processor.encode("gray sky").unwrap()];
    let scores = model.continuation_log_probs(&prompt, &continuations).unwrap();
    for (tokens, score) in continuations.iter().zip(&scores) {
        let mut full = prompt.clone();
        full.input_ids.extend(tokens);
        let logits = model.forward(&full).unwrap();
        let log_probs = activation::log_softmax(logits, 2).into_data().to_vec::<f32>().unwrap();
        let vocab = log_probs.len() / full.input_ids.len();
        let start = prompt.input_ids.len() - 1;
        let expected: f64 = tokens.iter().enumerate().map(|(k, &t)| log_probs[(start + k) * vocab + t as usize] as f64).sum();
        assert!((score - expected).abs() < 1e-4 * expected.abs().max(1.0), "{tokens:?}: cached {score} vs forward {expected}");
    }
}

#[test]
fn greedy_replies_equal_generate() {
    let (model, processor) = load();
    let prompt = first_prompt(&processor);
    let config = GenerationConfig::from_dir(root().join("models/tiny-a"), 8).unwrap();
    let expected = generate(&model, &prompt, &config, |_| {}).unwrap().new_tokens;
    assert_eq!(model.greedy(&prompt, 8, &config.eos_token_ids).unwrap(), expected);
}

#[test]
fn relative_performance_of_the_pruned_tiny_model() {
    let (base, processor) = load();
    let (model, _) = load();
    let model = model.remove_layers(&LayerSet::for_removal([2], 6).unwrap()).unwrap();
    assert_eq!(model.num_layers(), 5);
    let eos = GenerationConfig::from_dir(root().join("models/tiny-a"), 1).unwrap().eos_token_ids;
    let options = EvalOptions { max_new_tokens: 8, sampling: Sampling::greedy(), ..EvalOptions::new(eos) };
    let mut results = Vec::new();
    let mut base_results = Vec::new();
    for name in ["mcq.tsv", "yesno.tsv", "vqa.tsv", "chart.tsv", "mixed.jsonl"] {
        let bench = read_benchmark(&root().join("bench").join(name), false).unwrap();
        let mut seen = 0;
        results.push(evaluate_benchmark(&model, &processor, &bench, &options, |n| seen = n).unwrap());
        assert_eq!(seen, bench.items.len(), "progress reaches the end");
        base_results.push(evaluate_benchmark(&base, &processor, &bench, &options, |_| {}).unwrap());
    }
    let prompt = first_prompt(&processor);
    results[0].speed = Some(measure_speed(&model, &prompt, 4, 3).unwrap());
    base_results[0].speed = Some(measure_speed(&base, &prompt, 4, 3).unwrap());
    let mut report = EvalReport::new("tiny-a minus layer 2".into(), Some("tiny-a".into()), ScoringMode::Generate, Sampling::greedy(), results, base_results);
    let heldout = root().join("bench/heldout.jsonl");
    report.heldout = Some(heldout_loss(&model, &heldout, fresh_processor(), 4096, None).unwrap());
    report.base_heldout = Some(heldout_loss(&base, &heldout, fresh_processor(), 4096, None).unwrap());
    let markdown = report.markdown();
    println!("{markdown}");

    for row in &report.rows {
        if let (Some(score), Some(base), Some(rel)) = (row.score, row.base_score, row.relative) {
            assert!((rel - 100.0 * score / base).abs() < 1e-9);
        }
        assert!(row.score.is_some_and(|s| (0.0..=100.0).contains(&s)), "{row:?}");
    }
    let loss = report.heldout.as_ref().unwrap();
    assert_eq!(loss.examples, 2);
    assert!(loss.tokens > 0 && loss.loss.is_finite() && (loss.perplexity - loss.loss.exp()).abs() < 1e-9);
    // Random weights: the perplexity is of the order of the vocabulary size (1536).
    assert!(loss.perplexity > 100.0 && loss.perplexity < 10_000.0, "{}", loss.perplexity);
    assert!(markdown.contains("| **average** |"));

    let dir = tempfile::tempdir().unwrap();
    report.write(dir.path()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap()).unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), 5);
    assert_eq!(json["rows"][0]["malformed"], 1);
    assert!(json["rows"][0]["speed"]["ttft_speedup"].as_f64().unwrap() > 0.0);
    assert!(markdown.contains("TTFT speed-up"));
    assert_eq!(std::fs::read_to_string(dir.path().join("results.md")).unwrap(), markdown);
}

#[test]
fn a_model_against_itself_keeps_one_hundred_percent() {
    let (model, processor) = load();
    let bench = read_benchmark(&root().join("bench/mcq.tsv"), false).unwrap();
    // VLMEvalKit's sampling, seeded: the same model gives the same replies twice.
    let options = EvalOptions { max_new_tokens: 4, ..EvalOptions::new(vec![]) };
    let a = evaluate_benchmark(&model, &processor, &bench, &options, |_| {}).unwrap();
    let b = evaluate_benchmark(&model, &processor, &bench, &options, |_| {}).unwrap();
    assert_eq!(a.items, b.items);
    let report = EvalReport::new("m".into(), Some("m".into()), ScoringMode::Generate, options.sampling.clone(), vec![a], vec![b]);
    match report.rows[0].base_score {
        Some(s) if s > 0.0 => assert_eq!(report.rows[0].relative, Some(100.0)),
        _ => assert_eq!(report.rows[0].relative, None, "relative performance is undefined when the base scores 0"),
    }
}
