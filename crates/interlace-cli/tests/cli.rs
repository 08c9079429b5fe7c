//! The `interlace` binary end to end: processor + model + generation against transformers.

use std::path::PathBuf;
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures"))
}

fn interlace(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_interlace")).args(args).output().expect("interlace runs")
}

fn golden(model: &str, case: &str) -> serde_json::Value {
    let path = fixtures().join("golden").join(model).join(format!("{case}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn generate_json_matches_transformers_greedy_tokens() {
    for model in ["tiny-a", "tiny-b", "tiny-moe", "tiny-qwen2vl", "tiny-qwen25vl"] {
        let expected = golden(model, "one_image");
        let model_dir = fixtures().join("models").join(model);
        let image = fixtures().join("images/landscape.png");
        let output = interlace(&[
            "generate",
            "--model",
            model_dir.to_str().unwrap(),
            "--image",
            image.to_str().unwrap(),
            "--prompt",
            "What animal is in this picture?",
            "--max-new-tokens",
            "12",
            "--json",
        ]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object on stdout");
        assert_eq!(json["new_tokens"], expected["greedy_tokens"], "{model}: greedy tokens");
        let prompt_tokens = json["prompt_tokens"].as_u64().unwrap();
        assert!(prompt_tokens > 20, "{model}: prompt tokens include the image tokens");
        assert!(json["text"].is_string());
    }
}

#[test]
fn inspect_names_the_family_and_its_sparse_layers() {
    let model_dir = fixtures().join("models/tiny-moe");
    let output = interlace(&["inspect", "--model", model_dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.starts_with("Qwen3VLMoeForConditionalGeneration model (qwen3_vl_moe)"), "{stdout}");
    assert!(stdout.contains("moe:    4 sparse layers of 8 experts (width 24, 2 per token); dense layers [3]"), "{stdout}");

    // A family interlace does not load is named, with the supported ones.
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(model_dir.join("config.json")).unwrap().replace(r#""model_type": "qwen3_vl_moe","#, r#""model_type": "llava_next","#);
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let output = interlace(&["inspect", "--model", dir.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("`llava_next` is not a supported model family; supported: qwen2_vl"), "{stderr}");
    assert!(stderr.contains("qwen2_5_vl (Qwen2_5_VLForConditionalGeneration)") && stderr.contains("qwen3_vl_moe"), "{stderr}");
}

/// A hub-form Qwen2.5-VL checkpoint (flat config, `model.layers.*` / `visual.*` tensor names):
/// the family, its windows, and parameters counted per layer under the older names.
#[test]
fn inspect_reads_a_hub_qwen2_5_vl_checkpoint() {
    let model_dir = fixtures().join("models/tiny-qwen25vl");
    let output = interlace(&["inspect", "--model", model_dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.starts_with("Qwen2_5_VLForConditionalGeneration model (qwen2_5_vl)"), "{stdout}");
    assert!(stdout.contains("windows of 56 px, full attention in blocks [1, 3]"), "{stdout}");
    let output = interlace(&["inspect", "--model", model_dir.to_str().unwrap(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let layers: Vec<u64> = json["params"]["text_layers"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
    // q 64x64+64, k/v 32x64+32 each, o 64x64, norms 2x64, MLP 3 x 96x64
    assert_eq!(layers, vec![4160 + 2 * 2080 + 4096 + 128 + 3 * 6144; 5]);
    assert!(json["params"]["vision"].as_u64().unwrap() > 0 && json["params"]["lm_head"].as_u64().unwrap() == 1536 * 64);
    assert_eq!(json["params"]["embeddings"].as_u64().unwrap(), 1536 * 64);
}

#[test]
fn inspect_counts_parameters_from_the_header() {
    let model_dir = fixtures().join("models/tiny-b");
    let output = interlace(&["inspect", "--model", model_dir.to_str().unwrap(), "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let layers = json["params"]["text_layers"].as_array().unwrap();
    assert_eq!(layers.len(), 5);
    // tiny-b layer: q 96x80, k/v 32x80 each, o 80x96, norms 16+16+80+80, MLP 3 x 160x80.
    let per_layer = 96 * 80 + 2 * 32 * 80 + 80 * 96 + 16 + 16 + 80 + 80 + 3 * 160 * 80;
    assert!(layers.iter().all(|n| n.as_u64().unwrap() == per_layer as u64));
    let total = json["params"]["total"].as_u64().unwrap();
    assert!(total > 5 * per_layer as u64);
}

#[test]
fn bad_inputs_fail_with_a_message_not_a_panic() {
    let missing = interlace(&["generate", "--model", "/nonexistent/model", "--prompt", "hi"]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.starts_with("error:") && stderr.contains("/nonexistent/model"), "{stderr}");
    assert!(!stderr.contains("panicked"));

    let model_dir = fixtures().join("models/tiny-a");
    let no_image = interlace(&["generate", "--model", model_dir.to_str().unwrap(), "--image", "/nonexistent.png", "--prompt", "hi"]);
    let stderr = String::from_utf8_lossy(&no_image.stderr);
    assert!(!no_image.status.success() && stderr.contains("/nonexistent.png"), "{stderr}");

    // ndarray has no bf16; burn-flex (the default CPU backend) computes in it.
    let bf16_ndarray = interlace(&["generate", "--model", model_dir.to_str().unwrap(), "--prompt", "hi", "--dtype", "bf16", "--backend", "ndarray"]);
    let stderr = String::from_utf8_lossy(&bf16_ndarray.stderr);
    assert!(!bf16_ndarray.status.success() && stderr.contains("BF16"), "{stderr}");
    let bf16_flex = interlace(&["generate", "--model", model_dir.to_str().unwrap(), "--prompt", "hi", "--dtype", "bf16", "--max-new-tokens", "3"]);
    assert!(bf16_flex.status.success(), "{}", String::from_utf8_lossy(&bf16_flex.stderr));
}

#[test]
fn seeded_sampling_repeats_and_differs_across_seeds() {
    let model_dir = fixtures().join("models/tiny-b");
    let run = |seed: &str| {
        let output = interlace(&[
            "generate",
            "--model",
            model_dir.to_str().unwrap(),
            "--prompt",
            "Write a short poem about the sea.",
            "--max-new-tokens",
            "16",
            "--json",
            "--sample",
            "--temperature",
            "1.5",
            "--top-p",
            "1.0",
            "--top-k",
            "100",
            "--seed",
            seed,
        ]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        json["new_tokens"].clone()
    };
    assert_eq!(run("7"), run("7"));
    assert_ne!(run("7"), run("8"));
}
