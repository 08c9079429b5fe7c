//! `interlace prune` end to end: counts printed, output loadable, errors clear, nothing left
//! behind on failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn interlace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_interlace")).args(args).output().expect("interlace runs")
}

fn model(name: &str) -> String {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/models")).join(name).display().to_string()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn prune_prints_counts_and_writes_a_loadable_model() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("pruned");
    let result = interlace(&["prune", "--model", &model("tiny-a"), "--drop", "1,3", "--out", out.to_str().unwrap(), "--quiet"]);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let stdout = text(&result.stdout);
    assert!(stdout.contains("text layers: 6 -> 4"), "{stdout}");
    assert!(stdout.contains("parameters:  483360 -> 409312"), "{stdout}");

    // the pruned directory works with the other commands
    let inspect = interlace(&["inspect", "--model", out.to_str().unwrap(), "--json"]);
    assert!(inspect.status.success(), "{}", text(&inspect.stderr));
    let info: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(info["params"]["text_layers"].as_array().map(Vec::len), Some(4), "{info}");
    assert_eq!(info["params"]["total"], 409312);
    assert_eq!(info["config"]["text"]["num_hidden_layers"], 4);
}

#[test]
fn prune_accepts_a_plan_and_json_output() {
    let scratch = tempfile::tempdir().unwrap();
    let plan = scratch.path().join("plan.json");
    std::fs::write(&plan, r#"{"n_layers":5,"strategy":"interlace","ratio":0.4,"drop":[0,4],"finetune":[1],"freeze":[2,3]}"#).unwrap();
    let out = scratch.path().join("pruned");
    let result = interlace(&["prune", "--model", &model("tiny-b"), "--plan", plan.to_str().unwrap(), "--out", out.to_str().unwrap(), "--json"]);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let report: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!((report["layers_before"].as_u64(), report["layers_after"].as_u64()), (Some(5), Some(3)));
    let provenance: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("interlace.json")).unwrap()).unwrap();
    assert_eq!(provenance["plan"]["finetune"], serde_json::json!([1]));
}

#[test]
fn prune_vision_blocks_respects_deepstack_taps() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("pruned");
    let refused = interlace(&["prune", "--model", &model("tiny-a"), "--drop", "1", "--drop-vision", "2", "--out", out.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("--allow-deepstack"), "{}", text(&refused.stderr));
    assert!(entries(scratch.path()).is_empty());

    let allowed =
        interlace(&["prune", "--model", &model("tiny-a"), "--drop", "1", "--drop-vision", "2", "--allow-deepstack", "--out", out.to_str().unwrap(), "--quiet"]);
    assert!(allowed.status.success(), "{}", text(&allowed.stderr));
    assert!(text(&allowed.stdout).contains("vision blocks: 4 -> 3 (deepstack taps [0, 2] -> [0])"), "{}", text(&allowed.stdout));
}

#[test]
fn prune_errors_are_clear_and_leave_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("pruned");
    let out_of_range = interlace(&["prune", "--model", &model("tiny-a"), "--drop", "6", "--out", out.to_str().unwrap()]);
    assert!(!out_of_range.status.success());
    assert!(text(&out_of_range.stderr).contains("layer index 6 is out of range"), "{}", text(&out_of_range.stderr));

    let missing_drop = interlace(&["prune", "--model", &model("tiny-a"), "--out", out.to_str().unwrap()]);
    assert!(!missing_drop.status.success());

    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("x"), "x").unwrap();
    let exists = interlace(&["prune", "--model", &model("tiny-a"), "--drop", "1", "--out", out.to_str().unwrap()]);
    assert!(text(&exists.stderr).contains("--force"), "{}", text(&exists.stderr));
    let forced = interlace(&["prune", "--model", &model("tiny-a"), "--drop", "1", "--out", out.to_str().unwrap(), "--force", "--quiet"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert!(!out.join("x").exists());
    assert_eq!(entries(scratch.path()), vec!["pruned"]);
}
