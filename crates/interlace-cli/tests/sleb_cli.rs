//! `interlace sleb` end to end on tiny-b: the plan drops the reference's SLEB choice
//! (`fixtures/golden/sleb/tiny-b.json`), sleb.json holds every round, and bad options are refused.

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

fn layers(v: &Value) -> Vec<u64> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect()
}

#[test]
fn sleb_writes_the_reference_plan_and_every_round() {
    let out = tempfile::tempdir().unwrap();
    let model = fixtures().join("models/tiny-b");
    let data = fixtures().join("calibration/calib.jsonl");
    let golden = read_json(&fixtures().join("golden/sleb/tiny-b.json"));
    // tiny-b has 5 layers: ratio 0.4 drops int(2.0) = 2, the golden's n_drop.
    let run = interlace(&["sleb", "--model", s(&model), "--data", s(&data), "--ratio", "0.4", "--finetune", "next", "--out", s(out.path())]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let plan = read_json(&out.path().join("plan.json"));
    let mut expected = layers(&golden["sleb"]["order"]);
    let report = read_json(&out.path().join("sleb.json"));
    assert_eq!(layers(&report["order"]), expected, "removal order");
    expected.sort_unstable();
    assert_eq!(layers(&plan["drop"]), expected);
    assert_eq!(plan["strategy"], "sleb");
    assert!(!layers(&plan["finetune"]).is_empty(), "--finetune next names the layers after the dropped ones");
    assert_eq!(layers(&report["protect"]), vec![0, 4], "SLEB's barriers by default");
    assert_eq!(report["rounds"].as_array().unwrap().len(), 2);
    let stdout: Value = serde_json::from_slice(&run.stdout).expect("plan.json on stdout");
    assert_eq!(stdout, plan);

    let shot = interlace(&["sleb", "--model", s(&model), "--data", s(&data), "--ratio", "0.4", "--one-shot", "--protect", "none", "--out", s(out.path())]);
    assert!(shot.status.success(), "{}", String::from_utf8_lossy(&shot.stderr));
    let report = read_json(&out.path().join("sleb.json"));
    assert_eq!(report["rule"], "one_shot");
    assert_eq!(report["rounds"][0]["scores"].as_array().unwrap().len(), 5, "--protect none scores every layer");
    assert_eq!(read_json(&out.path().join("plan.json"))["finetune"], serde_json::json!([]), "--finetune none by default");
}

#[test]
fn bad_options_are_refused_with_the_reason() {
    let out = tempfile::tempdir().unwrap();
    let model = fixtures().join("models/tiny-b");
    let data = fixtures().join("calibration/calib.jsonl");
    for (extra, message) in [
        (vec!["--ratio", "0.9"], "cannot drop 4 of 5 layers: 3 are not protected"),
        (vec!["--ratio", "0.4", "--protect", "x"], "`x` is not a layer index"),
        (vec!["--ratio", "0.4", "--protect", "9"], "9"),
        (vec!["--ratio", "0.4", "--finetune", "later"], "unknown fine-tune rule"),
        (vec!["--ratio", "1.5"], "--ratio"),
    ] {
        let mut args = vec!["sleb", "--model", s(&model), "--data", s(&data), "--out", s(out.path())];
        args.extend(extra.iter().copied());
        let run = interlace(&args);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success() && stderr.contains(message), "{extra:?}: {stderr}");
    }
    assert!(!out.path().join("plan.json").exists(), "nothing written on failure");
}

#[test]
fn compare_runs_every_strategy_on_one_calibration_set() {
    let out = tempfile::tempdir().unwrap();
    let model = fixtures().join("models/tiny-b");
    let data = fixtures().join("calibration/calib.jsonl");
    let run = interlace(&["compare", "--model", s(&model), "--data", s(&data), "--ratios", "0.2,0.4", "--out", s(out.path())]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report = read_json(&out.path().join("compare.json"));
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2 * 10, "8 similarity strategies + SLEB + one-shot, at 2 ratios");
    let row = |strategy: &str, ratio: f64| rows.iter().find(|r| r["strategy"] == strategy && r["ratio"].as_f64() == Some(ratio)).unwrap();
    // SLEB and the angular block equal the references' choices (ratio 0.4: 2 of 5 layers).
    let sleb = read_json(&fixtures().join("golden/sleb/tiny-b.json"));
    let mut expected = layers(&sleb["sleb"]["order"]);
    expected.sort_unstable();
    assert_eq!(layers(&row("sleb", 0.4)["drop"]), expected);
    let angular = read_json(&fixtures().join("golden/angular/tiny-b.json"));
    assert_eq!(layers(&row("angular_block", 0.4)["drop"]), layers(&angular["blocks"]["angular"]["2"]["drop"]));
    // The pruned model's loss is SLEB's own last score: the reference's NLL with both removed.
    let last = &sleb["sleb"]["rounds"][1];
    let nll = last["scores"][last["chosen"].to_string()].as_f64().unwrap();
    let tokens: u64 = layers(&sleb["scored_tokens"]).iter().sum();
    let ours = row("sleb", 0.4)["nll_per_token"].as_f64().unwrap();
    assert!((ours - nll / tokens as f64).abs() / ours < 1e-7, "{ours} vs {}", nll / tokens as f64);
    // Packs 1-3 plus the block sizes of the ratios, from the one pass.
    for file in ["pack1.json", "pack3.json", "angular1.json", "angular2.json", "angular_last_token2.json", "report.json"] {
        assert!(out.path().join("similarity").join(file).is_file(), "{file}");
    }
    let md = std::fs::read_to_string(out.path().join("compare.md")).unwrap();
    assert!(md.contains("## ratio 0.4") && md.contains("| sleb |") && md.contains("Dropped by every strategy"), "{md}");
    assert!(report["agreement"][1]["votes"].as_array().unwrap().len() == 5);
}
