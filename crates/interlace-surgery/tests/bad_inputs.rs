//! Every bad input and every interruption: a clear error, and neither output nor temporary
//! directory left behind.

mod common;

use std::ops::ControlFlow;
use std::path::Path;

use interlace_core::Plan;
use interlace_surgery::{prune_checkpoint, DiskPruneOptions, DropSpec, NoProgress, Progress, SurgeryError};

fn try_prune(source: &Path, out: &Path, drop: &[usize]) -> Result<interlace_surgery::DiskPruneReport, SurgeryError> {
    prune_checkpoint(source, out, &DropSpec::Layers(drop.to_vec()), &common::with_layout(DiskPruneOptions::default(), source), &mut NoProgress)
}

/// The error message, after checking that nothing but the listed entries remain in `parent`.
fn fails_cleanly(result: Result<interlace_surgery::DiskPruneReport, SurgeryError>, parent: &Path, allowed: &[&str]) -> String {
    let error = result.expect_err("must fail");
    let left: Vec<String> = common::entries(parent).into_iter().filter(|e| !allowed.contains(&e.as_str())).collect();
    assert!(left.is_empty(), "left behind: {left:?} (error: {error})");
    error.to_string()
}

#[test]
fn invalid_drop_sets_are_refused_before_writing() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("out");
    let source = common::model("tiny-a");
    for (drop, expected) in
        [(vec![6], "layer index 6 is out of range"), (vec![2, 2], "listed more than once"), ((0..6).collect(), "cannot remove all 6 layers")]
    {
        let message = fails_cleanly(try_prune(&source, &out, &drop), scratch.path(), &[]);
        assert!(message.contains(expected), "{message}");
    }
    let message = fails_cleanly(
        prune_checkpoint(
            &source,
            &out,
            &DropSpec::Layers(vec![]),
            &common::with_layout(DiskPruneOptions { drop_vision: vec![4], ..Default::default() }, &source),
            &mut NoProgress,
        ),
        scratch.path(),
        &[],
    );
    assert!(message.contains("vision blocks") && message.contains("out of range"), "{message}");
    let plan = Plan::new(5, "x", 0.2, vec![1], vec![], vec![0, 2, 3, 4]).unwrap();
    let message = fails_cleanly(
        prune_checkpoint(&source, &out, &DropSpec::Plan(plan), &common::with_layout(DiskPruneOptions::default(), &source), &mut NoProgress),
        scratch.path(),
        &[],
    );
    assert!(message.contains("plan is for 5 layers") && message.contains("has 6"), "{message}");
}

#[test]
fn truncated_shard_is_named() {
    let scratch = tempfile::tempdir().unwrap();
    let source = common::scratch_model("tiny-a", scratch.path());
    let shard = source.join("model-00002-of-00004.safetensors");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() - 100]).unwrap();
    let message = fails_cleanly(try_prune(&source, &scratch.path().join("out"), &[1]), scratch.path(), &["src-tiny-a"]);
    assert!(message.contains("model-00002-of-00004.safetensors") && message.contains("truncated"), "{message}");
}

#[test]
fn corrupt_header_is_named() {
    let scratch = tempfile::tempdir().unwrap();
    let source = common::scratch_model("tiny-a", scratch.path());
    let shard = source.join("model-00003-of-00004.safetensors");
    let mut bytes = std::fs::read(&shard).unwrap();
    bytes[8] = b'!';
    std::fs::write(&shard, &bytes).unwrap();
    let message = fails_cleanly(try_prune(&source, &scratch.path().join("out"), &[1]), scratch.path(), &["src-tiny-a"]);
    assert!(message.contains("model-00003-of-00004.safetensors") && message.contains("corrupt"), "{message}");
}

#[test]
fn missing_shard_is_named() {
    let scratch = tempfile::tempdir().unwrap();
    let source = common::scratch_model("tiny-b", scratch.path());
    std::fs::remove_file(source.join("model-00004-of-00004.safetensors")).unwrap();
    let message = fails_cleanly(try_prune(&source, &scratch.path().join("out"), &[1]), scratch.path(), &["src-tiny-b"]);
    assert!(message.contains("model-00004-of-00004.safetensors") && message.contains("missing"), "{message}");
}

#[test]
fn index_disagreeing_with_shards_is_named() {
    let scratch = tempfile::tempdir().unwrap();
    let source = common::scratch_model("tiny-a", scratch.path());
    let index_path = source.join("model.safetensors.index.json");
    let mut index = common::json(&index_path);
    let name = "model.language_model.norm.weight";
    let real = index["weight_map"][name].as_str().unwrap().to_string();
    let wrong = if real == "model-00001-of-00004.safetensors" { "model-00002-of-00004.safetensors" } else { "model-00001-of-00004.safetensors" };
    index["weight_map"][name] = wrong.into();
    std::fs::write(&index_path, serde_json::to_string(&index).unwrap()).unwrap();
    let message = fails_cleanly(try_prune(&source, &scratch.path().join("out"), &[1]), scratch.path(), &["src-tiny-a"]);
    assert!(message.contains(name) && message.contains(&real) && message.contains(wrong), "{message}");

    // a tensor listed in the index but in no shard
    index["weight_map"][name] = real.into();
    index["weight_map"]["ghost.weight"] = "model-00001-of-00004.safetensors".into();
    std::fs::write(&index_path, serde_json::to_string(&index).unwrap()).unwrap();
    let message = fails_cleanly(try_prune(&source, &scratch.path().join("out"), &[1]), scratch.path(), &["src-tiny-a"]);
    assert!(message.contains("ghost.weight"), "{message}");
}

#[test]
fn config_disagreeing_with_tensors_is_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let source = common::scratch_model("tiny-b", scratch.path());
    let mut config = common::json(&source.join("config.json"));
    config["text_config"]["num_hidden_layers"] = 4.into();
    std::fs::write(source.join("config.json"), serde_json::to_string(&config).unwrap()).unwrap();
    let message = fails_cleanly(try_prune(&source, &scratch.path().join("out"), &[1]), scratch.path(), &["src-tiny-b"]);
    assert!(message.contains("model.language_model.layers.4.") && message.contains("4 layers"), "{message}");
}

#[test]
fn existing_output_needs_force_and_source_is_protected() {
    let scratch = tempfile::tempdir().unwrap();
    let source = common::scratch_model("tiny-b", scratch.path());
    let out = scratch.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "x").unwrap();
    let message = fails_cleanly(try_prune(&source, &out, &[1]), scratch.path(), &["src-tiny-b", "out"]);
    assert!(message.contains("--force"), "{message}");
    assert_eq!(common::entries(&out), vec!["keep.txt"]);

    let forced = prune_checkpoint(
        &source,
        &out,
        &DropSpec::Layers(vec![1]),
        &common::with_layout(DiskPruneOptions { force: true, ..Default::default() }, &source),
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(forced.layers_after, 4);
    assert!(!out.join("keep.txt").exists());
    assert_eq!(common::entries(scratch.path()), vec!["out", "src-tiny-b"]);

    // an empty existing directory is fine without --force
    let empty = scratch.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    try_prune(&source, &empty, &[1]).unwrap();

    // never inside the source, never containing it (even with --force)
    let before = common::entries(&source);
    for out in [source.join("pruned"), source.clone(), scratch.path().to_path_buf()] {
        let result = prune_checkpoint(
            &source,
            &out,
            &DropSpec::Layers(vec![1]),
            &common::with_layout(DiskPruneOptions { force: true, ..Default::default() }, &source),
            &mut NoProgress,
        );
        assert!(matches!(result, Err(SurgeryError::OutputOverlapsSource { .. })), "{out:?}: {result:?}");
    }
    assert_eq!(common::entries(&source), before);
}

/// Cancels after `after` progress ticks: simulates an interruption in the middle of the copy.
struct Interrupt {
    ticks: usize,
    after: usize,
}

impl Progress for Interrupt {
    fn advance(&mut self, _bytes: u64) -> ControlFlow<()> {
        self.ticks += 1;
        if self.ticks > self.after {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

#[test]
fn interruption_mid_copy_leaves_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let source = common::model("tiny-a");
    let out = scratch.path().join("out");
    for after in [0, 5, 40] {
        let result = prune_checkpoint(
            &source,
            &out,
            &DropSpec::Layers(vec![1]),
            &common::with_layout(DiskPruneOptions::default(), &source),
            &mut Interrupt { ticks: 0, after },
        );
        let message = fails_cleanly(result, scratch.path(), &[]);
        assert!(message.contains("cancelled"), "{message}");
    }
    // interrupting a --force run keeps the previous output intact
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("previous.txt"), "x").unwrap();
    let result = prune_checkpoint(
        &source,
        &out,
        &DropSpec::Layers(vec![1]),
        &common::with_layout(DiskPruneOptions { force: true, ..Default::default() }, &source),
        &mut Interrupt { ticks: 0, after: 3 },
    );
    fails_cleanly(result, scratch.path(), &["out"]);
    assert_eq!(common::entries(&out), vec!["previous.txt"]);
}

#[test]
fn unwritable_output_or_unreadable_shard_leaves_nothing() {
    // The output's parent is a file: creating the temporary directory fails.
    let scratch = tempfile::tempdir().unwrap();
    let blocker = scratch.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let result = try_prune(&common::model("tiny-a"), &blocker.join("out"), &[1]);
    let message = fails_cleanly(result, scratch.path(), &["file"]);
    assert!(message.contains("file"), "{message}");

    // A shard path that is not a regular file (here a directory) is refused by name.
    let source = common::scratch_model("tiny-b", scratch.path());
    std::fs::remove_file(source.join("model-00002-of-00004.safetensors")).unwrap();
    std::fs::create_dir(source.join("model-00002-of-00004.safetensors")).unwrap();
    let message = fails_cleanly(try_prune(&source, &scratch.path().join("out"), &[1]), scratch.path(), &["file", "src-tiny-b"]);
    assert!(message.contains("model-00002-of-00004.safetensors"), "{message}");
}
