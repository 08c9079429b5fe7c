//! `interlace data`: the official data preparation on the command line, from local parquet
//! copies and from a Hub lookalike on 127.0.0.1. The records themselves are checked against the
//! official scripts in `crates/interlace-data/tests/official.rs`; here, the arguments, the
//! messages and the files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use interlace_hub::fake_hub::FakeHub;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/data")
}

fn interlace(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_interlace"));
    command.args(args);
    for var in ["HF_TOKEN", "HF_HUB_OFFLINE", "HF_HUB_CACHE", "HF_TOKEN_PATH", "HF_ENDPOINT", "HF_HOME"] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied()).output().expect("interlace runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            out.insert(path.strip_prefix(root).unwrap().to_str().unwrap().replace('\\', "/"), std::fs::read(&path).unwrap());
        }
    }
}

fn records(path: &Path) -> usize {
    serde_json::from_str::<Vec<serde_json::Value>>(&std::fs::read_to_string(path).unwrap()).unwrap().len()
}

#[test]
fn finevision_from_a_local_copy_writes_the_official_files() {
    let out = tempfile::tempdir().unwrap();
    let source = fixtures().join("finevision");
    let counts = source.join("sample_counts.json");
    let args =
        ["data", "finevision", "--portion", "0.5", "--from", source.to_str().unwrap(), "--sample-counts", counts.to_str().unwrap(), "--seed", "7", "--quiet"];
    let run = interlace(&[], &[&args[..], &["--out", out.path().to_str().unwrap()]].concat());
    assert!(run.status.success(), "{}", text(&run));
    assert!(text(&run).contains("21 records from 5 subsets (2 rows with more than 3 images skipped)"), "{}", text(&run));
    assert!(text(&run).contains("missing_subset: no train shards in the source, skipped"), "{}", text(&run));
    assert_eq!(records(&out.path().join("FineVision_5.json")), 21);
    assert_eq!(std::fs::read_to_string(out.path().join("FineVision_5.jsonl")).unwrap().lines().count(), 21);
    assert!(out.path().join("FineVision_5").read_dir().unwrap().count() > 0);
    // The same command again: the finished output is kept, and the refusal says why.
    let again = interlace(&[], &[&args[..], &["--out", out.path().to_str().unwrap()]].concat());
    assert!(!again.status.success());
    assert!(text(&again).contains("exists and there is no interrupted conversion to resume"), "{}", text(&again));
}

#[test]
fn domain_sets_from_local_copies() {
    for (dataset, expected) in [("chartqa", 6), ("ScienceQA", 6), ("textvqa", 28)] {
        let out = tempfile::tempdir().unwrap();
        let source = fixtures().join(dataset.to_ascii_lowercase());
        let run =
            interlace(&[], &["data", "domain", "--dataset", dataset, "--from", source.to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--quiet"]);
        assert!(run.status.success(), "{}", text(&run));
        let name = match dataset {
            "chartqa" => "ChartQA",
            "textvqa" => "TextVQA",
            other => other,
        };
        assert_eq!(records(&out.path().join(format!("{name}_train.json"))), expected, "{dataset}");
    }
    let unknown = interlace(&[], &["data", "domain", "--dataset", "vqav2", "--from", ".", "--out", "x"]);
    assert!(text(&unknown).contains("unknown domain dataset \"vqav2\""), "{}", text(&unknown));
}

#[test]
fn hub_sources_fetch_only_what_is_read() {
    let hub = FakeHub::start();
    let files: BTreeMap<String, Vec<u8>> = ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet", "data/validation-00000-of-00001.parquet"]
        .iter()
        .map(|name| (name.to_string(), std::fs::read(fixtures().join("chartqa").join(name)).unwrap()))
        .collect();
    hub.add_dataset_commit("HuggingFaceM4/ChartQA", "main", "c4a7c4a7c4a7c4a7c4a7c4a7c4a7c4a7c4a7c4a7", files);
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let env = [("HF_ENDPOINT", hub.endpoint()), ("HF_HOME", home.path().to_str().unwrap().to_string())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Three rows: the first shard holds them; the default repository is the official one.
    let run = interlace(&env, &["data", "domain", "--dataset", "chartqa", "--n-samples", "3", "--out", out.path().to_str().unwrap(), "--quiet"]);
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(records(&out.path().join("ChartQA_train.json")), 3);
    let fetched: Vec<String> = hub.requests().into_iter().filter(|r| r.target.contains("/resolve/")).map(|r| r.target).collect();
    assert!(fetched.iter().all(|t| t.contains("/datasets/HuggingFaceM4/ChartQA/resolve/") && t.ends_with("data/train-00000-of-00002.parquet")), "{fetched:?}");
    // FineVision from the Hub, counts from its card (the fixture card's sizes equal the counts
    // file's): only the shards read are fetched, and the records are those of the counts file.
    let mut files = BTreeMap::new();
    collect(&fixtures().join("finevision"), &fixtures().join("finevision"), &mut files);
    hub.add_dataset_commit("HuggingFaceM4/FineVision", "main", "f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1", files);
    hub.clear_requests();
    let fine = interlace(&env, &["data", "finevision", "--portion", "0.5", "--out", out.path().to_str().unwrap(), "--quiet"]);
    assert!(fine.status.success(), "{}", text(&fine));
    assert!(text(&fine).contains("21 records from 5 subsets"), "{}", text(&fine));
    let mut fetched: Vec<String> = hub.requests().into_iter().filter(|r| r.target.contains("/resolve/")).map(|r| r.target).collect();
    fetched.dedup();
    assert_eq!(fetched.len(), 7, "README.md and the six shards that hold the rows read: {fetched:?}");
}
