//! Training inputs that must be refused, not trusted: a plan other than the one the directory
//! was pruned with, and a `--resume` with other settings than the checkpoint's.

use std::path::{Path, PathBuf};

use interlace_prune::burn::backend::{Autodiff, NdArray};
use interlace_prune::burn::tensor::DType;
use interlace_prune::core::Plan;
use interlace_prune::surgery::{prune_checkpoint, DropSpec, NoProgress};
use interlace_prune::train::{TrainConfig, TrainError};
use interlace_prune::{adapt_dir, AdaptOptions, PipelineError};

type B = Autodiff<NdArray<f32>>;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures"))
}

fn plan(drop: usize, finetune: usize) -> Plan {
    let freeze = (0..5).filter(|&i| i != drop && i != finetune).collect();
    Plan::new(5, "manual", 0.2, vec![drop], vec![finetune], freeze).unwrap()
}

/// tiny-b (5 layers) pruned with `plan` into `dir/pruned`.
fn pruned(dir: &Path, plan: &Plan) -> PathBuf {
    let out = dir.join("pruned");
    let options = interlace_prune::registry::prune_options(&fixtures().join("models/tiny-b")).unwrap();
    prune_checkpoint(&fixtures().join("models/tiny-b"), &out, &DropSpec::Plan(plan.clone()), &options, &mut NoProgress).unwrap();
    out
}

fn options(train: TrainConfig) -> AdaptOptions {
    // Image paths in the fixture are relative to its folder, wherever the data file is copied.
    AdaptOptions { train, max_length: 256, image_root: Some(fixtures().join("train")), ..AdaptOptions::default() }
}

fn adapt(pruned: &Path, plan: &Plan, data: &Path, options: &AdaptOptions, out: &Path, run: &Path) -> Result<usize, PipelineError> {
    adapt_dir::<B>(pruned, plan, data, options, out, run, DType::F32, &[Default::default()], |_| {}).map(|(report, _)| report.steps)
}

fn data() -> PathBuf {
    fixtures().join("train/conversations.jsonl")
}

#[test]
fn a_plan_other_than_the_pruning_plan_is_refused_naming_both_drop_sets() {
    let dir = tempfile::tempdir().unwrap();
    let pruned = pruned(dir.path(), &plan(1, 2));
    // Same size (4 layers left), other layers: this used to train the wrong layers silently.
    let other = plan(3, 2);
    let err = adapt(&pruned, &other, &data(), &options(TrainConfig::default()), &dir.path().join("out"), &dir.path().join("run")).unwrap_err();
    assert!(matches!(&err, PipelineError::PlanMismatch { recorded_drop, drop, .. } if recorded_drop == &[1] && drop == &[3]), "{err}");
    let message = err.to_string();
    assert!(message.contains("[1]") && message.contains("[3]") && message.contains("interlace prune"), "{message}");
    assert!(!dir.path().join("run").exists() && !dir.path().join("out").exists(), "refused before anything was written");

    // Pixel overrides bypass the processor's own checks, so adapt checks them.
    for (min, max) in [(Some(5000), Some(100)), (Some(0), None), (None, Some(usize::MAX))] {
        let bad = AdaptOptions { min_pixels: min, max_pixels: max, ..options(TrainConfig::default()) };
        let err = adapt(&pruned, &plan(1, 2), &data(), &bad, &dir.path().join("out"), &dir.path().join("run")).unwrap_err();
        assert!(err.to_string().contains("pixels"), "{min:?} {max:?}: {err}");
    }

    // A provenance file that is valid JSON but not an object is an error, not a panic.
    std::fs::write(pruned.join("interlace.json"), "[1, 2, 3]").unwrap();
    let err = adapt(&pruned, &plan(1, 2), &data(), &options(TrainConfig::default()), &dir.path().join("out"), &dir.path().join("run")).unwrap_err();
    assert!(err.to_string().contains("expected a JSON object"), "{err}");
}

#[test]
fn without_interlace_json_only_the_layer_count_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let pruned = pruned(dir.path(), &plan(1, 2));
    std::fs::remove_file(pruned.join("interlace.json")).unwrap();
    // Another plan of the same size cannot be told apart: accepted (documented).
    let one_step = options(TrainConfig { stop_after: Some(1), ..TrainConfig::default() });
    let steps = adapt(&pruned, &plan(3, 2), &data(), &one_step, &dir.path().join("out"), &dir.path().join("run")).unwrap();
    assert_eq!(steps, 1);
    // A plan that leaves another number of layers is refused.
    let six = Plan::new(6, "manual", 0.2, vec![0], vec![1], vec![2, 3, 4, 5]).unwrap();
    let err = adapt(&pruned, &six, &data(), &one_step, &dir.path().join("out2"), &dir.path().join("run2")).unwrap_err();
    assert!(err.to_string().contains("has 4 text layers but the plan leaves 5 of 6"), "{err}");
}

#[test]
fn resume_refuses_other_settings_and_lists_every_difference() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(1, 2);
    let pruned = pruned(dir.path(), &plan);
    let run = dir.path().join("run");
    let first = TrainConfig { epochs: 2, lr: 1e-3, checkpoint_every: 1, stop_after: Some(2), ..TrainConfig::default() };
    assert_eq!(adapt(&pruned, &plan, &data(), &options(first.clone()), &dir.path().join("out1"), &run).unwrap(), 2);

    // Same records, other bytes: the data file's hash differs.
    let edited = dir.path().join("edited.jsonl");
    std::fs::write(&edited, std::fs::read_to_string(data()).unwrap() + "\n").unwrap();
    let changed = AdaptOptions { max_length: 128, resume: true, ..options(TrainConfig { lr: 2e-3, stop_after: None, ..first.clone() }) };
    let err = adapt(&pruned, &plan, &edited, &changed, &dir.path().join("out2"), &run).unwrap_err();
    let PipelineError::Train(TrainError::ResumeMismatch { differences, .. }) = &err else { panic!("{err}") };
    let fields: Vec<&str> = differences.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(fields, ["data_sha256", "lr", "max_length"], "{err}");
    let message = err.to_string();
    assert!(message.contains("lr: 0.001 in the checkpoint, 0.002 now") && message.contains("max_length: 256 in the checkpoint, 128 now"), "{message}");

    // The checkpoint's own settings resume (checkpoint frequency and the stop may change).
    let same = AdaptOptions { resume: true, ..options(TrainConfig { checkpoint_every: 0, stop_after: None, ..first }) };
    let steps = adapt(&pruned, &plan, &data(), &same, &dir.path().join("out3"), &run).unwrap();
    assert_eq!(steps, 8, "2 epochs of 4 conversations");
}
