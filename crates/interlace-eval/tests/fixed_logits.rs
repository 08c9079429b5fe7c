//! Every scoring path against a model whose logits and replies are fixed by hand.

use std::collections::HashMap;
use std::path::PathBuf;

use interlace_eval::vlmeval::{Dataset, DatasetKind};
use interlace_eval::{answer_item, evaluate_benchmark, read_benchmark, EvalError, EvalModel, EvalOptions, Sampling, ScoringMode};
use interlace_qwen3vl::processor::Qwen3VlProcessor;
use interlace_qwen3vl::Qwen3VlInput;

const VOCAB: usize = 1536;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn processor() -> Qwen3VlProcessor {
    Qwen3VlProcessor::from_dir(root().join("models/tiny-a")).unwrap()
}

/// Logits are zero except where set: `first` after the prompt, `next[prev]` after token `prev`.
/// Greedy replies are `reply`, whatever the prompt.
struct Fixed {
    first: HashMap<u32, f32>,
    next: HashMap<u32, HashMap<u32, f32>>,
    reply: Vec<u32>,
}

fn logits(set: Option<&HashMap<u32, f32>>) -> Vec<f32> {
    let mut v = vec![0.0f32; VOCAB];
    for (&t, &x) in set.into_iter().flatten() {
        v[t as usize] = x;
    }
    v
}

impl EvalModel for Fixed {
    type Input = Qwen3VlInput;

    fn continuation_log_probs(&self, prompt: &Qwen3VlInput, continuations: &[Vec<u32>]) -> Result<Vec<f64>, EvalError> {
        assert!(!prompt.input_ids.is_empty());
        Ok(continuations
            .iter()
            .map(|tokens| {
                let mut total = 0.0;
                let mut prev = None;
                for &t in tokens {
                    let l = logits(match prev {
                        None => Some(&self.first),
                        Some(p) => self.next.get(&p),
                    });
                    total += interlace_eval::log_softmax(&l)[t as usize];
                    prev = Some(t);
                }
                total
            })
            .collect())
    }

    fn greedy(&self, _prompt: &Qwen3VlInput, max_new_tokens: usize, _eos: &[u32]) -> Result<Vec<u32>, EvalError> {
        Ok(self.reply.iter().copied().take(max_new_tokens).collect())
    }
}

fn ln(x: f64) -> f64 {
    x.ln()
}

/// The fast mode: closed questions by answer log-likelihood.
fn loglik() -> EvalOptions {
    EvalOptions { mode: ScoringMode::LogLikelihood, sampling: Sampling::greedy(), max_new_tokens: 32, ..EvalOptions::new(vec![]) }
}

/// VLMEvalKit's mode with greedy decoding (the fixed model cannot sample).
fn generate() -> EvalOptions {
    EvalOptions { sampling: Sampling::greedy(), max_new_tokens: 32, ..EvalOptions::new(vec![]) }
}

#[test]
fn multiple_choice_by_letter_log_likelihood() {
    let p = processor();
    // Letters A..D are the single tokens 32..35 in the tiny tokenizer.
    assert_eq!(p.encode("B").unwrap(), vec![33]);
    let model = Fixed { first: HashMap::from([(32, 1.0), (33, 3.0)]), next: HashMap::new(), reply: vec![] };
    let bench = read_benchmark(&root().join("bench/mcq.tsv"), false).unwrap();
    let result = answer_item(&model, &p, &bench, &bench.items[0], &loglik()).unwrap();
    // Hand computation: Z = (V - 2)·e^0 + e^1 + e^3.
    let log_z = ln((VOCAB - 2) as f64 + 1f64.exp() + 3f64.exp());
    let expected = [1.0 - log_z, 3.0 - log_z, -log_z, -log_z];
    assert_eq!(result.log_probs.len(), 4);
    for (a, b) in result.log_probs.iter().zip(expected) {
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }
    assert_eq!(result.prediction, "B");

    // Over the whole file: rows 0 and 3 answer B, rows 1 and 2 answer A, so B everywhere scores 50%.
    let result = evaluate_benchmark(&model, &p, &bench, &loglik(), |_| {}).unwrap();
    assert_eq!(result.evaluated, 4);
    assert_eq!(result.items[0].score, Some(1.0), "row 0's answer is B");
    assert_eq!(result.score, Some(50.0));
    // report_acc's table, in fractions as VLMEvalKit reports it.
    assert_eq!(result.details["none/color"], 1.0);
    assert_eq!(result.details["none/counting"], 0.0);
    assert_eq!(result.malformed.len(), 1);
    // --limit
    let limited = evaluate_benchmark(&model, &p, &bench, &EvalOptions { limit: Some(2), ..loglik() }, |_| {}).unwrap();
    assert_eq!((limited.evaluated, limited.score), (2, Some(50.0)));
}

#[test]
fn yes_no_sums_multi_token_answers_and_takes_the_likelier_spelling() {
    let p = processor();
    // Yes = [56, 288], yes = [88, 288], No = [45, 78], no = [77, 78].
    assert_eq!(p.encode("Yes").unwrap(), vec![56, 288]);
    assert_eq!(p.encode("No").unwrap(), vec![45, 78]);
    let model = Fixed {
        first: HashMap::from([(56, 2.0), (45, 1.0)]),
        next: HashMap::from([(56, HashMap::from([(288, 1.0)])), (45, HashMap::from([(78, 4.0)]))]),
        reply: vec![],
    };
    let bench = read_benchmark(&root().join("bench/yesno.tsv"), true).unwrap();
    let result = answer_item(&model, &p, &bench, &bench.items[0], &loglik()).unwrap();
    let v = VOCAB as f64;
    let log_z1 = ln(v - 2.0 + 2f64.exp() + 1f64.exp());
    // "Yes": 2 - log Z1 + (1 - log(V - 1 + e)); "yes": -log Z1 - log V (uniform second step).
    let yes = (2.0 - log_z1 + 1.0 - ln(v - 1.0 + 1f64.exp())).max(-log_z1 - ln(v));
    let no = (1.0 - log_z1 + 4.0 - ln(v - 1.0 + 4f64.exp())).max(-log_z1 - ln(v));
    assert!((result.log_probs[0] - yes).abs() < 1e-9 && (result.log_probs[1] - no).abs() < 1e-9, "{:?} vs {yes}, {no}", result.log_probs);
    // The first token prefers "Yes", but the whole answer "No" is likelier.
    assert!(no > yes);
    assert_eq!(result.prediction, "No");
    let all = evaluate_benchmark(&model, &p, &bench, &loglik(), |_| {}).unwrap();
    // Answers yes, no, Yes: only the middle one is right (a file VLMEvalKit does not know
    // compares yes/no ignoring case).
    assert_eq!(all.items.iter().map(|i| i.score).collect::<Vec<_>>(), [Some(0.0), Some(1.0), Some(0.0)]);
    assert!((all.score.unwrap() - 100.0 / 3.0).abs() < 1e-9);
}

#[test]
fn generate_mode_scores_replies_by_vlmevalkit_rules() {
    let p = processor();
    let mcq = read_benchmark(&root().join("bench/mcq.tsv"), false).unwrap();
    let scores = |reply: &str, bench: &interlace_eval::Benchmark| {
        let model = Fixed { first: HashMap::new(), next: HashMap::new(), reply: p.encode(reply).unwrap() };
        let r = evaluate_benchmark(&model, &p, bench, &generate(), |_| {}).unwrap();
        assert!(r.items.iter().all(|i| i.prediction == reply && i.log_probs.is_empty()), "the prediction is the whole reply");
        r
    };
    // Rows 0 and 3 answer B.
    let r = scores("(B) gray", &mcq);
    assert_eq!(r.items.iter().map(|i| i.score).collect::<Vec<_>>(), [Some(1.0), Some(0.0), Some(0.0), Some(1.0)]);
    let r = scores("purple", &mcq);
    assert_eq!(r.score, Some(0.0), "an unreadable reply is wrong");

    let yn = read_benchmark(&root().join("bench/yesno.tsv"), true).unwrap();
    let r = scores("Yes, it is.", &yn);
    assert_eq!(r.items.iter().map(|i| i.score).collect::<Vec<_>>(), [Some(1.0), Some(0.0), Some(1.0)]);
    assert_eq!(r.items[0].kind, DatasetKind::YesNo);

    // Open questions, scored as TextVQA: 3 of the 10 humans said grey, so leaving each answer
    // out in turn gives 1 (gray and silver left out) or 2/3 (a grey left out): 0.9, not 1.
    let mut vqa = read_benchmark(&root().join("bench/vqa.tsv"), true).unwrap();
    vqa.dataset = Some(Dataset::TextVqaVal);
    let r = scores("Grey.", &vqa);
    assert_eq!(r.items[0].kind, DatasetKind::Open);
    assert!((r.items[0].score.unwrap() - 0.9).abs() < 1e-12, "{:?}", r.items[0].score);
    assert!((r.score.unwrap() - 30.0).abs() < 1e-9);

    // ChartQA's relaxed accuracy: 62 is within 5% of 60, not of 100, and is not "Second".
    let mut chart = read_benchmark(&root().join("bench/chart.tsv"), true).unwrap();
    chart.dataset = Some(Dataset::ChartQaTest);
    let r = scores("62", &chart);
    assert_eq!(r.items.iter().map(|i| i.score).collect::<Vec<_>>(), [Some(1.0), Some(0.0), Some(0.0)]);
}

#[test]
fn rows_that_fail_during_evaluation_are_skipped_or_fatal_under_strict() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.jsonl");
    std::fs::write(&path, "{\"index\": 7, \"question\": \"q?\", \"answer\": \"yes\", \"image\": \"bm90IGFuIGltYWdl\"}\n{\"index\": 8, \"question\": \"q?\", \"answer\": \"no\"}\n").unwrap();
    let p = processor();
    let model = Fixed { first: HashMap::from([(77, 5.0)]), next: HashMap::new(), reply: vec![] };
    let bench = read_benchmark(&path, true).unwrap();
    let r = evaluate_benchmark(&model, &p, &bench, &loglik(), |_| {}).unwrap();
    assert_eq!(r.evaluated, 1);
    assert_eq!((r.malformed[0].index.as_str(), r.malformed[0].line), ("7", 1));
    let strict = EvalOptions { strict: true, ..loglik() };
    assert!(matches!(evaluate_benchmark(&model, &p, &bench, &strict, |_| {}), Err(EvalError::Malformed { index, .. }) if index == "7"));
}
