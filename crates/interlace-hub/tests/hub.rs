//! `fetch_model` against the in-process Hub lookalike (`fake_hub`, 127.0.0.1 only): download,
//! cache hit, offline mode, a revision, a killed and resumed download, a corrupted file, a gated
//! repository, a missing one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use interlace_hub::fake_hub::FakeHub;
use interlace_hub::{fetch_model, resolve_model, HubError, HubOptions};

const REPO: &str = "interlace/tiny-a";
const COMMIT: &str = "1111111111111111111111111111111111111111";
const OLD_COMMIT: &str = "0000000000000000000000000000000000000000";
const SHARD: &str = "model-00001-of-00004.safetensors";

fn tiny_a() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/models/tiny-a")
}

/// tiny-a's files, plus two the fetch must leave out (a README and a `.bin`).
fn tiny_a_files() -> BTreeMap<String, Vec<u8>> {
    let mut files: BTreeMap<String, Vec<u8>> = std::fs::read_dir(tiny_a())
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.insert("README.md".into(), b"# tiny-a\n".to_vec());
    files.insert("pytorch_model.bin".into(), vec![7; 64]);
    files
}

fn hub_with_tiny_a() -> FakeHub {
    let hub = FakeHub::start();
    let mut old = tiny_a_files();
    old.insert("config.json".into(), br#"{"model_type": "qwen3_vl", "revision": "v1"}"#.to_vec());
    hub.add_commit(REPO, "v1", OLD_COMMIT, old);
    hub.add_commit(REPO, "main", COMMIT, tiny_a_files());
    hub
}

fn options(hub: &FakeHub, cache: &Path) -> HubOptions {
    HubOptions { endpoint: hub.endpoint(), cache_dir: cache.into(), token: None, offline: false, progress: false, retries: 0 }
}

fn resolve_requests(hub: &FakeHub) -> Vec<String> {
    hub.requests().into_iter().filter(|r| r.target.contains("/resolve/")).map(|r| format!("{} {}", r.target, r.range.unwrap_or_default())).collect()
}

fn assert_same_as_tiny_a(dir: &Path) {
    for (name, bytes) in tiny_a_files() {
        let wanted = !(name == "README.md" || name == "pytorch_model.bin");
        assert_eq!(dir.join(&name).exists(), wanted, "{name}");
        if wanted {
            assert_eq!(std::fs::read(dir.join(&name)).unwrap(), bytes, "{name}");
        }
    }
}

#[test]
fn downloads_then_hits_the_cache_then_works_offline() {
    let hub = hub_with_tiny_a();
    let cache = tempfile::tempdir().unwrap();
    let dir = fetch_model(REPO, "main", &options(&hub, cache.path())).unwrap();
    assert_eq!(dir, cache.path().join("models--interlace--tiny-a/snapshots").join(COMMIT));
    assert_same_as_tiny_a(&dir);
    assert_eq!(std::fs::read_to_string(cache.path().join("models--interlace--tiny-a/refs/main")).unwrap(), COMMIT);
    let downloads = resolve_requests(&hub);
    assert_eq!(downloads.iter().filter(|r| r.ends_with("bytes=0-")).count(), 12, "each needed file downloaded once: {downloads:#?}");

    hub.clear_requests();
    assert_eq!(fetch_model(REPO, "main", &options(&hub, cache.path())).unwrap(), dir);
    assert!(resolve_requests(&hub).is_empty(), "a cache hit downloads nothing");
    assert_eq!(hub.requests().len(), 1, "only the file list is asked for");

    hub.clear_requests();
    let offline = HubOptions { offline: true, ..options(&hub, cache.path()) };
    assert_eq!(fetch_model(REPO, "main", &offline).unwrap(), dir);
    assert_eq!(resolve_model(&format!("{REPO}@main"), &offline).unwrap(), dir);
    assert!(hub.requests().is_empty(), "offline reads the cache only");
}

#[test]
fn offline_without_the_model_cached_says_so() {
    let hub = hub_with_tiny_a();
    let cache = tempfile::tempdir().unwrap();
    let offline = HubOptions { offline: true, ..options(&hub, cache.path()) };
    let error = fetch_model(REPO, "main", &offline).unwrap_err();
    assert!(matches!(error, HubError::NotCached { .. }), "{error}");
    assert!(error.to_string().contains("HF_HUB_OFFLINE is set") && error.to_string().contains("interlace/tiny-a@main"), "{error}");
    assert!(hub.requests().is_empty());
}

#[test]
fn the_hub_unreachable_falls_back_to_a_complete_cached_snapshot() {
    let cache = tempfile::tempdir().unwrap();
    let dir = {
        let hub = hub_with_tiny_a();
        fetch_model(REPO, "main", &options(&hub, cache.path())).unwrap()
    };
    let gone = HubOptions { endpoint: "http://127.0.0.1:9".into(), cache_dir: cache.path().into(), token: None, offline: false, progress: false, retries: 0 };
    assert_eq!(fetch_model(REPO, "main", &gone).unwrap(), dir);
    let error = fetch_model("interlace/other", "main", &gone).unwrap_err();
    assert!(matches!(error, HubError::Unreachable { .. }) && error.to_string().contains("cannot reach http://127.0.0.1:9"), "{error}");
}

#[test]
fn a_revision_is_its_own_snapshot() {
    let hub = hub_with_tiny_a();
    let cache = tempfile::tempdir().unwrap();
    let old = resolve_model(&format!("{REPO}@v1"), &options(&hub, cache.path())).unwrap();
    assert_eq!(old, cache.path().join("models--interlace--tiny-a/snapshots").join(OLD_COMMIT));
    assert!(std::fs::read_to_string(old.join("config.json")).unwrap().contains("\"v1\""));
    assert_eq!(std::fs::read_to_string(cache.path().join("models--interlace--tiny-a/refs/v1")).unwrap(), OLD_COMMIT);
    let by_commit = fetch_model(REPO, OLD_COMMIT, &options(&hub, cache.path())).unwrap();
    assert_eq!(by_commit, old);
    let main = fetch_model(REPO, "main", &options(&hub, cache.path())).unwrap();
    assert_same_as_tiny_a(&main);
    let error = fetch_model(REPO, "v9", &options(&hub, cache.path())).unwrap_err();
    assert!(matches!(error, HubError::NotFound { .. }) && error.to_string().contains("interlace/tiny-a@v9 was not found"), "{error}");
}

#[test]
fn a_killed_download_resumes_where_it_stopped() {
    let hub = hub_with_tiny_a();
    let cache = tempfile::tempdir().unwrap();
    hub.cut_next_download(SHARD, 100_000);
    let error = fetch_model(REPO, "main", &options(&hub, cache.path())).unwrap_err();
    assert!(matches!(&error, HubError::Interrupted { file, .. } if file == SHARD), "{error}");
    assert!(error.to_string().contains("run again to resume"), "{error}");
    let parts: Vec<u64> = walk(cache.path()).into_iter().filter(|p| p.extension().is_some_and(|e| e == "part")).map(|p| p.metadata().unwrap().len()).collect();
    assert_eq!(parts, [100_000], "the partial file stays");

    hub.clear_requests();
    let dir = fetch_model(REPO, "main", &options(&hub, cache.path())).unwrap();
    assert_same_as_tiny_a(&dir);
    let shard_downloads: Vec<String> = resolve_requests(&hub).into_iter().filter(|r| r.contains(SHARD) && !r.ends_with("bytes=0-0")).collect();
    assert_eq!(shard_downloads, [format!("/{REPO}/resolve/{COMMIT}/{SHARD} bytes=100000-")], "only the rest is asked for");

    // Within one run, `retries` resumes by itself.
    let cache = tempfile::tempdir().unwrap();
    hub.cut_next_download(SHARD, 50_000);
    let dir = fetch_model(REPO, "main", &HubOptions { retries: 2, ..options(&hub, cache.path()) }).unwrap();
    assert_same_as_tiny_a(&dir);
}

#[test]
fn a_corrupted_file_is_caught_by_its_hash_and_not_kept() {
    let hub = hub_with_tiny_a();
    let cache = tempfile::tempdir().unwrap();
    // tokenizer.json first: the configuration files are fetched before the weights.
    for file in ["tokenizer.json", SHARD] {
        hub.corrupt(file, true);
        let error = fetch_model(REPO, "main", &options(&hub, cache.path())).unwrap_err();
        let wanted = if file == SHARD { "SHA-256" } else { "git blob id" };
        assert!(matches!(&error, HubError::Corrupt { file: f, .. } if f == file) && error.to_string().contains(wanted), "{error}");
        let snapshot = cache.path().join("models--interlace--tiny-a/snapshots").join(COMMIT);
        assert!(!snapshot.join(file).exists(), "the corrupt file is not left in the snapshot");
        hub.corrupt(file, false);
    }
    let blobs = walk(&cache.path().join("models--interlace--tiny-a/blobs"));
    assert!(blobs.iter().all(|b| b.extension().is_none_or(|e| e != "part")), "no partial file left: {blobs:?}");
    let dir = fetch_model(REPO, "main", &options(&hub, cache.path())).unwrap();
    assert_same_as_tiny_a(&dir);
}

#[test]
fn a_gated_repository_needs_its_token() {
    let hub = hub_with_tiny_a();
    hub.gate(REPO, "hf_secret");
    let cache = tempfile::tempdir().unwrap();
    let error = fetch_model(REPO, "main", &options(&hub, cache.path())).unwrap_err();
    assert!(matches!(error, HubError::AccessDenied { token_sent: false, .. }), "{error}");
    assert!(error.to_string().contains("gated or private") && error.to_string().contains("HF_TOKEN"), "{error}");
    let wrong = HubOptions { token: Some("hf_wrong".into()), ..options(&hub, cache.path()) };
    assert!(fetch_model(REPO, "main", &wrong).unwrap_err().to_string().contains("the token sent has no access"));
    let right = HubOptions { token: Some("hf_secret".into()), ..options(&hub, cache.path()) };
    assert_same_as_tiny_a(&fetch_model(REPO, "main", &right).unwrap());
    assert!(hub.requests().iter().filter(|r| r.target.contains("/resolve/")).all(|r| r.authorization.as_deref() == Some("Bearer hf_secret")));
}

#[test]
fn a_missing_repository_and_a_repository_without_weights() {
    let hub = hub_with_tiny_a();
    let cache = tempfile::tempdir().unwrap();
    let error = fetch_model("interlace/nothing", "main", &options(&hub, cache.path())).unwrap_err();
    assert!(matches!(error, HubError::NotFound { .. }), "{error}");
    let mut files = tiny_a_files();
    files.retain(|name, _| !name.ends_with(".safetensors") && name != "model.safetensors.index.json");
    hub.add_commit("interlace/bin-only", "main", COMMIT, files);
    let error = fetch_model("interlace/bin-only", "main", &options(&hub, cache.path())).unwrap_err();
    assert!(error.to_string().contains("no safetensors weights"), "{error}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
