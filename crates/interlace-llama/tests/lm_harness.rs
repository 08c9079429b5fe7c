//! Perplexity and log-likelihood multiple choice against lm-evaluation-harness itself:
//! `fixtures/golden/lm_eval/<model>.json` was written by `fixtures/make_lm_eval_fixtures.py`, which
//! runs `lm_eval.simple_evaluate` (HFLM, float32, max_length 16) on the tiny text checkpoints.
//! Every document's rolling log-likelihood, every choice's log-likelihood and greedy flag, and
//! the aggregated metrics are compared.

use std::path::PathBuf;

use burn::tensor::DType;
use interlace_eval::lm_harness::{perplexity, score_choices, score_document, ForwardScorer, HarnessTokenizer};
use interlace_llama::{LlamaForCausalLM, TextProcessor};
use interlace_testkit::Flex;

type Cpu = Flex<f32>;

/// Log-likelihoods are sums of f32 log-probabilities; measured worst absolute difference 1.2e-5
/// (tiny-qwen2), printed by the test. tiny-llama3's tokenizer prepends a BOS as Llama 3's does, so
/// its documents are scored with the harness's doubled BOS (the prefix token, then the document's own).
const LL_TOLERANCE: f64 = 3e-5;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures"))
}

struct Harness(TextProcessor);

impl HarnessTokenizer for Harness {
    fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>, String> {
        self.0.encode_with(text, special).map_err(|e| e.to_string())
    }

    fn decode(&self, ids: &[u32]) -> Result<String, String> {
        self.0.tokenizer().decode(ids, false).map_err(|e| e.to_string())
    }

    fn prefix_token(&self) -> u32 {
        self.0.bos_token_id().or(self.0.eos_token_id()).expect("a BOS or EOS token")
    }
}

fn close(a: f64, b: f64, what: &str) -> f64 {
    let diff = (a - b).abs();
    assert!(diff <= LL_TOLERANCE, "{what}: {a} vs lm-eval {b}");
    diff
}

#[test]
fn perplexity_and_multiple_choice_equal_lm_evaluation_harness() {
    for model_name in ["tiny-llama3", "tiny-qwen2"] {
        let dir = fixtures().join("models").join(model_name);
        let golden: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixtures().join(format!("golden/lm_eval/{model_name}.json"))).unwrap()).unwrap();
        let max_length = golden["max_length"].as_u64().unwrap() as usize;
        let model = LlamaForCausalLM::<Cpu>::from_pretrained(&dir, &Default::default(), DType::F32).unwrap();
        let scorer = ForwardScorer::new(&model);
        let tokenizer = Harness(TextProcessor::from_dir(&dir).unwrap());
        assert_eq!(tokenizer.prefix_token() as u64, golden["prefix_token_id"].as_u64().unwrap());
        let mut worst: f64 = 0.0;

        let mut documents = Vec::new();
        for doc in golden["documents"].as_array().unwrap() {
            let score = score_document(&scorer, &tokenizer, doc["text"].as_str().unwrap(), max_length).unwrap();
            worst = worst.max(close(score.loglikelihood, doc["loglikelihood"].as_f64().unwrap(), &format!("{model_name} document")));
            documents.push(score);
        }
        let ppl = perplexity(&documents);
        let results = &golden["results"]["tiny_ppl"];
        for (ours, key) in [(ppl.word_perplexity, "word_perplexity"), (ppl.byte_perplexity, "byte_perplexity"), (ppl.bits_per_byte, "bits_per_byte")] {
            let theirs = results[key].as_f64().unwrap();
            assert!(((ours - theirs) / theirs).abs() <= 1e-6, "{model_name} {key}: {ours} vs lm-eval {theirs}");
        }

        let (mut acc, mut acc_norm) = (0.0, 0.0);
        let questions = golden["questions"].as_array().unwrap();
        for q in questions {
            let context = format!("Question: {}\nAnswer:", q["question"].as_str().unwrap());
            let choices: Vec<String> = q["choices"].as_array().unwrap().iter().map(|c| format!(" {}", c.as_str().unwrap())).collect();
            let score = score_choices(&scorer, &tokenizer, &context, &choices, max_length).unwrap();
            for (ours, theirs) in score.loglikelihoods.iter().zip(q["loglikelihoods"].as_array().unwrap()) {
                worst = worst.max(close(*ours, theirs.as_f64().unwrap(), &format!("{model_name} choice")));
            }
            let answer = q["answer"].as_u64().unwrap() as usize;
            let (hit, hit_norm) = ((score.pick == answer) as u8 as f64, (score.pick_norm == answer) as u8 as f64);
            assert_eq!((hit, hit_norm), (q["acc"].as_f64().unwrap(), q["acc_norm"].as_f64().unwrap()), "{model_name}: {context}");
            acc += hit;
            acc_norm += hit_norm;
        }
        let n = questions.len() as f64;
        assert_eq!(acc / n, golden["results"]["tiny_mc"]["acc"].as_f64().unwrap());
        assert_eq!(acc_norm / n, golden["results"]["tiny_mc"]["acc_norm"].as_f64().unwrap());
        eprintln!("{model_name}: worst log-likelihood difference {worst:.1e}");
    }
}
