//! interlace-data against the official INTERLACE scripts: `fixtures/make_data_fixtures.py` ran
//! the official `dataset_prep.py` and `dataset_prep_domain.py` (through `datasets` and PIL) on the
//! parquet files in `fixtures/data/`, and committed what they wrote. The records must be equal,
//! byte for byte once the image file names are paired up, and the images equal up to the
//! difference between two JPEG encoders at quality 75.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use interlace_data::{prepare_domain, prepare_finevision, DataError, DomainDataset, DomainOptions, FineVisionOptions, SampleCounts};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/data")
}

fn finevision_options(source: &Path, out: &Path, portion: f64, counts: bool) -> FineVisionOptions {
    let counts = if counts { SampleCounts::File(source.join("sample_counts.json")) } else { SampleCounts::Footers };
    FineVisionOptions { counts, ..FineVisionOptions::new(source, out, portion) }
}

/// The `image` paths of a record, in order.
fn image_paths(record: &Value) -> Vec<String> {
    match &record["image"] {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many.iter().map(|p| p.as_str().unwrap().to_string()).collect(),
        _ => Vec::new(),
    }
}

/// Largest and mean absolute difference between two images of the same size.
fn pixel_difference(ours: &Path, theirs: &Path) -> (u8, f64) {
    let a = image::open(ours).unwrap_or_else(|e| panic!("{}: {e}", ours.display()));
    let b = image::open(theirs).unwrap_or_else(|e| panic!("{}: {e}", theirs.display()));
    assert_eq!(a.color(), image::ColorType::Rgb8, "{} is not an RGB JPEG", ours.display());
    assert_eq!((a.width(), a.height()), (b.width(), b.height()), "{} vs {}", ours.display(), theirs.display());
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    let diffs: Vec<u8> = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| x.abs_diff(*y)).collect();
    (*diffs.iter().max().unwrap(), diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64)
}

/// Pairs our records with the official ones (same count, same order), checks every image pair,
/// and returns our text with our image paths replaced by the official ones.
fn pair_images(ours: &str, theirs: &str, theirs_dir: &Path) -> String {
    let parse = |text: &str| -> Vec<Value> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(records)) => records,
            _ => text.lines().map(|l| serde_json::from_str(l).unwrap()).collect(),
        }
    };
    let (our_records, their_records) = (parse(ours), parse(theirs));
    assert_eq!(our_records.len(), their_records.len(), "record counts differ");
    let mut renames = BTreeMap::new();
    for (a, b) in our_records.iter().zip(&their_records) {
        let (a, b) = (image_paths(a), image_paths(b));
        assert_eq!(a.len(), b.len(), "image counts differ: {a:?} vs {b:?}");
        for (a, b) in a.into_iter().zip(b) {
            renames.entry(a).or_insert(b);
        }
    }
    for (a, b) in &renames {
        let theirs = theirs_dir.join(b.strip_prefix("OUT/").unwrap());
        let identical = std::fs::read(a).unwrap() == std::fs::read(&theirs).unwrap();
        assert!(identical, "{a} differs from Pillow's {}: {:?} (largest, mean pixel difference)", theirs.display(), pixel_difference(Path::new(a), &theirs));
    }
    let mut text = ours.to_string();
    for (a, b) in &renames {
        text = text.replace(&format!("\"{a}\""), &format!("\"{b}\""));
    }
    text
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_finevision_matches(out: &Path, label: &str, expected: &str) {
    let expected_dir = fixtures().join(expected);
    for ext in ["jsonl", "json"] {
        let ours = read(&out.join(format!("FineVision_{label}.{ext}")));
        let theirs = read(&expected_dir.join(format!("FineVision_{label}.{ext}")));
        assert_eq!(pair_images(&ours, &theirs, &expected_dir), theirs, "FineVision_{label}.{ext}");
    }
}

#[test]
fn finevision_with_the_official_counts_file_matches_dataset_prep() {
    let out = tempfile::tempdir().unwrap();
    let report = prepare_finevision(&finevision_options(&fixtures().join("finevision"), out.path(), 0.5, true)).unwrap();
    assert_finevision_matches(out.path(), "5", "expected_finevision_05");
    let summary: Vec<(&str, u64, u64, bool)> = report.subsets.iter().map(|s| (s.name.as_str(), s.take, s.read, s.missing)).collect();
    // int(count * 0.5), at least 1: no_images has no count (0 -> 1 row), yesbut asks for 50 of 4
    // rows, missing_subset has no files, and nothing after yesbut is read.
    assert_eq!(
        summary,
        [
            ("with_system", 3, 3, false),
            ("CoSyn_tiny", 8, 8, false),
            ("missing_subset", 4, 0, true),
            ("multi_shard", 7, 7, false),
            ("no_images", 1, 1, false),
            ("yesbut", 50, 4, false)
        ]
    );
    assert_eq!(report.subsets[1].too_many_images, 2);
    assert_eq!(report.records(), 21);
    assert!(!out.path().join("FineVision_5.progress.json").exists(), "the resume state is removed when done");
}

#[test]
fn finevision_with_footer_row_counts_matches_dataset_prep_with_the_true_counts() {
    let out = tempfile::tempdir().unwrap();
    let report = prepare_finevision(&finevision_options(&fixtures().join("finevision"), out.path(), 1.0, false)).unwrap();
    // str(1.0).split(".")[-1] == "0"
    assert_finevision_matches(out.path(), "0", "expected_finevision_1");
    assert_eq!(report.records(), 37);
}

#[test]
fn an_interrupted_finevision_run_resumes_to_the_same_files() {
    // The second shard of multi_shard is cut short: the run fails there, after two subsets.
    let (source, shard, intact) = finevision_with_a_damaged_shard();
    let out = tempfile::tempdir().unwrap();
    let options = finevision_options(source.path(), out.path(), 0.5, true);
    let error = prepare_finevision(&options).unwrap_err();
    assert!(matches!(error, DataError::Parquet { .. }), "{error}");
    assert!(error.to_string().contains("train-00001-of-00003.parquet"), "{error}");
    assert!(out.path().join("FineVision_5.progress.json").exists());
    assert!(!out.path().join("FineVision_5.json").exists(), "no JSON array before the end");
    // Whatever was written after the last checkpoint is cut off on resume.
    std::fs::OpenOptions::new().append(true).open(out.path().join("FineVision_5.jsonl")).unwrap().write_all(b"{\"half a rec").unwrap();
    std::fs::write(&shard, &intact).unwrap();
    let report = prepare_finevision(&options).unwrap();
    assert!(report.resumed);
    assert_finevision_matches(out.path(), "5", "expected_finevision_05");
    // Finished output is never overwritten.
    let again = prepare_finevision(&options).unwrap_err();
    assert!(matches!(again, DataError::Output { .. }) && again.to_string().contains("FineVision_5.jsonl"), "{again}");
    // A resume with other settings is refused, not mixed in.
    std::fs::write(&shard, &intact[..intact.len() / 2]).unwrap();
    let out2 = tempfile::tempdir().unwrap();
    let _ = prepare_finevision(&finevision_options(source.path(), out2.path(), 0.5, true)).unwrap_err();
    std::fs::write(&shard, &intact).unwrap();
    let other = prepare_finevision(&finevision_options(source.path(), out2.path(), 0.5, false)).unwrap_err();
    assert!(other.to_string().contains("another portion, source or sample counts"), "{other}");
}

use std::io::Write;

/// A copy of the FineVision fixture whose `multi_shard/train-00001-of-00003.parquet` is cut in
/// half: the copy, the shard's path and its intact bytes.
fn finevision_with_a_damaged_shard() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
    let source = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("finevision"), source.path());
    let shard = source.path().join("multi_shard/train-00001-of-00003.parquet");
    let intact = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &intact[..intact.len() / 2]).unwrap();
    (source, shard, intact)
}

#[test]
fn without_a_dataset_card_the_subsets_are_the_sorted_directories() {
    let source = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("finevision"), source.path());
    std::fs::remove_file(source.path().join("README.md")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let report = prepare_finevision(&finevision_options(source.path(), out.path(), 1.0, false)).unwrap();
    let names: Vec<&str> = report.subsets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["CoSyn_tiny", "after_yesbut", "multi_shard", "no_images", "with_system", "yesbut"]);
    assert_eq!(report.records(), 37 + 3);
}

#[test]
fn a_run_interrupted_inside_a_subset_resumes_from_its_last_checkpoint() {
    let (source, shard, intact) = finevision_with_a_damaged_shard();
    let out = tempfile::tempdir().unwrap();
    let options = FineVisionOptions { checkpoint_rows: 2, ..finevision_options(source.path(), out.path(), 0.5, true) };
    prepare_finevision(&options).unwrap_err();
    // multi_shard failed at its sixth row (the damaged second shard); its last checkpoint was at
    // row 4, inside the first shard, so the resumed run starts there (a parquet offset).
    let state: Value = serde_json::from_str(&read(&out.path().join("FineVision_5.progress.json"))).unwrap();
    let last = state["subsets"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["name"].as_str(), last["read"].as_u64(), last["finished"].as_bool()), (Some("multi_shard"), Some(4), Some(false)), "{state}");
    std::fs::write(&shard, &intact).unwrap();
    assert!(prepare_finevision(&options).unwrap().resumed);
    assert_finevision_matches(out.path(), "5", "expected_finevision_05");
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// The records grouped by image (in order), each group's conversations sorted: the official
/// script orders a row's distinct answers by a Python `set`.
fn grouped(text: &str) -> Vec<(String, Vec<String>)> {
    let records: Vec<Value> = serde_json::from_str(text).unwrap();
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for record in records {
        let image = record["image"].as_str().unwrap().to_string();
        let conversation = record["conversations"].to_string();
        match groups.last_mut() {
            Some((last, items)) if *last == image => items.push(conversation),
            _ => groups.push((image, vec![conversation])),
        }
    }
    for (_, items) in &mut groups {
        items.sort();
    }
    groups
}

#[test]
fn domain_sets_match_dataset_prep_domain() {
    for dataset in DomainDataset::ALL {
        for (n_samples, expected) in [(None, "all"), (Some(4), "n4")] {
            let out = tempfile::tempdir().unwrap();
            let lower = dataset.name().to_ascii_lowercase();
            let options = DomainOptions { dataset, source: fixtures().join(&lower), out: out.path().into(), n_samples, progress: false };
            let report = prepare_domain(&options).unwrap();
            let expected_dir = fixtures().join(format!("expected_{lower}_{expected}"));
            let file = format!("{}_train.json", dataset.name());
            let theirs = read(&expected_dir.join(&file));
            let ours = pair_images(&read(&report.json), &theirs, &expected_dir);
            if dataset == DomainDataset::TextVqa {
                // Several distinct answers per row, in `set` order there.
                assert_eq!(grouped(&ours), grouped(&theirs), "{file} ({expected})");
            } else {
                assert_eq!(ours, theirs, "{file} ({expected})");
            }
            assert_eq!(report.records as usize, serde_json::from_str::<Vec<Value>>(&theirs).unwrap().len());
        }
    }
}

#[test]
fn domain_rows_without_an_image_are_skipped_but_counted() {
    let out = tempfile::tempdir().unwrap();
    let options =
        DomainOptions { dataset: DomainDataset::ScienceQa, source: fixtures().join("scienceqa"), out: out.path().into(), n_samples: None, progress: false };
    let report = prepare_domain(&options).unwrap();
    assert_eq!(report.rows, 8, "the validation shard is not read");
    assert!(report.without_image > 0);
    assert_eq!(report.records, report.rows - report.without_image);
}

#[test]
fn sources_without_the_expected_files_are_reported() {
    let empty = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let error = prepare_domain(&DomainOptions {
        dataset: DomainDataset::ChartQa,
        source: empty.path().into(),
        out: out.path().into(),
        n_samples: None,
        progress: false,
    })
    .unwrap_err();
    assert!(error.to_string().contains("no `train` parquet shards"), "{error}");
    let error = prepare_finevision(&finevision_options(empty.path(), out.path(), 0.01, false)).unwrap_err();
    assert!(error.to_string().contains("no README.md with `configs:`"), "{error}");
    let error = prepare_finevision(&finevision_options(&fixtures().join("finevision"), out.path(), 1.5, false)).unwrap_err();
    assert!(error.to_string().contains("--portion must be in (0, 1]"), "{error}");
    // A domain dataset pointed at the wrong repository: its shards lack the columns.
    let error = prepare_domain(&DomainOptions {
        dataset: DomainDataset::ChartQa,
        source: fixtures().join("scienceqa"),
        out: out.path().into(),
        n_samples: None,
        progress: false,
    })
    .unwrap_err();
    assert!(matches!(error, DataError::Schema { .. }) && error.to_string().contains("no `query` column"), "{error}");
}

mod from_the_hub {
    use super::*;
    use interlace_data::{fetch_domain, fetch_finevision, FINEVISION_REPO};
    use interlace_hub::fake_hub::FakeHub;
    use interlace_hub::HubOptions;

    fn repo_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    out.insert(path.strip_prefix(root).unwrap().to_str().unwrap().replace('\\', "/"), std::fs::read(&path).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(dir, dir, &mut out);
        out
    }

    fn options(hub: &FakeHub, cache: &Path) -> HubOptions {
        HubOptions { endpoint: hub.endpoint(), cache_dir: cache.into(), token: None, offline: false, progress: false, retries: 0 }
    }

    /// The files the Hub was asked for, in order.
    fn downloads(hub: &FakeHub) -> Vec<String> {
        // `/datasets/{repo}/resolve/{commit}/{file}`: hf-hub asks for the commit the revision resolved to.
        let file = |target: &str| Some(target.split_once("/resolve/")?.1.split_once('/')?.1.to_string());
        let mut files: Vec<String> = hub.requests().into_iter().filter_map(|r| file(&r.target)).collect();
        files.dedup();
        files
    }

    #[test]
    fn finevision_downloads_only_the_shards_the_conversion_reads() {
        let hub = FakeHub::start();
        let mut files = repo_files(&fixtures().join("finevision"));
        let counts = files.remove("sample_counts.json").unwrap();
        hub.add_dataset_commit(FINEVISION_REPO, "main", "f1e5b7e3a8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e8", files);
        let cache = tempfile::tempdir().unwrap();
        let counts_file = cache.path().join("dataset_sample_counts.json");
        std::fs::write(&counts_file, counts).unwrap();
        let counts = SampleCounts::File(counts_file.clone());
        let source = fetch_finevision(FINEVISION_REPO, "main", 0.5, &counts, &options(&hub, cache.path())).unwrap();
        assert!(source.starts_with(cache.path().join("datasets--HuggingFaceM4--FineVision/snapshots")), "{}", source.display());
        // multi_shard takes 7 rows: shards 0 and 1 (5 rows each), not 2; nothing after yesbut.
        assert_eq!(
            downloads(&hub),
            [
                "README.md",
                "with_system/train-00000-of-00001.parquet",
                "CoSyn_tiny/train-00000-of-00001.parquet",
                "multi_shard/train-00000-of-00003.parquet",
                "multi_shard/train-00001-of-00003.parquet",
                "no_images/train-00000-of-00001.parquet",
                "yesbut/train-00000-of-00001.parquet",
            ]
        );
        let out = tempfile::tempdir().unwrap();
        prepare_finevision(&FineVisionOptions { counts: counts.clone(), ..FineVisionOptions::new(&source, out.path(), 0.5) }).unwrap();
        assert_finevision_matches(out.path(), "5", "expected_finevision_05");
        // The card's split sizes equal the counts file here: the same plan, the same files,
        // nothing more downloaded.
        hub.clear_requests();
        let card_source = fetch_finevision(FINEVISION_REPO, "main", 0.5, &SampleCounts::Card, &options(&hub, cache.path())).unwrap();
        assert_eq!(card_source, source);
        assert!(downloads(&hub).is_empty(), "{:?}", downloads(&hub));
        let by_card = tempfile::tempdir().unwrap();
        prepare_finevision(&FineVisionOptions { counts: SampleCounts::Card, ..FineVisionOptions::new(&source, by_card.path(), 0.5) }).unwrap();
        assert_finevision_matches(by_card.path(), "5", "expected_finevision_05");
        let footers = fetch_finevision(FINEVISION_REPO, "main", 0.5, &SampleCounts::Footers, &options(&hub, cache.path())).unwrap_err();
        assert!(footers.to_string().contains("would need every shard"), "{footers}");
        // A second run, and an offline one, find everything in the cache.
        hub.clear_requests();
        assert_eq!(fetch_finevision(FINEVISION_REPO, "main", 0.5, &counts, &options(&hub, cache.path())).unwrap(), source);
        assert!(downloads(&hub).is_empty(), "{:?}", downloads(&hub));
        let offline = HubOptions { offline: true, ..options(&hub, cache.path()) };
        hub.clear_requests();
        assert_eq!(fetch_finevision(FINEVISION_REPO, "main", 0.5, &counts, &offline).unwrap(), source);
        assert!(hub.requests().is_empty());
        // Offline with nothing cached: said so.
        let empty = tempfile::tempdir().unwrap();
        let error = fetch_finevision(FINEVISION_REPO, "main", 0.5, &counts, &HubOptions { cache_dir: empty.path().into(), ..offline }).unwrap_err();
        assert!(error.to_string().contains("HF_HUB_OFFLINE") && error.to_string().contains("HuggingFaceM4/FineVision@main"), "{error}");
    }

    #[test]
    fn a_domain_set_downloads_the_train_shards_its_rows_need() {
        let hub = FakeHub::start();
        hub.add_dataset_commit(DomainDataset::TextVqa.repo(), "main", "7e47e7e47e47e47e47e47e47e47e47e47e47e47e4", repo_files(&fixtures().join("textvqa")));
        let cache = tempfile::tempdir().unwrap();
        let source = fetch_domain(DomainDataset::TextVqa.repo(), "main", Some(4), &options(&hub, cache.path())).unwrap();
        // The first shard holds rows 0-3; the validation split is never fetched.
        assert_eq!(downloads(&hub), ["data/train-00000-of-00002.parquet"]);
        let out = tempfile::tempdir().unwrap();
        let report =
            prepare_domain(&DomainOptions { dataset: DomainDataset::TextVqa, source, out: out.path().into(), n_samples: Some(4), progress: false }).unwrap();
        let expected_dir = fixtures().join("expected_textvqa_n4");
        let theirs = read(&expected_dir.join("TextVQA_train.json"));
        assert_eq!(grouped(&pair_images(&read(&report.json), &theirs, &expected_dir)), grouped(&theirs));
        let missing = fetch_domain(DomainDataset::ChartQa.repo(), "main", None, &options(&hub, cache.path())).unwrap_err();
        assert!(missing.to_string().contains("HuggingFaceM4/ChartQA"), "{missing}");
    }
}
