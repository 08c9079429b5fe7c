//! `interlace train`: adapt a pruned model by training only its fine-tune layers.

use std::error::Error;
use std::path::PathBuf;

use burn::backend::Autodiff;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use interlace_core::Plan;
use interlace_prune::{adapt_dir, devices_at, AdaptOptions};
use interlace_train::{LossNormalization, StepLog, TrainConfig};

use interlace_prune::with_backend;
use interlace_prune::{BackendKind, FloatKind};

/// Arguments of `interlace train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The pruned model directory (output of `interlace prune`), or a Hub id (owner/name[@revision]).
    #[arg(long)]
    pub model: PathBuf,
    /// The plan used for pruning (indices of the unpruned model).
    #[arg(long)]
    pub plan: PathBuf,
    /// Conversations (LLaVA/FineVision JSON or JSONL).
    #[arg(long)]
    pub data: PathBuf,
    /// Folder image paths are relative to (default: the data file's folder).
    #[arg(long)]
    pub image_root: Option<PathBuf>,
    /// Output: a Hugging Face model directory with the trained weights (written atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// Run state (checkpoints, log.jsonl, loss.png); default `<out>.run`.
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Passes over the data.
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-5)]
    pub lr: f64,
    /// Fraction of steps of linear warmup.
    #[arg(long, default_value_t = 0.03)]
    pub warmup_ratio: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// Global gradient-norm bound.
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    /// Conversations per micro-batch.
    #[arg(long, default_value_t = 1)]
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    /// How conversation losses are weighted: `micro-batch` (the official training's HF
    /// Trainer: each micro-batch's token mean, divided by the step's micro-batches) or
    /// `step-tokens` (token mean over the whole step).
    #[arg(long, value_enum, default_value_t = LossNormalizationArg::MicroBatch)]
    pub loss_normalization: LossNormalizationArg,
    /// Truncate conversations to this many tokens.
    #[arg(long, default_value_t = 8192)]
    pub max_length: usize,
    /// Smallest image area in pixels (official training: 784).
    #[arg(long)]
    pub min_pixels: Option<usize>,
    /// Largest image area in pixels (official training: 50176).
    #[arg(long)]
    pub max_pixels: Option<usize>,
    /// Save a checkpoint every N optimizer steps (0: only at the end).
    #[arg(long, default_value_t = 0)]
    pub checkpoint_every: usize,
    /// Continue from the latest checkpoint in the run directory.
    #[arg(long)]
    pub resume: bool,
    /// Seed of the data order.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Also train the vision tower (official `tune_mm_vision`).
    #[arg(long)]
    pub tune_vision: bool,
    /// Also train the main merger (official `tune_mm_mlp`).
    #[arg(long)]
    pub tune_merger: bool,
    /// Train the whole language model (official `tune_mm_llm`).
    #[arg(long)]
    pub tune_llm: bool,
    /// Replace a non-empty output directory.
    #[arg(long)]
    pub force: bool,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendKind::Cpu)]
    pub backend: BackendKind,
    /// Float dtype of the frozen weights and activations; trainable layers always keep f32
    /// master weights.
    #[arg(long, value_enum, default_value_t = FloatKind::F32)]
    pub dtype: FloatKind,
    /// Train data-parallel on these devices (CUDA ordinals or wgpu GPU indices), e.g.
    /// `--devices 0,1,2,3`: each takes `--batch-size × --grad-accum` conversations per step.
    /// Default: the backend's default device.
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<usize>,
    /// Activation checkpointing: keep only each layer's input and recompute the layer during
    /// the backward pass (less memory on long sequences, about a third more compute).
    #[arg(long)]
    pub activation_checkpointing: bool,
}

/// `--loss-normalization` values ([`LossNormalization`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LossNormalizationArg {
    /// [`LossNormalization::MicroBatchMean`].
    MicroBatch,
    /// [`LossNormalization::StepTokens`].
    StepTokens,
}

impl From<LossNormalizationArg> for LossNormalization {
    fn from(arg: LossNormalizationArg) -> Self {
        match arg {
            LossNormalizationArg::MicroBatch => Self::MicroBatchMean,
            LossNormalizationArg::StepTokens => Self::StepTokens,
        }
    }
}

impl TrainArgs {
    /// The optimizer and schedule settings.
    pub fn config(&self) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            lr: self.lr,
            warmup_ratio: self.warmup_ratio,
            weight_decay: self.weight_decay,
            max_grad_norm: self.max_grad_norm,
            batch_size: self.batch_size,
            grad_accum: self.grad_accum,
            loss_normalization: self.loss_normalization.into(),
            seed: self.seed,
            checkpoint_every: self.checkpoint_every,
            activation_checkpointing: self.activation_checkpointing,
            ..TrainConfig::default()
        }
    }

    /// Everything the adaptation step needs from the flags.
    pub fn adapt_options(&self) -> AdaptOptions {
        AdaptOptions {
            train: self.config(),
            max_length: self.max_length,
            min_pixels: self.min_pixels,
            max_pixels: self.max_pixels,
            image_root: self.image_root.clone(),
            tune_vision: self.tune_vision,
            tune_merger: self.tune_merger,
            tune_llm: self.tune_llm,
            resume: self.resume,
            force: self.force,
        }
    }

    fn run_dir(&self) -> PathBuf {
        self.run_dir.clone().unwrap_or_else(|| sibling(&self.out, "run"))
    }
}

/// `<out>.<suffix>` beside `out`: where the run state of an output directory lives by default.
pub fn sibling(out: &std::path::Path, suffix: &str) -> PathBuf {
    let mut name = out.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "interlace".into());
    name.push(".");
    name.push(suffix);
    out.with_file_name(name)
}

/// Trains and writes the output model.
pub fn run(mut args: TrainArgs) -> Result<(), Box<dyn Error>> {
    args.model = crate::hub::model_dir(&args.model)?;
    let plan = Plan::from_file(&args.plan)?;
    let options = args.adapt_options();
    let run_dir = args.run_dir();
    let (report, skipped) = with_backend!(args.backend, |B, device| {
        let devices = devices_at::<B>(&args.devices, device)?;
        let total = options.train.total_steps(count_records(&args.data)?, devices.len()) as u64;
        let bar = progress_bar(total);
        let result =
            adapt_dir::<Autodiff<B>>(&args.model, &plan, &args.data, &options, &args.out, &run_dir, args.dtype.dtype(), &devices, |s| update_bar(&bar, s));
        bar.finish();
        result.map_err(Box::<dyn Error>::from)
    })?;
    for s in &skipped {
        eprintln!("warning: {}: skipped line {}: {}", args.data.display(), s.line, s.reason);
    }
    println!("trained {} steps, final loss {:.4}; wrote {} (run: {})", report.steps, report.final_loss, args.out.display(), run_dir.display());
    Ok(())
}

/// Number of usable records, for the progress bar's length.
fn count_records(data: &std::path::Path) -> Result<usize, Box<dyn Error>> {
    Ok(interlace_train::data::read_records(data)?.0.len())
}

/// A progress bar over optimizer steps.
pub fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(ProgressStyle::with_template("{bar:30} step {pos}/{len} {msg} [{elapsed_precise} < {eta_precise}]").expect("valid template"));
    bar
}

/// Shows one step's loss, learning rate and throughput.
pub fn update_bar(bar: &ProgressBar, step: &StepLog) {
    bar.set_position(step.step as u64);
    let tokens_per_s = step.input_tokens as f64 / step.seconds.max(1e-9);
    bar.set_message(format!("loss {:.4} lr {:.2e} {:.0} tok/s", step.loss, step.lr, tokens_per_s));
}
