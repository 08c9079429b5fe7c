//! `interlace train`: adapt a pruned model by training only its fine-tune layers.

use std::error::Error;
use std::path::PathBuf;

use burn::backend::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::DType;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use interlace_core::{DecoderStack, LayerSet, Plan};
use interlace_qwen3vl::processor::Qwen3VlProcessor;
use interlace_qwen3vl::{Qwen3VlConfig, Qwen3VlForConditionalGeneration};
use interlace_train::{train, ConversationDataset, ExampleSource, StepLog, TrainConfig, TrainReport};

use crate::backend::{BackendKind, FloatKind};
use crate::with_backend;

/// Arguments of `interlace train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The pruned model directory (output of `interlace prune`).
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
    #[arg(long, value_enum, default_value_t = BackendKind::Ndarray)]
    pub backend: BackendKind,
    /// Float dtype of the frozen weights and activations; trainable layers always keep f32
    /// master weights.
    #[arg(long, value_enum, default_value_t = FloatKind::F32)]
    pub dtype: FloatKind,
}

impl TrainArgs {
    fn config(&self) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            lr: self.lr,
            warmup_ratio: self.warmup_ratio,
            weight_decay: self.weight_decay,
            max_grad_norm: self.max_grad_norm,
            batch_size: self.batch_size,
            grad_accum: self.grad_accum,
            seed: self.seed,
            checkpoint_every: self.checkpoint_every,
            ..TrainConfig::default()
        }
    }

    fn run_dir(&self) -> PathBuf {
        self.run_dir.clone().unwrap_or_else(|| {
            let mut name = self.out.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "interlace".into());
            name.push(".run");
            self.out.with_file_name(name)
        })
    }
}

/// Trains and writes the output model.
pub fn run(args: TrainArgs) -> Result<(), Box<dyn Error>> {
    let plan = Plan::from_file(&args.plan)?;
    // Refuse before hours of training, not after.
    let occupied = std::fs::read_dir(&args.out).map(|mut d| d.next().is_some()).unwrap_or(false);
    if occupied && !args.force {
        return Err(format!("{} exists and is not empty (use --force to replace it)", args.out.display()).into());
    }
    let config = Qwen3VlConfig::from_dir(&args.model)?;
    let expected = plan.n_layers - plan.drop.len();
    if config.text.num_hidden_layers != expected {
        return Err(format!(
            "{} has {} text layers but the plan leaves {expected} of {}: pass the pruned model (`interlace prune --plan {}`)",
            args.model.display(),
            config.text.num_hidden_layers,
            plan.n_layers,
            args.plan.display()
        )
        .into());
    }
    let mut processor = Qwen3VlProcessor::from_dir(&args.model)?;
    if let Some(min) = args.min_pixels {
        processor.image_config_mut().min_pixels = min;
    }
    if let Some(max) = args.max_pixels {
        processor.image_config_mut().max_pixels = max;
    }
    let (data, skipped) = ConversationDataset::open(&args.data, args.image_root.as_deref(), processor, args.max_length)?;
    for s in &skipped {
        eprintln!("warning: {}: skipping line {}: {}", args.data.display(), s.line, s.reason);
    }
    let trained = with_backend!(args.backend, |B, device| fit::<Autodiff<B>>(&args, &plan, &data, &device))?;
    let run_dir = args.run_dir();
    interlace_train::plot::loss_curve(&run_dir.join("log.jsonl"), &run_dir.join("loss.png"))?;
    let report = trained.1;
    let settings = serde_json::json!({"train": args.config(), "data": args.data, "final_loss": report.final_loss, "steps": report.steps, "skipped_records": skipped.len()});
    interlace_train::export::save_trained(&args.model, &args.out, &trained.0, settings, args.force)?;
    println!("trained {} steps, final loss {:.4}; wrote {}", report.steps, report.final_loss, args.out.display());
    Ok(())
}

type Trained = (Vec<(String, burn::tensor::TensorData)>, TrainReport);

fn fit<B: AutodiffBackend>(args: &TrainArgs, plan: &Plan, data: &ConversationDataset, device: &B::Device) -> Result<Trained, Box<dyn Error>> {
    let dtype = args.dtype.dtype();
    let model = Qwen3VlForConditionalGeneration::<B>::from_pretrained(&args.model, device, dtype)?;
    let trainable = LayerSet::new(plan.finetune_after_pruning(), model.num_layers())?;
    // Trainable layers keep f32 master weights (and compute in f32) inside a bf16/f16 model.
    let mut model = model.cast_layers(&trainable, DType::F32).set_trainable_layers(&trainable)?;
    if args.tune_vision {
        model = model.unfreeze_vision();
    }
    if args.tune_merger {
        model = model.unfreeze_merger();
    }
    if args.tune_llm {
        model = model.unfreeze_llm();
    }
    let config = args.config();
    let bar = progress_bar(config.total_steps(data.len()) as u64);
    let (model, report) = train(model, data, &config, &args.run_dir(), args.resume, |step| update_bar(&bar, step))?;
    bar.finish();
    Ok((interlace_train::params::trainable_tensors(&model), report))
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} step {pos}/{len} {msg} [{elapsed_precise} < {eta_precise}]").expect("valid template"),
    );
    bar
}

fn update_bar(bar: &ProgressBar, step: &StepLog) {
    bar.set_position(step.step as u64);
    let tokens_per_s = step.input_tokens as f64 / step.seconds.max(1e-9);
    bar.set_message(format!("loss {:.4} lr {:.2e} {:.0} tok/s", step.loss, step.lr, tokens_per_s));
}

