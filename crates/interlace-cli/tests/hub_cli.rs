//! Hub ids on the command line: `interlace inspect` and `interlace prune` take
//! `--model owner/name[@revision]`, served here by the in-process Hub lookalike on 127.0.0.1,
//! with the standard environment (`HF_ENDPOINT`, `HF_HOME`, `HF_TOKEN`, `HF_HUB_OFFLINE`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use interlace_hub::fake_hub::FakeHub;

const COMMIT: &str = "2222222222222222222222222222222222222222";

fn tiny_a() -> BTreeMap<String, Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/models/tiny-a");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect()
}

fn interlace(hub: &FakeHub, home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_interlace"));
    command.args(args).env("HF_ENDPOINT", hub.endpoint()).env("HF_HOME", home);
    for var in ["HF_TOKEN", "HF_HUB_OFFLINE", "HF_HUB_CACHE", "HF_TOKEN_PATH", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied()).output().expect("interlace runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn inspect_and_prune_take_hub_ids() {
    let hub = FakeHub::start();
    hub.add_commit("interlace/tiny-a", "main", COMMIT, tiny_a());
    hub.gate("interlace/tiny-a", "hf_test");
    let home = tempfile::tempdir().unwrap();

    let denied = interlace(&hub, home.path(), &[], &["inspect", "--model", "interlace/tiny-a"]);
    assert!(!denied.status.success());
    assert!(text(&denied).contains("gated or private") && text(&denied).contains("HF_TOKEN"), "{}", text(&denied));

    let offline = interlace(&hub, home.path(), &[("HF_HUB_OFFLINE", "1")], &["inspect", "--model", "interlace/tiny-a"]);
    assert!(!offline.status.success() && text(&offline).contains("HF_HUB_OFFLINE is set"), "{}", text(&offline));

    let inspected = interlace(&hub, home.path(), &[("HF_TOKEN", "hf_test")], &["inspect", "--model", "interlace/tiny-a", "--json"]);
    assert!(inspected.status.success(), "{}", text(&inspected));
    let snapshot = home.path().join("hub/models--interlace--tiny-a/snapshots").join(COMMIT);
    assert!(text(&inspected).contains(&snapshot.display().to_string()), "{}", text(&inspected));
    let local = Command::new(env!("CARGO_BIN_EXE_interlace"))
        .args(["inspect", "--json", "--model"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/models/tiny-a"))
        .output()
        .unwrap();
    assert_eq!(inspected.stdout, local.stdout, "the same report as for the local directory");

    hub.clear_requests();
    let out = tempfile::tempdir().unwrap();
    let pruned = out.path().join("pruned");
    let offline_prune =
        interlace(&hub, home.path(), &[("HF_HUB_OFFLINE", "1")], &["prune", "--model", "interlace/tiny-a", "--drop", "1", "--out", pruned.to_str().unwrap()]);
    assert!(offline_prune.status.success(), "{}", text(&offline_prune));
    assert!(hub.requests().is_empty(), "offline: no request at all");
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(pruned.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["text_config"]["num_hidden_layers"], 5);
}
