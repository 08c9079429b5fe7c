//! The adaptation loop: shuffled epochs, token-weighted gradient accumulation, global-norm
//! clipping, AdamW with a cosine schedule, checkpoints, resume and a JSONL log.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use interlace_core::{NoObserver, ObservedForward, TapPoint};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, CheckpointState};
use crate::data::ExampleSource;
use crate::loss::causal_lm_loss;
use crate::params::{replace_tensors, trainable_tensors};
use crate::{clip_grad_norm, pytorch_adamw, CosineWithWarmup, TrainError};

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
    /// Seed of the data order.
    pub seed: u64,
    /// Save a checkpoint every this many optimizer steps (0: only at the end).
    pub checkpoint_every: usize,
    /// Checkpoints kept on disk.
    pub keep_checkpoints: usize,
    /// Stop after this many optimizer steps of this invocation (a deliberate interruption, for
    /// tests and time-boxed jobs); `None` runs to the end.
    pub stop_after: Option<usize>,
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
            seed: 42,
            checkpoint_every: 0,
            keep_checkpoints: 2,
            stop_after: None,
        }
    }
}

impl TrainConfig {
    /// Conversations per optimizer step.
    pub fn examples_per_step(&self) -> usize {
        self.batch_size.max(1) * self.grad_accum.max(1)
    }

    /// Optimizer steps of a run over `n` examples.
    pub fn total_steps(&self, n: usize) -> usize {
        self.epochs * n.div_ceil(self.examples_per_step())
    }

    fn validate(&self, n: usize) -> Result<(), TrainError> {
        let bad = |what: String| Err(TrainError::Config(what));
        if n == 0 {
            return bad("the dataset has no usable example".into());
        }
        if self.epochs == 0 || self.batch_size == 0 || self.grad_accum == 0 {
            return bad(format!("epochs ({}), batch size ({}) and gradient accumulation ({}) must be positive", self.epochs, self.batch_size, self.grad_accum));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) || !(0.0..1.0).contains(&self.warmup_ratio) || !(self.max_grad_norm > 0.0) {
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
    /// Token-weighted mean loss of the step.
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

/// Position of optimizer step `step` in the data: which epoch and which examples.
fn step_examples(config: &TrainConfig, n: usize, step: usize) -> (usize, Vec<usize>) {
    let per_epoch = n.div_ceil(config.examples_per_step());
    let epoch = step / per_epoch;
    let mut order: Vec<usize> = (0..n).collect();
    // The order is a pure function of (seed, epoch): resuming needs no RNG state.
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed.wrapping_add(epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    order.shuffle(&mut rng);
    let start = (step % per_epoch) * config.examples_per_step();
    let end = (start + config.examples_per_step()).min(n);
    (epoch, order[start..end].to_vec())
}

/// Trains `model`'s trainable parameters (as marked by
/// [`interlace_core::DecoderStack::set_trainable_layers`]) on `data`.
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
    M: ObservedForward<B, Input = S::Input> + AutodiffModule<B>,
    M::Error: std::error::Error + Send + Sync + 'static,
    S: ExampleSource,
{
    config.validate(data.len())?;
    let total_steps = config.total_steps(data.len());
    let schedule = CosineWithWarmup::with_ratio(config.lr, total_steps, config.warmup_ratio);
    let checkpoints = run_dir.join("checkpoints");
    let mut optimizer = pytorch_adamw(config.weight_decay).init::<B, M>();
    let mut model = model;
    let mut start = 0;
    let mut resumed_from = None;
    if resume {
        if let Some(&step) = checkpoint::list(&checkpoints).last() {
            let device = model.devices().into_iter().next().ok_or_else(|| TrainError::Config("the model has no device".into()))?;
            let loaded = checkpoint::load::<_, B>(&checkpoints, step, &device)?;
            if loaded.state.total_steps != total_steps || loaded.state.seed != config.seed {
                return Err(TrainError::Config(format!(
                    "checkpoint {} was made for {} steps with seed {}, this run has {total_steps} steps and seed {}",
                    step, loaded.state.total_steps, loaded.state.seed, config.seed
                )));
            }
            let (restored, unmatched) = replace_tensors(model, loaded.trainable);
            if !unmatched.is_empty() {
                return Err(TrainError::Checkpoint(format!("checkpoint tensors match no trainable parameter: {unmatched:?}")));
            }
            model = restored;
            optimizer = optimizer.load_record(loaded.optimizer);
            start = step;
            resumed_from = Some(step);
        }
    }
    std::fs::create_dir_all(run_dir).map_err(|e| TrainError::Checkpoint(format!("{}: {e}", run_dir.display())))?;
    let mut log = open_log(&run_dir.join("log.jsonl"), start)?;
    let mut report = TrainReport { steps: start, total_steps, final_loss: f64::NAN, resumed_from, stopped_early: false };
    for step in start..total_steps {
        if config.stop_after.is_some_and(|limit| step - start >= limit) {
            report.stopped_early = true;
            break;
        }
        let started = Instant::now();
        let (epoch, indices) = step_examples(config, data.len(), step);
        let (grads, mut entry) = accumulate_step::<B, M, S>(&model, data, &indices)?;
        let mut grads = grads;
        let grad_norm = clip_grad_norm::<B, M>(&model, &mut grads, config.max_grad_norm);
        for (what, value) in [("loss", entry.loss), ("gradient norm", grad_norm)] {
            if !value.is_finite() {
                return Err(TrainError::NonFinite { what, step: step + 1, value });
            }
        }
        let lr = schedule.lr(step);
        model = optimizer.step(lr, model, grads);
        entry = StepLog { step: step + 1, epoch, lr, grad_norm, seconds: started.elapsed().as_secs_f64(), ..entry };
        writeln!(log, "{}", serde_json::to_string(&entry).expect("log entry serialises")).map_err(|e| TrainError::Checkpoint(format!("log: {e}")))?;
        on_step(&entry);
        report.steps = step + 1;
        report.final_loss = entry.loss;
        let due = config.checkpoint_every > 0 && (step + 1) % config.checkpoint_every == 0;
        if due || step + 1 == total_steps {
            let state = CheckpointState { step: step + 1, total_steps, seed: config.seed, last_loss: entry.loss };
            checkpoint::save::<_, B>(&checkpoints, &state, &trainable_tensors(&model), optimizer.to_record(), config.keep_checkpoints)?;
        }
    }
    Ok((model, report))
}

/// Forward and backward over the examples of one optimizer step. Each example's loss is
/// weighted by its share of the step's supervised tokens, so the step's gradient is that of the
/// token-mean loss over the whole batch (transformers' `num_items_in_batch` semantics).
fn accumulate_step<B, M, S>(model: &M, data: &S, indices: &[usize]) -> Result<(GradientsParams, StepLog), TrainError>
where
    B: AutodiffBackend,
    M: ObservedForward<B, Input = S::Input> + AutodiffModule<B>,
    M::Error: std::error::Error + Send + Sync + 'static,
    S: ExampleSource,
{
    let mut examples = Vec::new();
    let mut skipped = Vec::new();
    for &index in indices {
        match data.example(index) {
            Ok(example) => examples.push(example),
            Err(error) => skipped.push(error.to_string()),
        }
    }
    let tokens: usize = examples.iter().map(|e| e.supervised_tokens()).sum();
    if tokens == 0 {
        return Err(TrainError::Data(format!("an optimizer step has no usable example: {skipped:?}")));
    }
    let mut accumulator = GradientsAccumulator::<M>::new();
    let mut loss_sum = 0.0;
    let mut input_tokens = 0;
    for example in &examples {
        let logits = model.forward_observed(&example.input, TapPoint::Transformers, &mut NoObserver).map_err(|e| TrainError::Model(Box::new(e)))?;
        input_tokens += example.labels.len();
        let weight = example.supervised_tokens() as f64 / tokens as f64;
        let loss = causal_lm_loss(logits, &example.labels)? * weight;
        loss_sum += loss.clone().into_scalar().elem::<f64>();
        accumulator.accumulate(model, GradientsParams::from_grads(loss.backward(), model));
    }
    let entry = StepLog { step: 0, epoch: 0, loss: loss_sum, lr: 0.0, grad_norm: 0.0, tokens, input_tokens, seconds: 0.0, skipped };
    Ok((accumulator.grads(), entry))
}

use burn::tensor::ElementConversion;

/// Opens the step log for appending, dropping entries after `keep_through` (steps a killed run
/// logged after its last checkpoint, which the resumed run will redo).
fn open_log(path: &PathBuf, keep_through: usize) -> Result<std::fs::File, TrainError> {
    let io = |e: std::io::Error| TrainError::Checkpoint(format!("{}: {e}", path.display()));
    let kept: Vec<String> = match std::fs::read_to_string(path) {
        Ok(text) if keep_through > 0 => text
            .lines()
            .filter(|line| serde_json::from_str::<StepLog>(line).is_ok_and(|entry| entry.step <= keep_through))
            .map(str::to_string)
            .collect(),
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
        assert_eq!(config.total_steps(10), 6);
        let mut first: Vec<usize> = (0..3).flat_map(|s| step_examples(&config, 10, s).1).collect();
        first.sort();
        assert_eq!(first, (0..10).collect::<Vec<_>>());
        assert_eq!(step_examples(&config, 10, 3).0, 1);
        assert_eq!(step_examples(&config, 10, 4), step_examples(&config, 10, 4));
        assert_ne!(step_examples(&config, 10, 0).1, step_examples(&config, 10, 3).1);
    }
}
