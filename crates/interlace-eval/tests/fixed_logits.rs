//! Every scoring path against a model whose logits and replies are fixed by hand.

use std::collections::HashMap;
use std::path::PathBuf;

use interlace_eval::{evaluate_benchmark, evaluate_item, read_benchmark, EvalError, EvalModel, EvalOptions, QuestionKind, ScoringMode};
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

#[test]
fn multiple_choice_by_letter_log_likelihood() {
    let p = processor();
    // Letters A..D are the single tokens 32..35 in the tiny tokenizer.
    assert_eq!(p.encode("B").unwrap(), vec![33]);
    let model = Fixed { first: HashMap::from([(32, 1.0), (33, 3.0)]), next: HashMap::new(), reply: vec![] };
    let bench = read_benchmark(&root().join("bench/mcq.tsv"), false).unwrap();
    let result = evaluate_item(&model, &p, &bench.items[0], &EvalOptions::new(vec![])).unwrap();
    // Hand computation: Z = (V - 2)·e^0 + e^1 + e^3.
    let log_z = ln((VOCAB - 2) as f64 + 1f64.exp() + 3f64.exp());
    let expected = [1.0 - log_z, 3.0 - log_z, -log_z, -log_z];
    assert_eq!(result.log_probs.len(), 4);
    for (a, b) in result.log_probs.iter().zip(expected) {
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }
    assert_eq!(result.prediction, "B");
    assert_eq!(result.score, 1.0, "row 0's answer is B");

    // Over the whole file: rows 0 and 3 answer B, rows 1 and 2 answer A, so B everywhere scores 50%.
    let result = evaluate_benchmark(&model, &p, &bench, &EvalOptions::new(vec![]), |_| {}).unwrap();
    assert_eq!(result.evaluated, 4);
    assert_eq!(result.score, 50.0);
    assert_eq!(result.per_category["color"], 100.0);
    assert_eq!(result.per_category["counting"], 0.0);
    assert_eq!(result.malformed.len(), 1);
    // --limit
    let limited = evaluate_benchmark(&model, &p, &bench, &EvalOptions { limit: Some(2), ..EvalOptions::new(vec![]) }, |_| {}).unwrap();
    assert_eq!((limited.evaluated, limited.score), (2, 50.0));
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
    let result = evaluate_item(&model, &p, &bench.items[0], &EvalOptions::new(vec![])).unwrap();
    let v = VOCAB as f64;
    let log_z1 = ln(v - 2.0 + 2f64.exp() + 1f64.exp());
    // "Yes": 2 - log Z1 + (1 - log(V - 1 + e)); "yes": -log Z1 - log V (uniform second step).
    let yes = (2.0 - log_z1 + 1.0 - ln(v - 1.0 + 1f64.exp())).max(-log_z1 - ln(v));
    let no = (1.0 - log_z1 + 4.0 - ln(v - 1.0 + 4f64.exp())).max(-log_z1 - ln(v));
    assert!((result.log_probs[0] - yes).abs() < 1e-9 && (result.log_probs[1] - no).abs() < 1e-9, "{:?} vs {yes}, {no}", result.log_probs);
    // The first token prefers "Yes", but the whole answer "No" is likelier.
    assert!(no > yes);
    assert_eq!(result.prediction, "No");
    assert_eq!(result.score, 0.0, "row 0's answer is yes");
    let all = evaluate_benchmark(&model, &p, &bench, &EvalOptions::new(vec![]), |_| {}).unwrap();
    // Answers yes, no, Yes: only the middle one is right.
    assert!((all.score - 100.0 / 3.0).abs() < 1e-9);
}

#[test]
fn generate_mode_extracts_answers() {
    let p = processor();
    let gen = EvalOptions { mode: ScoringMode::Generate, ..EvalOptions::new(vec![]) };
    let mcq = read_benchmark(&root().join("bench/mcq.tsv"), false).unwrap();
    let model = Fixed { first: HashMap::new(), next: HashMap::new(), reply: p.encode("(B) gray").unwrap() };
    let r = evaluate_item(&model, &p, &mcq.items[0], &gen).unwrap();
    assert_eq!((r.reply.as_str(), r.prediction.as_str(), r.score, r.log_probs.len()), ("(B) gray", "B", 1.0, 0));
    let model = Fixed { first: HashMap::new(), next: HashMap::new(), reply: p.encode("purple").unwrap() };
    let r = evaluate_item(&model, &p, &mcq.items[0], &gen).unwrap();
    assert_eq!((r.prediction.as_str(), r.score), ("", 0.0), "an unreadable reply is wrong");

    let yn = read_benchmark(&root().join("bench/yesno.tsv"), true).unwrap();
    let model = Fixed { first: HashMap::new(), next: HashMap::new(), reply: p.encode("Yes, it is.").unwrap() };
    let r = evaluate_benchmark(&model, &p, &yn, &gen, |_| {}).unwrap();
    assert_eq!(r.items.iter().map(|i| i.score).collect::<Vec<_>>(), [1.0, 0.0, 1.0]);

    // Open questions are generated in either mode.
    let vqa = read_benchmark(&root().join("bench/vqa.tsv"), true).unwrap();
    let model = Fixed { first: HashMap::new(), next: HashMap::new(), reply: p.encode("Grey.\nIt is grey").unwrap() };
    let r = evaluate_benchmark(&model, &p, &vqa, &EvalOptions::new(vec![]), |_| {}).unwrap();
    assert_eq!(r.items[0].kind, QuestionKind::Open);
    assert_eq!(r.items[0].prediction, "Grey.");
    // 3 of 10 humans said grey: min(1, 3/3) = 1; nobody said it for the other two.
    assert_eq!(r.items.iter().map(|i| i.score).collect::<Vec<_>>(), [1.0, 0.0, 0.0]);
    assert!((r.score - 100.0 / 3.0).abs() < 1e-9);

    let chart = read_benchmark(&root().join("bench/chart.tsv"), true).unwrap();
    let model = Fixed { first: HashMap::new(), next: HashMap::new(), reply: p.encode("62").unwrap() };
    let r = evaluate_benchmark(&model, &p, &chart, &EvalOptions::new(vec![]), |_| {}).unwrap();
    // 62 is within 5% of 60, not of 100, and is not "Second".
    assert_eq!(r.items.iter().map(|i| i.score).collect::<Vec<_>>(), [1.0, 0.0, 0.0]);
}

#[test]
fn rows_that_fail_during_evaluation_are_skipped_or_fatal_under_strict() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.jsonl");
    std::fs::write(&path, "{\"index\": 7, \"question\": \"q?\", \"answer\": \"yes\", \"image\": \"bm90IGFuIGltYWdl\"}\n{\"index\": 8, \"question\": \"q?\", \"answer\": \"no\"}\n").unwrap();
    let p = processor();
    let model = Fixed { first: HashMap::from([(77, 5.0)]), next: HashMap::new(), reply: vec![] };
    let bench = read_benchmark(&path, true).unwrap();
    let r = evaluate_benchmark(&model, &p, &bench, &EvalOptions::new(vec![]), |_| {}).unwrap();
    assert_eq!(r.evaluated, 1);
    assert_eq!((r.malformed[0].index.as_str(), r.malformed[0].line), ("7", 1));
    let strict = EvalOptions { strict: true, ..EvalOptions::new(vec![]) };
    assert!(matches!(evaluate_benchmark(&model, &p, &bench, &strict, |_| {}), Err(EvalError::Malformed { index, .. }) if index == "7"));
}
