//! The adaptation loop: shuffled epochs, gradient accumulation (loss normalised per micro-batch
//! like the HF Trainer, or over the step's tokens), global-norm clipping, AdamW with a cosine
//! schedule, checkpoints, resume and a JSONL log.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, GradientsAccumulator, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use interlace_core::LayerwiseForward;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, CheckpointState};
use crate::data::{ExampleSource, TrainingExample};
use crate::gradients::{example_gradients, Backward};
use crate::params::{replace_tensors, trainable_tensors};
use crate::replica::Replica;
use crate::{clip_grad_norm, pytorch_adamw, CosineWithWarmup, TrainError};

/// How the losses of an optimizer step's conversations are weighted into its gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum LossNormalization {
    /// The official training's (transformers `Trainer` with a Qwen-VL model, which sets
    /// `accepts_loss_kwargs = False`): each micro-batch's loss is the mean over its own
    /// supervised tokens, divided by the number of micro-batches of the step on all devices
    /// (gradient accumulation steps × devices; fewer in an epoch's short last step). A
    /// conversation `i` of micro-batch `m` weighs `tokens_i / tokens_m / micro_batches`.
    #[default]
    #[serde(rename = "micro-batch")]
    MicroBatchMean,
    /// The token mean over the whole step: every conversation weighs `tokens_i / step_tokens`
    /// over all micro-batches and devices (transformers' `num_items_in_batch` semantics, used
    /// by models that accept loss kwargs). Independent of how the step is split.
    #[serde(rename = "step-tokens")]
    StepTokens,
}

impl LossNormalization {
    /// The name used on the command line, in checkpoints and in serialised configs
    /// (`micro-batch`, `step-tokens`).
    pub fn name(self) -> &'static str {
        match self {
            Self::MicroBatchMean => "micro-batch",
            Self::StepTokens => "step-tokens",
        }
    }
}

/// Hyper-parameters of one adaptation run. Defaults are the paper's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the data (1).
    pub epochs: usize,
    /// Peak learning rate (1e-5).
    pub lr: f64,
    /// Fraction of steps of linear warmup (0.03).
    pub warmup_ratio: f64,
    /// AdamW decoupled weight decay (0).
    pub weight_decay: f32,
    /// Global gradient-norm bound (1.0).
    pub max_grad_norm: f64,
    /// Conversations per micro-batch (1).
    pub batch_size: usize,
    /// Micro-batches per optimizer step (1).
    pub grad_accum: usize,
    /// How conversation losses are weighted ([`LossNormalization::MicroBatchMean`], the
    /// official training's).
    #[serde(default)]
    pub loss_normalization: LossNormalization,
    /// Seed of the data order.
    pub seed: u64,
    /// Save a checkpoint every this many optimizer steps (0: only at the end).
    pub checkpoint_every: usize,
    /// Checkpoints kept on disk.
    pub keep_checkpoints: usize,
    /// Stop after this many optimizer steps of this invocation (a deliberate interruption, for
    /// tests and time-boxed jobs); `None` runs to the end.
    pub stop_after: Option<usize>,
    /// Activation checkpointing: keep only each layer's input during the forward pass and
    /// recompute the layer in the backward pass (less memory for long sequences, about one
    /// more forward pass of compute). Trains decoder layers only, not the embeddings or
    /// encoders.
    #[serde(default)]
    pub activation_checkpointing: bool,
    /// Supervised positions whose logits are computed and back-propagated at once, with or
    /// without activation checkpointing (256: 156 MB of f32 logits at Qwen's 151,936-word
    /// vocabulary; at 2,048 tokens 256 rows measured less memory and a faster step than 1,024).
    #[serde(default = "default_head_chunk_rows")]
    pub head_chunk_rows: usize,
    /// Settings outside the trainer that shape the run (the pipeline puts the data file's
    /// SHA-256, the maximum length, pixel limits, tune switches, plan and dtype here). They are
    /// recorded in every checkpoint with the trainer's own settings, and `resume` refuses a
    /// checkpoint whose recorded settings differ in any of them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub run_settings: BTreeMap<String, serde_json::Value>,
}

fn default_head_chunk_rows() -> usize {
    256
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 1,
            lr: 1e-5,
            warmup_ratio: 0.03,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            batch_size: 1,
            grad_accum: 1,
            loss_normalization: LossNormalization::default(),
            seed: 42,
            checkpoint_every: 0,
            keep_checkpoints: 2,
            stop_after: None,
            activation_checkpointing: false,
            head_chunk_rows: default_head_chunk_rows(),
            run_settings: BTreeMap::new(),
        }
    }
}

impl TrainConfig {
    /// How the backward pass gets its activations.
    pub fn backward(&self) -> Backward {
        match self.activation_checkpointing {
            true => Backward::Recompute { head_chunk_rows: self.head_chunk_rows.max(1) },
            false => Backward::KeepActivations { head_chunk_rows: self.head_chunk_rows.max(1) },
        }
    }

    /// Conversations per optimizer step on one device.
    pub fn examples_per_step(&self) -> usize {
        self.batch_size.max(1) * self.grad_accum.max(1)
    }

    /// Optimizer steps of a run over `n` examples on `devices` data-parallel devices (each
    /// step takes [`Self::examples_per_step`] conversations per device).
    pub fn total_steps(&self, n: usize, devices: usize) -> usize {
        self.epochs * n.div_ceil(self.examples_per_step() * devices.max(1))
    }

    /// Everything a run's trajectory depends on, by name, as recorded in each checkpoint:
    /// the optimizer, schedule and batching settings, the seed, the number of devices and
    /// optimizer steps, and [`Self::run_settings`]. Settings that change neither the data order
    /// nor the arithmetic (checkpoint frequency, activation checkpointing, `stop_after`) are
    /// left out, so a resumed run may change them.
    pub fn resume_settings(&self, devices: usize, total_steps: usize) -> BTreeMap<String, serde_json::Value> {
        let mut settings: BTreeMap<String, serde_json::Value> = self.run_settings.clone();
        let own = [
            ("epochs", serde_json::json!(self.epochs)),
            ("lr", serde_json::json!(self.lr)),
            ("warmup_ratio", serde_json::json!(self.warmup_ratio)),
            ("weight_decay", serde_json::json!(self.weight_decay)),
            ("max_grad_norm", serde_json::json!(self.max_grad_norm)),
            ("batch_size", serde_json::json!(self.batch_size)),
            ("grad_accum", serde_json::json!(self.grad_accum)),
            ("loss_normalization", serde_json::json!(self.loss_normalization.name())),
            ("seed", serde_json::json!(self.seed)),
            ("devices", serde_json::json!(devices)),
            ("total_steps", serde_json::json!(total_steps)),
        ];
        settings.extend(own.into_iter().map(|(k, v)| (k.to_string(), v)));
        settings
    }

    fn validate(&self, n: usize) -> Result<(), TrainError> {
        let bad = |what: String| Err(TrainError::Config(what));
        if n == 0 {
            return bad("the dataset has no usable example".into());
        }
        if self.epochs == 0 || self.batch_size == 0 || self.grad_accum == 0 {
            return bad(format!("epochs ({}), batch size ({}) and gradient accumulation ({}) must be positive", self.epochs, self.batch_size, self.grad_accum));
        }
        // Written so that NaN fails every check.
        let lr_ok = self.lr > 0.0 && self.lr.is_finite();
        let clip_ok = self.max_grad_norm > 0.0;
        if !lr_ok || !(0.0..1.0).contains(&self.warmup_ratio) || !clip_ok {
            return bad(format!("lr {} must be > 0, warmup ratio {} in [0, 1), max grad norm {} > 0", self.lr, self.warmup_ratio, self.max_grad_norm));
        }
        Ok(())
    }
}

/// One line of `log.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    /// Optimizer step (1-based: the number of steps done after it).
    pub step: usize,
    /// Epoch (0-based).
    pub epoch: usize,
    /// Loss of the step, weighted as the gradient is ([`TrainConfig::loss_normalization`]):
    /// with `MicroBatchMean` the mean of the micro-batches' token-mean losses (what the HF
    /// Trainer logs), with `StepTokens` the token mean over the step.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Supervised tokens in the step.
    pub tokens: usize,
    /// Tokens fed to the model in the step (prompt and answer).
    pub input_tokens: usize,
    /// Wall time of the step.
    pub seconds: f64,
    /// Examples of the step that could not be built (their errors are in `skipped`).
    pub skipped: Vec<String>,
}

/// Summary of a finished (or stopped) run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Optimizer steps completed in total (including those before a resume).
    pub steps: usize,
    /// Steps of the whole run.
    pub total_steps: usize,
    /// Loss of the last step.
    pub final_loss: f64,
    /// Step the run resumed from, if it did.
    pub resumed_from: Option<usize>,
    /// True when `stop_after` ended the run early.
    pub stopped_early: bool,
}

/// Position of optimizer step `step` in the data: its epoch and the examples of all replicas
/// together (see [`replica_micro_batches`] for each replica's share).
fn step_examples(config: &TrainConfig, n: usize, world: usize, step: usize) -> (usize, Vec<usize>) {
    let per_step = config.examples_per_step() * world;
    let per_epoch = n.div_ceil(per_step);
    let epoch = step / per_epoch;
    let mut order: Vec<usize> = (0..n).collect();
    // The order is a pure function of (seed, epoch): resuming needs no RNG state.
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed.wrapping_add(epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    order.shuffle(&mut rng);
    let start = (step % per_epoch) * per_step;
    let end = (start + per_step).min(n);
    (epoch, order[start..end].to_vec())
}

/// Replica `rank`'s micro-batches of a step's `indices`: the step is cut into micro-batches of
/// `batch_size` consecutive conversations (the last one may be shorter) and replica `r` of
/// `world` takes micro-batches `r`, `r + world`, ... (accelerate's `BatchSamplerShard`), so a
/// data-parallel step has the micro-batches of one device with `world`-times the accumulation.
fn replica_micro_batches(indices: &[usize], batch_size: usize, rank: usize, world: usize) -> Vec<Vec<usize>> {
    indices.chunks(batch_size.max(1)).skip(rank).step_by(world.max(1)).map(<[usize]>::to_vec).collect()
}

/// Trains `model`'s trainable parameters (as marked by
/// [`interlace_core::DecoderStack::set_trainable_layers`]) on `data`, on the device the model
/// is on.
///
/// With `resume`, the latest checkpoint under `run_dir/checkpoints` is restored first and the
/// run continues from its step; the result is identical to an uninterrupted run. Every step is
/// appended to `run_dir/log.jsonl` and passed to `on_step`.
pub fn train<B, M, S>(
    model: M,
    data: &S,
    config: &TrainConfig,
    run_dir: &Path,
    resume: bool,
    mut on_step: impl FnMut(&StepLog),
) -> Result<(M, TrainReport), TrainError>
where
    B: AutodiffBackend,
    M: LayerwiseForward<B, Input = S::Input> + AutodiffModule<B>,
    M::Error: std::error::Error + Send + Sync + 'static,
    S: ExampleSource,
{
    let device = model.devices().into_iter().next().ok_or_else(|| TrainError::Config("the model has no device".into()))?;
    run_replica(model, data, config, run_dir, resume, &Replica::alone(device), &mut on_step)
}

/// Serialises data-parallel runs: burn's collective keeps one registry of peers per backend
/// and process, so two runs at once would mix their peers.
static COLLECTIVE_RUN: Mutex<()> = Mutex::new(());

/// [`train`] on several devices at once (data parallelism through `burn::collective`).
///
/// Each device holds a replica of `model` and, at every optimizer step, works through its share
/// of the step's `batch_size × grad_accum × devices` conversations (like the per-device batch
/// of transformers' Trainer); the gradients are summed with burn's all-reduce, and every
/// replica applies the same update. The result equals a single-device run with a
/// `devices`-times larger gradient accumulation, up to floating-point summation order. Replica
/// 0 (on `devices[0]`) writes the log and checkpoints, calls `on_step` and is returned.
///
/// Runs are serialised within a process. One device falls back to [`train`].
pub fn train_data_parallel<B, M, S>(
    model: M,
    data: &S,
    config: &TrainConfig,
    devices: &[B::Device],
    run_dir: &Path,
    resume: bool,
    mut on_step: impl FnMut(&StepLog),
) -> Result<(M, TrainReport), TrainError>
where
    B: AutodiffBackend,
    M: LayerwiseForward<B, Input = S::Input> + AutodiffModule<B> + Send,
    M::Error: std::error::Error + Send + Sync + 'static,
    S: ExampleSource + Sync,
{
    match devices {
        [] => return Err(TrainError::Config("no device to train on".into())),
        [device] => return run_replica(model.fork(device), data, config, run_dir, resume, &Replica::alone(device.clone()), &mut on_step),
        _ => {}
    }
    // Lazily initialised parameters would be drawn separately by each replica.
    model.visit(&mut Materialize);
    let _one_run_at_a_time = COLLECTIVE_RUN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    burn::collective::reset_collective::<B::InnerBackend>();
    let world = devices.len();
    std::thread::scope(|scope| {
        let peers: Vec<_> = devices[1..]
            .iter()
            .enumerate()
            .map(|(i, device)| {
                let replica = Replica { rank: i + 1, world, device: device.clone() };
                let model = model.clone().fork(device);
                scope.spawn(move || run_replica(model, data, config, run_dir, resume, &replica, &mut |_: &StepLog| {}).map(|_| ()))
            })
            .collect();
        let leader = Replica { rank: 0, world, device: devices[0].clone() };
        let result = run_replica(model.fork(&devices[0]), data, config, run_dir, resume, &leader, &mut on_step);
        let mut errors: Vec<TrainError> = Vec::new();
        for (rank, peer) in peers.into_iter().enumerate() {
            let outcome = peer.join().unwrap_or_else(|_| Err(TrainError::Collective(format!("replica {} panicked", rank + 1))));
            errors.extend(outcome.err());
        }
        match result {
            Ok(done) if errors.is_empty() => Ok(done),
            Ok(_) => Err(root_cause(errors)),
            Err(error) => Err(root_cause(std::iter::once(error).chain(errors).collect())),
        }
    })
}

/// The error that explains a failed data-parallel step: the replica's own failure rather than
/// another's "a replica stopped".
fn root_cause(errors: Vec<TrainError>) -> TrainError {
    let first_real = errors.iter().position(|e| !matches!(e, TrainError::Collective(_))).unwrap_or(0);
    errors.into_iter().nth(first_real).expect("at least one error")
}

/// Forces lazily initialised parameters to take their values.
struct Materialize;

impl<B: burn::prelude::Backend> burn::module::ModuleVisitor<B> for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<burn::prelude::Tensor<B, D>>) {
        let _ = param.val();
    }
}

/// The training loop of one replica (the only one of a single-device run).
fn run_replica<B, M, S>(
    model: M,
    data: &S,
    config: &TrainConfig,
    run_dir: &Path,
    resume: bool,
    replica: &Replica<B::Device>,
    on_step: &mut dyn FnMut(&StepLog),
) -> Result<(M, TrainReport), TrainError>
where
    B: AutodiffBackend,
    M: LayerwiseForward<B, Input = S::Input> + AutodiffModule<B>,
    M::Error: std::error::Error + Send + Sync + 'static,
    S: ExampleSource,
{
    config.validate(data.len())?;
    replica.register::<B::InnerBackend>()?;
    let outcome = replica_steps(model, data, config, run_dir, resume, replica, on_step);
    let left = replica.finish::<B::InnerBackend>();
    let done = outcome?;
    left?;
    Ok(done)
}

fn replica_steps<B, M, S>(
    model: M,
    data: &S,
    config: &TrainConfig,
    run_dir: &Path,
    resume: bool,
    replica: &Replica<B::Device>,
    on_step: &mut dyn FnMut(&StepLog),
) -> Result<(M, TrainReport), TrainError>
where
    B: AutodiffBackend,
    M: LayerwiseForward<B, Input = S::Input> + AutodiffModule<B>,
    M::Error: std::error::Error + Send + Sync + 'static,
    S: ExampleSource,
{
    let total_steps = config.total_steps(data.len(), replica.world);
    let schedule = CosineWithWarmup::with_ratio(config.lr, total_steps, config.warmup_ratio);
    let checkpoints = run_dir.join("checkpoints");
    let opened = open_run(model, config, &checkpoints, run_dir, resume, replica, total_steps);
    // Every replica must start, or none: one that stopped here would leave the others waiting
    // in the first all-reduce.
    let failed = replica.sum_values::<B::InnerBackend>(&[opened.is_err() as u8 as f64])?;
    let OpenedRun { mut model, mut optimizer, start, resumed_from, mut log } = opened?;
    if failed[0] > 0.0 {
        return Err(TrainError::Collective("another replica could not start (its error is reported too)".into()));
    }
    let mut report = TrainReport { steps: start, total_steps, final_loss: f64::NAN, resumed_from, stopped_early: false };
    // A leader that failed to write keeps going for one more exchange to tell its peers, so
    // none of them waits forever in an all-reduce.
    let mut leader_failure: Option<TrainError> = None;
    for step in start..total_steps {
        if config.stop_after.is_some_and(|limit| step - start >= limit) {
            report.stopped_early = true;
            break;
        }
        let started = Instant::now();
        let (epoch, indices) = step_examples(config, data.len(), replica.world, step);
        let mut skipped = Vec::new();
        let micro_batches: Vec<Vec<TrainingExample<S::Input>>> = replica_micro_batches(&indices, config.batch_size, replica.rank, replica.world)
            .iter()
            .map(|batch| {
                let (examples, unusable) = build_examples(data, batch);
                skipped.extend(unusable);
                examples
            })
            .collect();
        let micro_tokens: Vec<usize> = micro_batches.iter().map(|b| b.iter().map(|e| e.supervised_tokens()).sum()).collect();
        let local_tokens: usize = micro_tokens.iter().sum();
        let local_batches = micro_tokens.iter().filter(|&&t| t > 0).count();
        let agreed = replica.sum_values::<B::InnerBackend>(&[local_tokens as f64, local_batches as f64, leader_failure.is_some() as u8 as f64])?;
        if let Some(error) = leader_failure.take() {
            return Err(error);
        }
        if agreed[2] > 0.0 {
            return Err(TrainError::Collective("replica 0 failed to write the log or a checkpoint".into()));
        }
        let tokens = agreed[0].round() as usize;
        let step_batches = agreed[1].round() as usize;
        if tokens == 0 {
            return Err(TrainError::Data(format!("optimizer step {} has no usable example: {skipped:?}", step + 1)));
        }
        let weighted: Vec<(&TrainingExample<S::Input>, f64)> = micro_batches
            .iter()
            .zip(&micro_tokens)
            .flat_map(|(batch, &batch_tokens)| {
                batch.iter().map(move |example| {
                    let share = example.supervised_tokens() as f64;
                    let weight = match config.loss_normalization {
                        LossNormalization::MicroBatchMean => share / batch_tokens as f64 / step_batches as f64,
                        LossNormalization::StepTokens => share / tokens as f64,
                    };
                    (example, weight)
                })
            })
            .collect();
        let local = catch_unwind(AssertUnwindSafe(|| accumulate_step::<B, M, S>(&model, &weighted, config.backward())))
            .unwrap_or_else(|panic| Err(TrainError::Model(format!("the forward or backward pass panicked: {}", panic_message(&*panic)).into())));
        let (grads, loss, input_tokens, failure) = match local {
            Ok((grads, loss, input_tokens)) => (Some(grads), loss, input_tokens, None),
            Err(error) => (None, 0.0, 0, Some(error)),
        };
        let totals = replica.sum_values::<B::InnerBackend>(&[loss, input_tokens as f64, failure.is_some() as u8 as f64])?;
        if let Some(error) = failure {
            return Err(error);
        }
        if totals[2] > 0.0 {
            return Err(TrainError::Collective("another replica failed this step".into()));
        }
        let mut grads = replica.sum_gradients::<B, M>(&model, grads.expect("no failure, so gradients"))?;
        let loss = if replica.world == 1 { loss } else { totals[0] };
        let grad_norm = clip_grad_norm::<B, M>(&model, &mut grads, config.max_grad_norm);
        for (what, value) in [("loss", loss), ("gradient norm", grad_norm)] {
            if !value.is_finite() {
                return Err(TrainError::NonFinite { what, step: step + 1, value });
            }
        }
        let lr = schedule.lr(step);
        model = optimizer.step(lr, model, grads);
        let entry = StepLog {
            step: step + 1,
            epoch,
            loss,
            lr,
            grad_norm,
            tokens,
            input_tokens: totals[1].round() as usize,
            seconds: started.elapsed().as_secs_f64(),
            skipped,
        };
        report.steps = step + 1;
        report.final_loss = entry.loss;
        if let Some(log) = log.as_mut() {
            let written = record_step(log, &entry, &checkpoints, config, (replica.world, total_steps), &model, &optimizer);
            on_step(&entry);
            if let Err(error) = written {
                leader_failure = Some(error);
            }
        }
    }
    match leader_failure {
        Some(error) => Err(error),
        None => Ok((model, report)),
    }
}

/// A replica ready for its first step: the (restored) model and optimizer, where to start and,
/// on the leader, the open log.
struct OpenedRun<M, O> {
    model: M,
    optimizer: O,
    start: usize,
    resumed_from: Option<usize>,
    log: Option<std::fs::File>,
}

fn open_run<B, M>(
    model: M,
    config: &TrainConfig,
    checkpoints: &Path,
    run_dir: &Path,
    resume: bool,
    replica: &Replica<B::Device>,
    total_steps: usize,
) -> Result<OpenedRun<M, OptimizerAdaptor<AdamW, M, B>>, TrainError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
{
    let mut opened = OpenedRun { model, optimizer: pytorch_adamw(config.weight_decay).init::<B, M>(), start: 0, resumed_from: None, log: None };
    if let Some(&step) = checkpoint::list(checkpoints).last().filter(|_| resume) {
        let loaded = checkpoint::load::<_, B>(checkpoints, step, &replica.device)?;
        let now = config.resume_settings(replica.world, total_steps);
        let at = checkpoints.join(format!("step-{step}"));
        let Some(recorded) = &loaded.state.settings else {
            return Err(TrainError::Checkpoint(format!(
                "{} records no training settings (written by an older interlace), so resuming from it cannot be checked; start afresh without --resume",
                at.display()
            )));
        };
        let differences = checkpoint::differences(recorded, &now);
        if !differences.is_empty() {
            return Err(TrainError::ResumeMismatch { checkpoint: at, differences });
        }
        let (restored, unmatched) = replace_tensors(opened.model, loaded.trainable);
        if !unmatched.is_empty() {
            return Err(TrainError::Checkpoint(format!("checkpoint tensors match no trainable parameter: {unmatched:?}")));
        }
        opened.model = restored;
        opened.optimizer = opened.optimizer.load_record(loaded.optimizer);
        opened.start = step;
        opened.resumed_from = Some(step);
    }
    if replica.is_leader() {
        std::fs::create_dir_all(run_dir).map_err(|e| TrainError::Checkpoint(format!("{}: {e}", run_dir.display())))?;
        opened.log = Some(open_log(&run_dir.join("log.jsonl"), opened.start)?);
    }
    Ok(opened)
}

/// The leader's bookkeeping after a step: the log line and, when due, a checkpoint.
fn record_step<B, M, O>(
    log: &mut std::fs::File,
    entry: &StepLog,
    checkpoints: &Path,
    config: &TrainConfig,
    (world, total_steps): (usize, usize),
    model: &M,
    optimizer: &O,
) -> Result<(), TrainError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    writeln!(log, "{}", serde_json::to_string(entry).expect("log entry serialises")).map_err(|e| TrainError::Checkpoint(format!("log: {e}")))?;
    let due = config.checkpoint_every > 0 && entry.step.is_multiple_of(config.checkpoint_every);
    if due || entry.step == total_steps {
        let settings = Some(config.resume_settings(world, total_steps));
        let state = CheckpointState { step: entry.step, total_steps, seed: config.seed, last_loss: entry.loss, settings };
        checkpoint::save::<_, B>(checkpoints, &state, &trainable_tensors(model), optimizer.to_record(), config.keep_checkpoints)?;
    }
    Ok(())
}

/// The examples at `indices`; those that cannot be built are reported, not fatal.
fn build_examples<S: ExampleSource>(data: &S, indices: &[usize]) -> (Vec<TrainingExample<S::Input>>, Vec<String>) {
    let mut examples = Vec::new();
    let mut skipped = Vec::new();
    for &index in indices {
        match data.example(index) {
            Ok(example) => examples.push(example),
            Err(error) => skipped.push(error.to_string()),
        }
    }
    (examples, skipped)
}

/// Forward and backward over this replica's examples of one optimizer step, each with the weight
/// of its mean token loss ([`LossNormalization`]), so the summed gradient is that of the step's
/// loss. Returns the gradients, the weighted loss and the number of input tokens.
fn accumulate_step<B, M, S>(model: &M, examples: &[(&TrainingExample<S::Input>, f64)], backward: Backward) -> Result<(GradientsParams, f64, usize), TrainError>
where
    B: AutodiffBackend,
    M: LayerwiseForward<B, Input = S::Input> + AutodiffModule<B>,
    M::Error: std::error::Error + Send + Sync + 'static,
    S: ExampleSource,
{
    let mut accumulator = GradientsAccumulator::<M>::new();
    let mut loss_sum = 0.0;
    let mut input_tokens = 0;
    for &(example, weight) in examples {
        let (grads, loss) = example_gradients(model, example, weight, backward)?;
        loss_sum += loss;
        input_tokens += example.labels.len();
        accumulator.accumulate(model, grads);
    }
    Ok((accumulator.grads(), loss_sum, input_tokens))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_else(|| "unknown panic".into())
}

/// Opens the step log for appending, dropping entries after `keep_through` (steps a killed run
/// logged after its last checkpoint, which the resumed run will redo).
fn open_log(path: &PathBuf, keep_through: usize) -> Result<std::fs::File, TrainError> {
    let io = |e: std::io::Error| TrainError::Checkpoint(format!("{}: {e}", path.display()));
    let kept: Vec<String> = match std::fs::read_to_string(path) {
        Ok(text) if keep_through > 0 => {
            text.lines().filter(|line| serde_json::from_str::<StepLog>(line).is_ok_and(|entry| entry.step <= keep_through)).map(str::to_string).collect()
        }
        _ => Vec::new(),
    };
    let mut file = std::fs::File::create(path).map_err(io)?;
    for line in kept {
        writeln!(file, "{line}").map_err(io)?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_is_seen_once_per_epoch() {
        let config = TrainConfig { epochs: 2, batch_size: 2, grad_accum: 2, ..TrainConfig::default() };
        assert_eq!(config.total_steps(10, 1), 6);
        let mut first: Vec<usize> = (0..3).flat_map(|s| step_examples(&config, 10, 1, s).1).collect();
        first.sort();
        assert_eq!(first, (0..10).collect::<Vec<_>>());
        assert_eq!(step_examples(&config, 10, 1, 3).0, 1);
        assert_eq!(step_examples(&config, 10, 1, 4), step_examples(&config, 10, 1, 4));
        assert_ne!(step_examples(&config, 10, 1, 0).1, step_examples(&config, 10, 1, 3).1);
    }

    #[test]
    fn replicas_share_a_step_in_turn() {
        let config = TrainConfig { batch_size: 2, ..TrainConfig::default() };
        assert_eq!(config.total_steps(10, 2), 3);
        let (_, step) = step_examples(&config, 10, 2, 0);
        assert_eq!(step.len(), 4);
        assert_eq!(step, step_examples(&TrainConfig { batch_size: 4, ..TrainConfig::default() }, 10, 1, 0).1);
        let (_, last) = step_examples(&config, 10, 2, 2);
        assert_eq!(last.len(), 2, "the last step takes what is left");
    }

    #[test]
    fn replicas_take_whole_micro_batches_in_turn() {
        let step: Vec<usize> = (10..17).collect();
        assert_eq!(replica_micro_batches(&step, 2, 0, 1), vec![vec![10, 11], vec![12, 13], vec![14, 15], vec![16]]);
        assert_eq!(replica_micro_batches(&step, 2, 0, 2), vec![vec![10, 11], vec![14, 15]]);
        assert_eq!(replica_micro_batches(&step, 2, 1, 2), vec![vec![12, 13], vec![16]]);
        assert_eq!(replica_micro_batches(&step, 1, 1, 3), vec![vec![11], vec![14]]);
        assert!(replica_micro_batches(&[3], 2, 1, 2).is_empty(), "a replica may have nothing in a short last step");
    }

    #[test]
    fn loss_normalization_is_recorded_for_resume() {
        let settings = TrainConfig::default().resume_settings(1, 4);
        assert_eq!(settings["loss_normalization"], "micro-batch");
        let other = TrainConfig { loss_normalization: LossNormalization::StepTokens, ..TrainConfig::default() }.resume_settings(1, 4);
        let differences = crate::checkpoint::differences(&settings, &other);
        assert_eq!(differences.len(), 1);
        assert_eq!(differences[0].field, "loss_normalization");
    }
}
