//! The commands on text decoders (`interlace-llama`): `similarity` on plain-text documents and a
//! conversation matches transformers, and `select` → `prune` gives a checkpoint the model crate
//! loads, with the layers the plan drops.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn interlace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_interlace")).args(args).output().expect("binary runs")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn similarity_select_and_prune_work_on_text_decoders() {
    let data = fixtures().join("calibration/text.jsonl");
    for model in ["tiny-llama3", "tiny-qwen2"] {
        let out = tempfile::tempdir().unwrap();
        let dir = fixtures().join("models").join(model);
        let run = interlace(&["similarity", "--model", s(&dir), "--data", s(&data), "--out", s(out.path())]);
        assert!(run.status.success(), "{model}: {}", String::from_utf8_lossy(&run.stderr));
        let golden = read_json(&fixtures().join(format!("golden/similarity/{model}-text.json")));
        for k in 1..=3usize {
            let pack = read_json(&out.path().join(format!("pack{k}.json")));
            assert_eq!(pack.as_object().unwrap().len(), 4 - k, "{model}: official key range of pack {k}");
            for i in 0..4 - k {
                let got = pack[i.to_string()].as_array().unwrap();
                let want = golden["cosine"][k.to_string()][i.to_string()].as_array().unwrap();
                assert_eq!(got.len(), 5, "{model}: one value per record");
                for (a, b) in got.iter().zip(want) {
                    // The similarity suite's limit (measured ~2e-7 on the vision-language fixtures).
                    assert!((a.as_f64().unwrap() - b.as_f64().unwrap()).abs() <= 1e-5, "{model} pack {k} layer {i}: {a} vs {b}");
                }
            }
        }
        let report = read_json(&out.path().join("report.json"));
        assert_eq!(report["samples_used"], 5);
        assert_eq!(report["tokens"], golden["tokens"]);

        let plan_path = out.path().join("plan.json");
        let select = interlace(&["select", "--sims", s(out.path()), "--ratio", "0.25", "--out", s(&plan_path)]);
        assert!(select.status.success(), "{model}: {}", String::from_utf8_lossy(&select.stderr));
        let plan = read_json(&plan_path);
        assert_eq!(plan["drop"].as_array().unwrap().len(), 1, "{model}: floor(4 × 0.25) layers");

        let pruned = out.path().join("pruned");
        let prune = interlace(&["prune", "--model", s(&dir), "--plan", s(&plan_path), "--out", s(&pruned), "--quiet"]);
        assert!(prune.status.success(), "{model}: {}", String::from_utf8_lossy(&prune.stderr));
        let config = read_json(&pruned.join("config.json"));
        assert_eq!(config["num_hidden_layers"], 3);
        if model == "tiny-qwen2" {
            let dropped = plan["drop"][0].as_u64().unwrap() as usize;
            let kinds = ["full_attention", "full_attention", "sliding_attention", "sliding_attention"];
            let kept: Vec<&str> = (0..4).filter(|&i| i != dropped).map(|i| kinds[i]).collect();
            assert_eq!(config["layer_types"], serde_json::json!(kept), "{model}: every kept layer keeps its kind");
            assert_eq!(config["max_window_layers"], kept.iter().filter(|k| **k == "full_attention").count());
        }
        let again = interlace(&["similarity", "--model", s(&pruned), "--data", s(&data), "--out", s(&out.path().join("again"))]);
        assert!(again.status.success(), "{model}: the pruned checkpoint loads: {}", String::from_utf8_lossy(&again.stderr));
    }
}

#[test]
fn eval_scores_text_models_as_lm_evaluation_harness_does() {
    let out = tempfile::tempdir().unwrap();
    let base = fixtures().join("models/tiny-llama3");
    let pruned = out.path().join("pruned");
    let prune = interlace(&["prune", "--model", s(&base), "--drop", "1", "--out", s(&pruned), "--quiet"]);
    assert!(prune.status.success(), "{}", String::from_utf8_lossy(&prune.stderr));
    let ppl = fixtures().join("lm_eval/ppl.jsonl");
    let choices = fixtures().join("lm_eval/mc_requests.jsonl");
    let results_dir = out.path().join("eval");
    let args = ["eval", "--model", s(&pruned), "--base", s(&base), "--perplexity", s(&ppl), "--choices", s(&choices), "--context-length", "16"];
    let run = interlace(&[&args[..], &["--out", s(&results_dir)]].concat());
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let results = read_json(&results_dir.join("results.json"));
    let golden = read_json(&fixtures().join("golden/lm_eval/tiny-llama3.json"));
    let base_results = &results["base_results"];
    for key in ["word_perplexity", "byte_perplexity", "bits_per_byte"] {
        let (ours, theirs) = (base_results["perplexity"][key].as_f64().unwrap(), golden["results"]["tiny_ppl"][key].as_f64().unwrap());
        assert!(((ours - theirs) / theirs).abs() <= 1e-6, "{key}: {ours} vs lm-eval {theirs}");
    }
    assert_eq!(base_results["choices"]["acc"], golden["results"]["tiny_mc"]["acc"]);
    assert_eq!(base_results["choices"]["acc_norm"], golden["results"]["tiny_mc"]["acc_norm"]);
    assert_eq!(results["results"]["perplexity"]["documents"], 4);
    assert!(results["results"]["perplexity"]["bits_per_byte"].as_f64().unwrap() != base_results["perplexity"]["bits_per_byte"].as_f64().unwrap());
    let table = String::from_utf8_lossy(&run.stdout);
    assert!(table.contains("| bits per byte |") && table.contains("| acc_norm |"), "{table}");

    let refused = interlace(&["eval", "--model", s(&base), "--heldout", s(&ppl), "--out", s(&out.path().join("x"))]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--perplexity"));
}

#[test]
fn generate_answers_through_the_chat_template_as_transformers_does() {
    let model = fixtures().join("models/tiny-llama3");
    let golden = read_json(&fixtures().join("golden/tiny-llama3/generate.json"));
    let run = interlace(&["generate", "--model", s(&model), "--prompt", golden["prompt"].as_str().unwrap(), "--max-new-tokens", "8", "--json"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let out: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(out["prompt_tokens"], golden["prompt_tokens"]);
    assert_eq!(out["new_tokens"], golden["new_tokens"]);
    assert_eq!(out["text"], golden["text"]);
    let image = fixtures().join("images/tiny.png");
    let refused = interlace(&["generate", "--model", s(&model), "--prompt", "Hi", "--image", s(&image)]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cannot take --image"));
}

#[test]
fn inspect_reads_text_checkpoints() {
    let run = interlace(&["inspect", "--model", s(&fixtures().join("models/tiny-qwen2")), "--json"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let out: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(out["config"]["architecture"], "Qwen2ForCausalLM");
    assert_eq!(out["config"]["layer_attention"], serde_json::json!(["full", "full", "sliding 8", "sliding 8"]));
    // Tied head: embeddings 1536 × 64, four layers of q/k/v (with biases), o, gate/up/down and two norms, the final norm.
    let layer = (64 * 64 + 64) + 2 * (32 * 64 + 32) + 64 * 64 + 3 * 64 * 128 + 2 * 64;
    assert_eq!(out["params"]["text_layers"], serde_json::json!([layer, layer, layer, layer]));
    assert_eq!(out["params"]["total"], 1536 * 64 + 4 * layer + 64);
    let text = interlace(&["inspect", "--model", s(&fixtures().join("models/tiny-qwen2"))]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("layer   3"));
}

#[test]
fn sleb_and_compare_run_on_text_decoders() {
    let out = tempfile::tempdir().unwrap();
    let model = fixtures().join("models/tiny-llama3");
    let data = fixtures().join("calibration/text.jsonl");
    let golden = read_json(&fixtures().join("golden/sleb/tiny-llama3-text.json"));
    let run = interlace(&["sleb", "--model", s(&model), "--data", s(&data), "--ratio", "0.5", "--protect", "none", "--out", s(out.path())]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report = read_json(&out.path().join("sleb.json"));
    assert_eq!(report["order"], golden["order"], "SLEB's removal order");
    for (ours, theirs) in report["rounds"].as_array().unwrap().iter().zip(golden["rounds"].as_array().unwrap()) {
        for score in ours["scores"].as_array().unwrap() {
            let (ours, theirs) = (score["nll"].as_f64().unwrap(), theirs["scores"][score["layer"].to_string()].as_f64().unwrap());
            // Summed f32 NLLs over 169 tokens: measured 1.6e-5 apart.
            assert!((ours - theirs).abs() <= 1e-3, "layer {}: {ours} vs transformers {theirs}", score["layer"]);
        }
    }

    let compare = interlace(&["compare", "--model", s(&model), "--data", s(&data), "--ratios", "0.25", "--out", s(&out.path().join("compare"))]);
    assert!(compare.status.success(), "{}", String::from_utf8_lossy(&compare.stderr));
    let table = read_json(&out.path().join("compare/compare.json"));
    assert!(!table["rows"].as_array().unwrap().is_empty(), "{table}");
}

/// `(name, raw bytes)` of every tensor of a checkpoint directory.
fn tensors(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            let bytes = std::fs::read(&path).unwrap();
            for (name, view) in safetensors::SafeTensors::deserialize(&bytes).unwrap().tensors() {
                out.insert(name, view.data().to_vec());
            }
        }
    }
    out
}

#[test]
fn run_prunes_and_adapts_a_text_decoder_end_to_end() {
    let out = tempfile::tempdir().unwrap();
    let model = fixtures().join("models/tiny-qwen2");
    let data = fixtures().join("train/text_conversations.jsonl");
    let calib = fixtures().join("calibration/text.jsonl");
    let (work, trained) = (out.path().join("work"), out.path().join("trained"));
    let args = ["run", "--model", s(&model), "--data", s(&data), "--calib-data", s(&calib), "--ratio", "0.25", "--lr", "1e-3"];
    let run = interlace(&[&args[..], &["--work-dir", s(&work), "--out", s(&trained)]].concat());
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let plan = read_json(&work.join("plan.json"));
    let (dropped, finetune) = (plan["drop"][0].as_u64().unwrap(), plan["finetune"][0].as_u64().unwrap());
    let renumbered = finetune - u64::from(dropped < finetune);
    let config = read_json(&trained.join("config.json"));
    assert_eq!(config["num_hidden_layers"], 3);
    assert_eq!(config["layer_types"].as_array().unwrap().len(), 3);
    let (before, after) = (tensors(&work.join("pruned")), tensors(&trained));
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>(), "same tensor names");
    let changed: Vec<&String> = before.keys().filter(|name| before[*name] != after[*name]).collect();
    assert!(!changed.is_empty(), "the fine-tune layer learnt");
    let prefix = format!("model.layers.{renumbered}.");
    assert!(changed.iter().all(|name| name.starts_with(&prefix)), "only layer {renumbered} changes: {changed:?}");
    let again = interlace(&["generate", "--model", s(&trained), "--prompt", "Say hello.", "--max-new-tokens", "3"]);
    assert!(again.status.success(), "the adapted checkpoint loads: {}", String::from_utf8_lossy(&again.stderr));
}
