//! The optimizer over a whole run, against torch and transformers
//! (fixtures/make_train_run_fixtures.py): AdamW over several steps with changing gradients and
//! learning rates, the cosine schedule with warmup, global grad-norm clipping, and 20 optimizer
//! steps of interlace's trainer against the stock `transformers.Trainer` on tiny-b (and 12 steps with
//! gradient accumulation, where the Trainer normalises the loss per micro-batch).
//!
//! A single AdamW step from zero moments is about `-lr·sign(g)` whatever the betas, so
//! `step_parity.rs` cannot see wrong betas or moment handling; these tests can (each checks that
//! a wrong optimizer, e.g. swapped betas or no bias correction, would fail it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use burn::backend::{Autodiff, Flex};
use burn::module::{Module, Param};
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::{Backend, Tensor};
use burn::tensor::{DType, TensorData};
use interlace_core::{DecoderStack, LayerSet, Plan};
use interlace_qwen3vl::processor::Qwen3VlProcessor;
use interlace_qwen3vl::{Qwen3VlForConditionalGeneration, Qwen3VlInput};
use interlace_train::params::trainable_tensors;
use interlace_train::{
    clip_grad_norm, pytorch_adamw, train, ConversationDataset, CosineWithWarmup, ExampleSource, LossNormalization, StepLog, TrainConfig, TrainError,
    TrainingExample,
};

mod common;
use common::{fixtures, json, Golden};

type B = Autodiff<Flex<f32>>;
type Inner = Flex<f32>;

// Tolerances, a few times the errors measured on the CI machine (ndarray, f32, 2026-12-01), which
// the tests print and docs/parity.md lists.
/// AdamW parameters after each of 6 steps (|p| < 2.7), max abs error (measured 3.6e-7).
const ADAMW_ABS: f64 = 1e-6;
/// Learning rate of every step, |ours − transformers'| / peak (measured 1.7e-16: the same
/// formula, products in another order).
const SCHEDULE_REL: f64 = 1e-15;
/// Clipping: relative error of the total norm (measured 5.9e-8) and max abs error of the clipped
/// gradients (measured 0).
const CLIP_NORM_REL: f64 = 3e-7;
const CLIP_ABS: f64 = 1e-7;
/// Whole run of 20 steps: per-step loss (measured 3.3e-6, growing from 5e-8 at step 1) and
/// pre-clip grad norm (measured 1.8e-6), relative; final weights, max abs (measured 4.0e-7); the
/// training update `final − initial` of each tensor, relative (measured 1.2e-5).
const RUN_LOSS_REL: f64 = 1e-5;
const RUN_GRAD_NORM_REL: f64 = 1e-5;
const RUN_WEIGHT_ABS: f64 = 2e-6;
const RUN_UPDATE_REL: f64 = 5e-5;
/// The same with gradient accumulation (12 steps of batch 2 × accumulation 2), with
/// `LossNormalization::MicroBatchMean`: loss (measured 2.3e-6), grad norm (1.9e-6), weights
/// (4.9e-6: one q_proj element; Adam turns near-zero gradients into full-size steps), update
/// (1.2e-5).
const ACCUM_LOSS_REL: f64 = 1e-5;
const ACCUM_GRAD_NORM_REL: f64 = 1e-5;
const ACCUM_WEIGHT_ABS: f64 = 2e-5;
const ACCUM_UPDATE_REL: f64 = 5e-5;

fn max_abs(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs() as f64).fold(0.0, f64::max)
}

fn relative_error(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let diff: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let norm: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (diff / norm.max(1e-30)).sqrt()
}

/// Three parameters of the shapes the script uses (`w` [6, 5], `b` [7], `u` [3, 4]).
#[derive(Module, Debug)]
struct Toy<B: Backend> {
    w: Param<Tensor<B, 2>>,
    b: Param<Tensor<B, 1>>,
    u: Param<Tensor<B, 2>>,
}

const TOY: [&str; 3] = ["w", "b", "u"];

impl<B: Backend> Toy<B> {
    fn from_golden(golden: &Golden, prefix: &str) -> Self {
        let device = Default::default();
        let t2 = |k: &str| Tensor::<B, 2>::from_data(TensorData::new(golden.f32(&format!("{prefix}{k}")), golden.shape(&format!("{prefix}{k}"))), &device);
        let b = Tensor::<B, 1>::from_data(TensorData::new(golden.f32(&format!("{prefix}b")), golden.shape(&format!("{prefix}b"))), &device);
        Self { w: Param::from_tensor(t2("w")), b: Param::from_tensor(b), u: Param::from_tensor(t2("u")) }
    }

    fn values(&self) -> [Vec<f32>; 3] {
        [
            self.w.val().into_data().into_vec::<f32>().unwrap(),
            self.b.val().into_data().into_vec::<f32>().unwrap(),
            self.u.val().into_data().into_vec::<f32>().unwrap(),
        ]
    }
}

/// Golden gradients `{prefix}{w,b,u}` registered for `toy`'s parameters.
fn golden_grads(golden: &Golden, prefix: &str, toy: &Toy<B>) -> GradientsParams {
    let device = Default::default();
    let data = |k: &str| TensorData::new(golden.f32(&format!("{prefix}{k}")), golden.shape(&format!("{prefix}{k}")));
    let mut grads = GradientsParams::new();
    grads.register::<Inner, 2>(toy.w.id, Tensor::from_data(data("w"), &device));
    grads.register::<Inner, 1>(toy.b.id, Tensor::from_data(data("b"), &device));
    grads.register::<Inner, 2>(toy.u.id, Tensor::from_data(data("u"), &device));
    grads
}

/// Runs burn's AdamW over the golden gradients and learning rates; returns the parameters after
/// every step.
fn adamw_trajectory(golden: &Golden, config: burn::optim::AdamWConfig) -> Vec<[Vec<f32>; 3]> {
    let lrs: Vec<f64> = serde_json::from_value(golden.json["adamw"]["lrs"].clone()).unwrap();
    let mut toy = Toy::<B>::from_golden(golden, "adamw.init.");
    let mut optimizer = config.init::<B, Toy<B>>();
    let mut after = Vec::new();
    for (step, &lr) in lrs.iter().enumerate() {
        let grads = golden_grads(golden, &format!("adamw.grad.{step}."), &toy);
        toy = optimizer.step(lr, toy, grads);
        after.push(toy.values());
    }
    after
}

/// Max abs error of a trajectory against the golden `adamw.{tag}.{step}.*`, over all steps.
fn trajectory_error(golden: &Golden, trajectory: &[[Vec<f32>; 3]], tag: &str) -> f64 {
    let mut worst = 0.0f64;
    for (step, values) in trajectory.iter().enumerate() {
        for (k, value) in TOY.iter().zip(values) {
            worst = worst.max(max_abs(value, &golden.f32(&format!("adamw.{tag}.{step}.{k}"))));
        }
    }
    worst
}

#[test]
fn adamw_over_six_steps_matches_torch() {
    let golden = Golden::load("optimizer");
    let steps = golden.json["adamw"]["lrs"].as_array().unwrap().len();
    assert!(steps >= 5);
    let mut ours_wd0 = Vec::new();
    for (tag, weight_decay) in [("wd0", 0.0), ("wd0.1", 0.1)] {
        let trajectory = adamw_trajectory(&golden, pytorch_adamw(weight_decay));
        let error = trajectory_error(&golden, &trajectory, tag);
        println!("AdamW {tag}: max abs error over {steps} steps {error:.2e}");
        assert!(error < ADAMW_ABS, "AdamW {tag}: max abs error {error:.2e} over {steps} steps");
        if tag == "wd0" {
            ours_wd0 = trajectory;
        }
    }

    // The test can fail: a wrong optimizer misses the golden by far more than the tolerance.
    // burn with the betas swapped equals torch with the betas swapped...
    let swapped = adamw_trajectory(&golden, pytorch_adamw(0.0).with_beta_1(0.999).with_beta_2(0.9));
    let error = trajectory_error(&golden, &swapped, "swapped_betas");
    assert!(error < ADAMW_ABS, "swapped betas: burn vs torch {error:.2e}");
    // ...and is far from the real golden; so is AdamW without bias correction.
    let swapped_miss = trajectory_error(&golden, &swapped, "wd0");
    let last = steps - 1;
    let no_bias_correction: Vec<f32> = TOY.iter().flat_map(|k| golden.f32(&format!("adamw.no_bias_correction.{last}.{k}"))).collect();
    let ours_last: Vec<f32> = ours_wd0[last].concat();
    let bias_miss = max_abs(&ours_last, &no_bias_correction);
    println!("a wrong optimizer misses by: swapped betas {swapped_miss:.2e}, no bias correction {bias_miss:.2e}");
    assert!(swapped_miss > 100.0 * ADAMW_ABS && bias_miss > 100.0 * ADAMW_ABS, "{swapped_miss:.2e} {bias_miss:.2e}");
    // Weight decay shows in the parameters (so the wd0.1 comparison tests it).
    let decay_effect = trajectory_error(&golden, &ours_wd0, "wd0.1");
    assert!(decay_effect > 100.0 * ADAMW_ABS, "weight decay changes the parameters by {decay_effect:.2e} only");
}

#[test]
fn cosine_schedule_matches_transformers_every_step() {
    let golden = json(&fixtures().join("golden/train/schedule.json"));
    let peak = golden["peak_lr"].as_f64().unwrap();
    let ratio = golden["warmup_ratio"].as_f64().unwrap();
    let mut worst = 0.0f64;
    let cases = golden["cases"].as_array().unwrap();
    for case in cases {
        let total = case["total"].as_u64().unwrap() as usize;
        let warmup = case["warmup"].as_u64().unwrap() as usize;
        let schedule = if case["warmup_from"] == "explicit" {
            CosineWithWarmup { peak_lr: peak, warmup_steps: warmup, total_steps: total }
        } else {
            // The trainer's own rule for a ratio: the Trainer's `get_warmup_steps`.
            let schedule = CosineWithWarmup::with_ratio(peak, total, ratio);
            assert_eq!(schedule.warmup_steps, warmup, "warmup steps for {total} steps at ratio {ratio}");
            schedule
        };
        let expected: Vec<f64> = serde_json::from_value(case["lrs"].clone()).unwrap();
        assert_eq!(expected.len(), total);
        for (step, want) in expected.iter().enumerate() {
            let error = (schedule.lr(step) - want).abs() / peak;
            worst = worst.max(error);
            assert!(error <= SCHEDULE_REL, "total {total}, warmup {warmup}, step {step}: {} vs {want}", schedule.lr(step));
        }
    }
    println!("schedule: {} cases, worst |lr − transformers| / peak {worst:.2e}", cases.len());
}

#[test]
fn global_grad_norm_clipping_matches_torch() {
    let golden = Golden::load("optimizer");
    for case in ["above", "below"] {
        let toy = Toy::<B>::from_golden(&golden, &format!("clip.{case}.grad."));
        let mut grads = golden_grads(&golden, &format!("clip.{case}.grad."), &toy);
        let norm = clip_grad_norm::<B, Toy<B>>(&toy, &mut grads, 1.0);
        let expected_norm = golden.f32(&format!("clip.{case}.total_norm"))[0] as f64;
        let norm_error = (norm - expected_norm).abs() / expected_norm;
        let mut worst = 0.0f64;
        let clipped = [
            grads.get::<Inner, 2>(toy.w.id).unwrap().into_data().into_vec::<f32>().unwrap(),
            grads.get::<Inner, 1>(toy.b.id).unwrap().into_data().into_vec::<f32>().unwrap(),
            grads.get::<Inner, 2>(toy.u.id).unwrap().into_data().into_vec::<f32>().unwrap(),
        ];
        for (k, ours) in TOY.iter().zip(&clipped) {
            let expected = golden.f32(&format!("clip.{case}.clipped.{k}"));
            worst = worst.max(max_abs(ours, &expected));
            if case == "below" {
                assert_eq!(ours, &golden.f32(&format!("clip.{case}.grad.{k}")), "a norm below the bound leaves {k} untouched");
                assert_eq!(ours, &expected);
            }
        }
        println!(
            "clip {case}: total norm {norm:.6} vs torch {expected_norm:.6} (relative error {norm_error:.2e}), clipped gradients max abs error {worst:.2e}"
        );
        assert!(norm_error < CLIP_NORM_REL, "clip {case}: norm {norm} vs {expected_norm}");
        assert!(worst < CLIP_ABS, "clip {case}: gradients max abs error {worst:.2e}");
    }
    let above = golden.f32("clip.above.total_norm")[0];
    assert!(above > 1.5, "the clipped case clips substantially (norm {above})");
}

/// The conversations of the golden run in the order the HF Trainer drew them: the trainer's
/// `k`-th request gets the golden order's `k`-th example (interlace shuffles with its own RNG,
/// which PyTorch's sampler cannot reproduce). The indices the trainer asked for are kept.
struct GoldenOrder<'a> {
    data: &'a ConversationDataset<Qwen3VlProcessor>,
    order: Vec<usize>,
    served: AtomicUsize,
    asked: Mutex<Vec<usize>>,
}

impl ExampleSource for GoldenOrder<'_> {
    type Input = Qwen3VlInput;

    fn len(&self) -> usize {
        self.data.len()
    }

    fn example(&self, index: usize) -> Result<TrainingExample<Qwen3VlInput>, TrainError> {
        self.asked.lock().unwrap().push(index);
        let k = self.served.fetch_add(1, Ordering::SeqCst);
        self.data.example(self.order[k])
    }
}

/// Worst errors of one interlace run against a golden Trainer run.
#[derive(Debug, Default)]
struct RunErrors {
    loss: f64,
    grad_norm: f64,
    lr: f64,
    weights: f64,
    update: f64,
}

/// Trains tiny-b as the golden `name` was trained, in the golden's data order, with
/// `normalization`; returns the worst relative errors of the per-step loss, grad norm and lr,
/// the final weights' max abs error and the updates' relative error.
fn run_like_golden(name: &str, normalization: LossNormalization) -> RunErrors {
    let golden = Golden::load(name);
    let run = &golden.json["config"];
    let config = TrainConfig {
        epochs: run["epochs"].as_u64().unwrap() as usize,
        lr: run["lr"].as_f64().unwrap(),
        warmup_ratio: run["warmup_ratio"].as_f64().unwrap(),
        weight_decay: run["weight_decay"].as_f64().unwrap() as f32,
        max_grad_norm: run["max_grad_norm"].as_f64().unwrap(),
        batch_size: run["batch_size"].as_u64().unwrap() as usize,
        grad_accum: run["grad_accum"].as_u64().unwrap() as usize,
        loss_normalization: normalization,
        seed: run["seed"].as_u64().unwrap(),
        ..TrainConfig::default()
    };
    assert_eq!(golden.json["trainer"]["model_accepts_loss_kwargs"], false, "the Trainer normalised per micro-batch");
    let processor = Qwen3VlProcessor::from_dir(fixtures().join("models/tiny-b")).unwrap();
    let (data, skipped) = ConversationDataset::open(&fixtures().join(golden.json["data"].as_str().unwrap()), None, processor, 512).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    // Same examples as the Trainer got: token ids and assistant-only labels.
    for k in 0..data.len() {
        let example = data.example(k).unwrap();
        let ids: Vec<i64> = example.input.input_ids.iter().map(|&i| i as i64).collect();
        assert_eq!(ids, golden.i64(&format!("example.{k}.input_ids")), "example {k}: token ids");
        assert_eq!(example.labels, golden.i64(&format!("example.{k}.labels")), "example {k}: labels");
    }
    let order: Vec<usize> = serde_json::from_value(golden.json["order"].clone()).unwrap();
    let source = GoldenOrder { data: &data, order, served: AtomicUsize::new(0), asked: Mutex::new(Vec::new()) };

    let plan: Plan = serde_json::from_value(golden.json["plan"].clone()).unwrap();
    let model = Qwen3VlForConditionalGeneration::<B>::from_pretrained(fixtures().join("models/tiny-b"), &Default::default(), DType::F32).unwrap();
    let model = model.remove_layers(&plan.drop_set().unwrap()).unwrap();
    let layers = model.num_layers();
    let model = model.set_trainable_layers(&LayerSet::new(plan.finetune_after_pruning(), layers).unwrap()).unwrap();
    let initial: HashMap<String, Vec<f32>> = trainable_tensors(&model).into_iter().map(|(n, d)| (n, d.into_vec::<f32>().unwrap())).collect();

    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let mut logs: Vec<StepLog> = Vec::new();
    let (trained, report) = train(model, &source, &config, dir.path(), false, |s| logs.push(s.clone())).unwrap();
    println!("{name}, {normalization:?}: {} steps in {:.1} s", logs.len(), started.elapsed().as_secs_f64());

    let expected = golden.json["steps"].as_array().unwrap();
    assert_eq!(report.total_steps, golden.json["total_steps"].as_u64().unwrap() as usize, "total steps as the Trainer counts them");
    assert_eq!(logs.len(), expected.len());
    let tokens: Vec<usize> = serde_json::from_value(golden.json["supervised_tokens"].clone()).unwrap();
    let per_step = config.examples_per_step();
    let mut worst = RunErrors::default();
    for (k, (ours, want)) in logs.iter().zip(expected).enumerate() {
        let want_loss = want["loss"].as_f64().unwrap();
        let want_norm = want["grad_norm"].as_f64().unwrap();
        let want_lr = want["lr"].as_f64().unwrap();
        let loss_error = (ours.loss - want_loss).abs() / want_loss;
        let norm_error = (ours.grad_norm - want_norm).abs() / want_norm;
        let lr_error = (ours.lr - want_lr).abs() / config.lr;
        println!(
            "step {:2}: loss {:.6} vs {want_loss:.6} ({loss_error:.1e}), grad norm {:.5} vs {want_norm:.5} ({norm_error:.1e}), lr {:.4e}",
            ours.step, ours.loss, ours.grad_norm, ours.lr
        );
        let batch = &source.order[k * per_step..(k + 1) * per_step];
        assert_eq!(ours.tokens, batch.iter().map(|&i| tokens[i]).sum::<usize>(), "step {}: supervised tokens", ours.step);
        worst.loss = worst.loss.max(loss_error);
        worst.grad_norm = worst.grad_norm.max(norm_error);
        worst.lr = worst.lr.max(lr_error);
    }

    let finals = trainable_tensors(&trained);
    assert_eq!(finals.len(), golden.names_with_prefix("final.").len(), "exactly the fine-tune layer is trained");
    for (name, data) in finals {
        let ours = data.into_vec::<f32>().unwrap();
        let want = golden.f32(&format!("final.{name}"));
        let start = &initial[&name];
        let ours_update: Vec<f32> = ours.iter().zip(start).map(|(a, b)| a - b).collect();
        let want_update: Vec<f32> = want.iter().zip(start).map(|(a, b)| a - b).collect();
        let (weight_error, update_error) = (max_abs(&ours, &want), relative_error(&ours_update, &want_update));
        println!("{name}: final weights max abs error {weight_error:.2e}, update relative error {update_error:.2e}");
        worst.weights = worst.weights.max(weight_error);
        worst.update = worst.update.max(update_error);
    }
    println!(
        "{name}, {normalization:?}, worst: loss {:.2e} rel, grad norm {:.2e} rel, lr {:.2e}, weights {:.2e} abs, update {:.2e} rel",
        worst.loss, worst.grad_norm, worst.lr, worst.weights, worst.update
    );
    // interlace's own data order still covers every example once per epoch.
    let asked = source.asked.into_inner().unwrap();
    for epoch in asked.chunks(data.len()) {
        let mut seen = epoch.to_vec();
        seen.sort();
        assert_eq!(seen, (0..data.len()).collect::<Vec<_>>());
    }
    worst
}

fn assert_matches(worst: &RunErrors, (loss, grad_norm, weights, update): (f64, f64, f64, f64)) {
    assert!(worst.loss < loss, "loss relative error {:.2e}", worst.loss);
    assert!(worst.grad_norm < grad_norm, "grad norm relative error {:.2e}", worst.grad_norm);
    assert!(worst.lr <= SCHEDULE_REL, "lr error {:.2e}", worst.lr);
    assert!(worst.weights < weights, "final weights max abs error {:.2e}", worst.weights);
    assert!(worst.update < update, "update relative error {:.2e}", worst.update);
}

#[test]
fn whole_run_matches_the_transformers_trainer() {
    // Without accumulation both normalisations are the token mean of the micro-batch.
    let worst = run_like_golden("run", LossNormalization::default());
    assert_matches(&worst, (RUN_LOSS_REL, RUN_GRAD_NORM_REL, RUN_WEIGHT_ABS, RUN_UPDATE_REL));
}

#[test]
fn accumulated_run_matches_the_trainer_only_with_micro_batch_normalisation() {
    // The Trainer with a Qwen-VL model (accepts_loss_kwargs = False): each micro-batch's token
    // mean over the accumulation steps.
    let worst = run_like_golden("run_accum", LossNormalization::MicroBatchMean);
    assert_matches(&worst, (ACCUM_LOSS_REL, ACCUM_GRAD_NORM_REL, ACCUM_WEIGHT_ABS, ACCUM_UPDATE_REL));
    // The test can fail: the token mean over the whole step is another training.
    let other = run_like_golden("run_accum", LossNormalization::StepTokens);
    assert!(
        other.loss > 100.0 * ACCUM_LOSS_REL && other.update > 10.0 * ACCUM_UPDATE_REL,
        "step-token normalisation misses the Trainer by loss {:.2e}, update {:.2e} only",
        other.loss,
        other.update
    );
}
