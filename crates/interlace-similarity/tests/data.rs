//! Calibration data: record parsing, prompts, subset draws and bad input.

use interlace_qwen3vl::processor::Qwen3VlProcessor;
use std::path::{Path, PathBuf};

use burn::backend::Flex;
use burn::tensor::DType;
use interlace_qwen3vl::Qwen3VlForConditionalGeneration;
use interlace_similarity::{
    calibrate, sample_order, CalibrationConfig, CalibrationData, CalibrationEvent, Calibrator, ChatInputBuilder, PyRandom, SimilarityError,
};
use serde_json::Value;

type B = Flex<f32>;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

#[test]
fn python_random_sample_is_reproduced() {
    let cases: Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("golden/similarity/pyrandom.json")).unwrap()).unwrap();
    for case in cases.as_array().unwrap() {
        let (seed, n, k) = (case["seed"].as_u64().unwrap(), case["n"].as_u64().unwrap() as usize, case["k"].as_u64().unwrap() as usize);
        let want: Vec<usize> = case["sample"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        assert_eq!(PyRandom::new(seed).sample(n, k).unwrap(), want, "seed {seed}, sample(range({n}), {k})");
    }
    assert!(PyRandom::new(1).sample(3, 4).is_none());
}

#[test]
fn records_follow_the_official_prompt_rule() {
    for file in ["calib.jsonl", "calib.json"] {
        let mut data = CalibrationData::open(fixtures().join("calibration").join(file), None).unwrap();
        assert_eq!(data.len(), 6);
        let records: Vec<_> = (0..6).map(|i| data.record(i).unwrap()).collect();
        assert_eq!(records[0].text, "What animal is in this picture?");
        assert_eq!(records[0].images.len(), 1);
        assert_eq!(records[1].images.len(), 2);
        assert!(records[1].images[1].ends_with("tiny.png"));
        assert_eq!(records[1].text, "Compare the two pictures.");
        assert!(records[2].images.is_empty());
        assert_eq!(records[3].text, "Describe the scene in one sentence.", "first human turn, not the system turn");
        assert_eq!(records[4].text, "Look at this: What is it? Keep <image> literal.", "only `<image>\\n` is removed");
        assert_eq!(records[5].text, "Name a prime number.");
        if file == "calib.jsonl" {
            assert_eq!(records.iter().map(|r| r.line).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5, 6]);
        }
    }
}

#[test]
fn subset_draw_matches_official_random_sample() {
    // random.seed(42); random.sample(range(6), int(6 * 0.5)) in CPython
    let order = sample_order(6, Some(0.5), 42, None).unwrap();
    assert_eq!(order, PyRandom::new(42).sample(6, 3).unwrap());
    assert_eq!(sample_order(6, Some(0.5), 42, Some(2)).unwrap(), order[..2]);
    assert_eq!(sample_order(6, None, 42, Some(4)).unwrap(), vec![0, 1, 2, 3]);
    for (portion, max) in [(Some(0.0), None), (Some(1.5), None), (Some(0.1), None), (None, Some(0))] {
        let e = sample_order(6, portion, 42, max).unwrap_err();
        assert!(matches!(e, SimilarityError::InvalidOption { .. }), "{portion:?} {max:?}: {e}");
    }
}

fn write_bad_set(dir: &Path) -> PathBuf {
    let images = fixtures().join("images");
    let lines = [
        format!(r#"{{"image": "{}", "conversations": [{{"from": "human", "value": "<image>\nWhat is it?"}}]}}"#, images.join("landscape.png").display()),
        "{not json".to_string(),
        r#"{"image": "missing.png", "conversations": [{"from": "human", "value": "<image>\nHi"}]}"#.to_string(),
        String::new(),
        r#"{"conversations": [{"from": "gpt", "value": "no question"}]}"#.to_string(),
        r#"{"image": "broken.png", "conversations": [{"from": "human", "value": "<image>\nHi"}]}"#.to_string(),
        r#"{"conversations": [{"from": "human", "value": "Fine text."}]}"#.to_string(),
    ];
    std::fs::write(dir.join("broken.png"), b"not a png").unwrap();
    let path = dir.join("bad.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn bad_records_are_skipped_with_their_line_or_fatal_when_strict() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_bad_set(dir.path());
    let model_dir = fixtures().join("models/tiny-b");
    let model = Qwen3VlForConditionalGeneration::<B>::from_pretrained(&model_dir, &Default::default(), DType::F32).unwrap();
    let builder = ChatInputBuilder::new(Qwen3VlProcessor::from_dir(&model_dir).unwrap());
    let mut data = CalibrationData::open(&path, None).unwrap();
    assert_eq!(data.len(), 6, "the blank line is not a record");
    let order = sample_order(data.len(), None, 42, None).unwrap();
    let mut calibrator = Calibrator::new(CalibrationConfig::default(), 5).unwrap();
    let mut events = Vec::new();
    let summary = calibrate(&model, &builder, &mut data, &order, &mut calibrator, false, &mut |e| events.push(e.clone())).unwrap();
    assert_eq!(summary.used, 2);
    let lines: Vec<usize> = summary.skipped.iter().map(|s| s.line).collect();
    assert_eq!(lines, vec![2, 3, 5, 6]);
    assert!(summary.skipped[0].reason.contains("not valid JSON"), "{:?}", summary.skipped[0]);
    assert!(summary.skipped[1].reason.contains("image not found"), "{:?}", summary.skipped[1]);
    assert!(summary.skipped[2].reason.contains("no `human` turn"), "{:?}", summary.skipped[2]);
    assert!(!summary.skipped[3].reason.is_empty());
    assert_eq!(events.iter().filter(|e| matches!(e, CalibrationEvent::Skipped(_))).count(), 4);
    assert_eq!(calibrator.samples(), 2);

    let mut calibrator = Calibrator::new(CalibrationConfig::default(), 5).unwrap();
    let error = calibrate(&model, &builder, &mut data, &order, &mut calibrator, true, &mut |_| {}).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("bad.jsonl:2:"), "{text}");
}

#[test]
fn image_root_overrides_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("set.jsonl");
    std::fs::write(&path, r#"{"image": ["landscape.png", "gray.png"], "conversations": [{"from": "human", "value": "<image>\n<image>\nTwo."}]}"#).unwrap();
    let mut data = CalibrationData::open(&path, None).unwrap();
    assert!(data.record(0).unwrap_err().to_string().contains("set.jsonl:1: image not found"));
    let root = fixtures().join("images");
    let mut data = CalibrationData::open(&path, Some(&root)).unwrap();
    assert_eq!(data.record(0).unwrap().images, vec![root.join("landscape.png"), root.join("gray.png")]);
}

#[test]
fn unreadable_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(CalibrationData::open(dir.path().join("nope.jsonl"), None), Err(SimilarityError::Io { .. })));
    let path = dir.path().join("array.json");
    std::fs::write(&path, "[{\"conversations\": []}, ").unwrap();
    let e = CalibrationData::open(&path, None).unwrap_err().to_string();
    assert!(e.contains("array.json") && e.contains("not a JSON array"), "{e}");
}
