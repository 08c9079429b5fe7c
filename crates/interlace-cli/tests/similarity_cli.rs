//! `interlace similarity` and `interlace select` end to end on the tiny fixtures.

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
fn similarity_writes_official_packs_report_and_plot_then_select_reads_them() {
    let out = tempfile::tempdir().unwrap();
    let model = fixtures().join("models/tiny-a");
    let data = fixtures().join("calibration/calib.jsonl");
    let run = interlace(&["similarity", "--model", s(&model), "--data", s(&data), "--out", s(out.path())]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let golden = read_json(&fixtures().join("golden/similarity/tiny-a.json"));
    for k in 1..=3usize {
        let pack = read_json(&out.path().join(format!("pack{k}.json")));
        let keys: Vec<&String> = pack.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 6 - k, "official key range 0..L-k-1");
        for i in 0..6 - k {
            let got = pack[i.to_string()].as_array().unwrap();
            let want = golden["cosine"][k.to_string()][i.to_string()].as_array().unwrap();
            assert_eq!(got.len(), 6);
            for (a, b) in got.iter().zip(want) {
                // Same limit as crates/interlace-similarity/tests/parity.rs (measured ~2e-7).
                assert!((a.as_f64().unwrap() - b.as_f64().unwrap()).abs() <= 1e-5, "pack {k} layer {i}: {a} vs {b}");
            }
        }
    }
    let report = read_json(&out.path().join("report.json"));
    assert_eq!(report["samples_used"], 6);
    assert_eq!(report["samples_skipped"], 0);
    assert_eq!(report["n_layers"], 6);
    assert_eq!(report["taps"], "transformers");
    assert_eq!(report["tokens"], 199);
    assert_eq!(report["packs"]["1"]["metrics"]["cosine"]["mean"].as_array().unwrap().len(), 6, "report includes i = L-k");
    let png = std::fs::read(out.path().join("similarity.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    let plan_path = out.path().join("plan.json");
    let select = interlace(&["select", "--sims", s(out.path()), "--ratio", "0.34", "--out", s(&plan_path)]);
    assert!(select.status.success(), "{}", String::from_utf8_lossy(&select.stderr));
    let printed: Value = serde_json::from_slice(&select.stdout).unwrap();
    assert_eq!(printed, read_json(&plan_path));
    let plan = interlace_core::Plan::from_file(&plan_path).unwrap();
    assert_eq!((plan.n_layers, plan.drop.len(), plan.finetune.len()), (6, 2, 2));
}

#[test]
fn subset_packs_and_residual_taps() {
    let out = tempfile::tempdir().unwrap();
    let model = fixtures().join("models/tiny-b");
    let data = fixtures().join("calibration/calib.json");
    let run = interlace(&[
        "similarity",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--packs",
        "1,3",
        "--taps",
        "residual",
        "--sample-portion",
        "0.5",
        "--seed",
        "42",
        "--max-samples",
        "2",
        "--out",
        s(out.path()),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(out.path().join("pack1.json").is_file() && out.path().join("pack3.json").is_file());
    assert!(!out.path().join("pack2.json").exists());
    let report = read_json(&out.path().join("report.json"));
    assert_eq!(report["samples_used"], 2);
    assert_eq!(report["taps"], "residual");
    assert_eq!(report["sample_portion"], 0.5);
    assert_eq!(read_json(&out.path().join("pack1.json"))["0"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_records_are_counted_or_fatal_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("set.jsonl");
    let image = fixtures().join("images/landscape.png");
    std::fs::write(&data, format!(
        "{{\"image\": \"{}\", \"conversations\": [{{\"from\": \"human\", \"value\": \"<image>\\nHi\"}}]}}\n{{broken\n{{\"image\": \"gone.png\", \"conversations\": [{{\"from\": \"human\", \"value\": \"x\"}}]}}\n",
        image.display())).unwrap();
    let model = fixtures().join("models/tiny-b");
    let out = dir.path().join("out");
    let run = interlace(&["similarity", "--model", s(&model), "--data", s(&data), "--out", s(&out)]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report = read_json(&out.join("report.json"));
    assert_eq!(report["samples_used"], 1);
    assert_eq!(report["samples_skipped"], 2);
    assert_eq!(report["skipped"][0]["line"], 2);
    assert_eq!(report["skipped"][1]["line"], 3);
    let strict = interlace(&["similarity", "--model", s(&model), "--data", s(&data), "--strict", "--out", s(&out)]);
    assert!(!strict.status.success());
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert!(stderr.contains("set.jsonl:2:"), "{stderr}");
}

#[test]
fn select_strategies_and_errors() {
    let sims = fixtures().join("selection/layers36");
    let expected = read_json(&sims.join("expected.json"));
    for (strategy, key) in [
        ("interlace", "interlace@0.15"),
        ("interlace_oa", "interlace_oa@0.15"),
        ("interlace-tn", "interlace_tn@0.15"),
        ("random", "random@0.15"),
        ("lowest-influence", "lowest_influence@0.15"),
        ("consecutive", "consecutive@0.1"),
    ] {
        let ratio = key.split('@').nth(1).unwrap();
        let run = interlace(&["select", "--sims", s(&sims), "--ratio", ratio, "--strategy", strategy]);
        assert!(run.status.success(), "{strategy}: {}", String::from_utf8_lossy(&run.stderr));
        let plan: Value = serde_json::from_slice(&run.stdout).unwrap();
        assert_eq!(plan, expected["plans"][key], "{strategy}");
    }
    let manual = interlace(&["select", "--sims", s(&sims), "--drop", "3,9"]);
    assert!(manual.status.success());
    let plan: Value = serde_json::from_slice(&manual.stdout).unwrap();
    assert_eq!(plan["drop"], serde_json::json!([3, 9]));
    assert_eq!(plan["strategy"], "manual");
    for (args, needle) in [
        (vec!["--ratio", "1.5"], "not in (0, 1)"),
        (vec!["--ratio", "0.01"], "drops no layer"),
        (vec!["--ratio", "0.25", "--strategy", "consecutive"], "runs past the last layer"),
        (vec!["--ratio", "0.2", "--strategy", "bogus"], "unknown strategy"),
        (vec!["--drop", "36"], "out of range"),
    ] {
        let mut full = vec!["select", "--sims", s(&sims)];
        full.extend(args.iter());
        let run = interlace(&full);
        assert!(!run.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let no_p2 = fixtures().join("selection/fallback_without_pack2");
    let run = interlace(&["select", "--sims", s(&no_p2), "--ratio", "0.3"]);
    assert!(String::from_utf8_lossy(&run.stderr).contains("no pack2.json"));
}
