//! `interlace eval` end to end: a checkpoint pruned by `interlace prune` against its original.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn interlace() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_interlace"));
    command.current_dir(root());
    command
}

#[test]
fn pruned_model_against_its_base() {
    let dir = tempfile::tempdir().unwrap();
    let pruned = dir.path().join("pruned");
    let out = dir.path().join("out");
    let status = interlace().args(["prune", "--model", "fixtures/models/tiny-a", "--drop", "2", "--quiet", "--out"]).arg(&pruned).status().unwrap();
    assert!(status.success());
    let output = interlace()
        .args(["eval", "--model"])
        .arg(&pruned)
        .args(["--base", "fixtures/models/tiny-a", "--bench", "fixtures/bench/mcq.tsv", "fixtures/bench/yesno.tsv", "fixtures/bench/chart.tsv"])
        .args(["--bench", "fixtures/bench/mixed.jsonl", "--heldout", "fixtures/bench/heldout.jsonl", "--max-new-tokens", "4"])
        .args(["--speed-repeats", "1", "--decode-tokens", "2", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // Malformed rows are named with their index and skipped.
    assert!(stderr.contains("mcq.tsv: row 4 (line 6) skipped"), "{stderr}");
    assert!(stdout.contains("| **average** |"), "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let names: Vec<_> = json["rows"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["mcq", "yesno", "chart", "mixed"]);
    assert_eq!(json["rows"][0]["evaluated"], 4);
    assert!(json["rows"][0]["base_score"].is_number());
    assert_eq!(json["mode"], "generate");
    assert_eq!(json["sampling"]["temperature"], 0.7, "VLMEvalKit's sampling for Qwen3-VL by default");
    assert!(json["heldout"]["loss"].as_f64().unwrap() > 0.0);
    assert!(json["base_heldout"]["loss"].as_f64().unwrap() > 0.0);
    assert!(json["rows"][0]["speed"]["ttft_speedup"].as_f64().unwrap() > 0.0);
    assert!(json["average_ttft_speedup"].as_f64().unwrap() > 0.0);
    assert_eq!(std::fs::read_to_string(out.join("results.md")).unwrap(), stdout);
    // One VLMEvalKit predictions file per model and benchmark: the file's columns (no image)
    // and the reply.
    for label in ["model", "base"] {
        let path = out.join(format!("predictions/{label}_mcq.tsv"));
        let table = std::fs::read_to_string(&path).unwrap();
        assert_eq!(table.lines().next().unwrap(), "index\tquestion\thint\tA\tB\tC\tD\tanswer\tcategory\tprediction");
        // Replies with line breaks are quoted, so the table reads back row for row.
        let back = interlace_eval::read_benchmark(&path, true).unwrap();
        let replies: Vec<&str> = json[if label == "model" { "results" } else { "base_results" }][0]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["prediction"].as_str().unwrap())
            .collect();
        assert_eq!(back.items.iter().map(|i| i.fields["prediction"].as_str()).collect::<Vec<_>>(), replies, "{label}");
    }
}

/// Evaluation speaks conversations and decoders, not families: a pruned Qwen2-VL, a pruned
/// hub-form Qwen2.5-VL and a pruned Qwen3-VL-MoE against their bases, benchmark, held-out loss
/// and speed.
#[test]
fn other_families_pruned_models_against_their_bases() {
    for model in ["tiny-qwen2vl", "tiny-qwen25vl", "tiny-moe"] {
        let dir = tempfile::tempdir().unwrap();
        let (pruned, out) = (dir.path().join("pruned"), dir.path().join("out"));
        let base = format!("fixtures/models/{model}");
        let status = interlace().args(["prune", "--model", &base, "--drop", "2", "--quiet", "--out"]).arg(&pruned).status().unwrap();
        assert!(status.success(), "{model}: prune");
        let output = interlace()
            .args(["eval", "--model"])
            .arg(&pruned)
            .args(["--base", &base, "--bench", "fixtures/bench/mcq.tsv", "--heldout", "fixtures/bench/heldout.jsonl", "--max-new-tokens", "4"])
            .args(["--speed-repeats", "1", "--decode-tokens", "2", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(output.status.success(), "{model}: {}", String::from_utf8_lossy(&output.stderr));
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
        assert_eq!(json["rows"][0]["evaluated"], 4, "{model}");
        assert!(json["rows"][0]["score"].is_number() && json["rows"][0]["base_score"].is_number(), "{model}: {json}");
        assert!(json["heldout"]["loss"].as_f64().unwrap() > 0.0 && json["base_heldout"]["loss"].as_f64().unwrap() > 0.0, "{model}");
        assert!(json["rows"][0]["speed"]["ttft_speedup"].as_f64().unwrap() > 0.0, "{model}");
    }
}

#[test]
fn loglik_mode_limit_and_strict() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = interlace()
        .args(["eval", "--model", "fixtures/models/tiny-b", "--bench", "fixtures/bench/yesno.tsv", "--scoring", "loglik", "--limit", "2", "--no-speed"])
        .args(["--max-new-tokens", "3", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["mode"], "log_likelihood");
    assert_eq!(json["rows"][0]["evaluated"], 2);
    assert!(json["rows"][0]["speed"].is_null());
    let prediction = json["results"][0]["items"][0]["prediction"].as_str().unwrap();
    assert!(prediction == "Yes" || prediction == "No", "{prediction}");
    assert!(std::fs::read_to_string(out.join("results.md")).unwrap().contains("FAST MODE, not VLMEvalKit's"));

    let output =
        interlace().args(["eval", "--model", "fixtures/models/tiny-b", "--bench", "fixtures/bench/mcq.tsv", "--strict", "--out"]).arg(&out).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("row 4") && stderr.contains("not one of the option letters"), "{stderr}");
}

/// VLMEvalKit datasets are recognised by file name or named with `--dataset`; MIA-Bench is
/// reported as needing a judge.
#[test]
fn vlmevalkit_datasets_by_name_and_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let custom = dir.path().join("my_pope_subset.tsv");
    std::fs::copy(root().join("fixtures/vlmeval/POPE.tsv"), &custom).unwrap();
    let output = interlace()
        .args(["eval", "--model", "fixtures/models/tiny-b", "--bench", "fixtures/vlmeval/MMBench_DEV_EN_V11.tsv", "fixtures/vlmeval/MIA-Bench.tsv"])
        .arg(&custom)
        .args(["--dataset", "auto", "auto", "POPE", "--greedy", "--limit", "3", "--max-new-tokens", "2", "--no-speed", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let datasets: Vec<_> = json["results"].as_array().unwrap().iter().map(|r| r["dataset"].as_str().unwrap().to_string()).collect();
    assert_eq!(datasets, ["MMBench_DEV_EN_V11", "MIA-Bench", "POPE"]);
    assert_eq!(json["rows"][0]["metric"], "circular accuracy (%)");
    assert!(json["rows"][1]["score"].is_null());
    assert_eq!(json["rows"][2]["metric"], "F1 of yes (%)");
    assert!(stdout.contains("needs judge"), "{stdout}");
    assert!(json["sampling"]["temperature"] == 0.0);

    let output = interlace()
        .args(["eval", "--model", "fixtures/models/tiny-b", "--bench", "fixtures/bench/mcq.tsv", "--dataset", "MMBench_X", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown dataset `MMBench_X`"));
}
