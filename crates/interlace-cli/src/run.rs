//! `interlace run`: similarity → select → prune → train in one command.

use std::error::Error;
use std::path::PathBuf;

use burn::backend::Autodiff;
use clap::Args;
use interlace_core::Plan;
use interlace_prune::similarity::{CalibrationProgress, Strategy};
use interlace_prune::surgery::NoProgress;
use interlace_prune::{devices_at, with_backend, AdaptOptions, BackendKind, CalibrationOptions, FloatKind, Pipeline};
use interlace_train::TrainConfig;

use crate::train::{progress_bar, sibling, update_bar, LossNormalizationArg};

/// Arguments of `interlace run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The model to prune (never written to): a Hugging Face directory or a Hub id
    /// (owner/name[@revision], downloaded into the Hugging Face cache).
    #[arg(long)]
    model: PathBuf,
    /// Conversations (LLaVA/FineVision JSON or JSONL) for calibration and training.
    #[arg(long)]
    data: PathBuf,
    /// Separate calibration data (default: --data).
    #[arg(long)]
    calib_data: Option<PathBuf>,
    /// Fraction of text layers to drop (n_drop = floor(L × ratio)).
    #[arg(long, required_unless_present = "plan")]
    ratio: Option<f64>,
    /// Selection strategy: interlace, interlace_oa, interlace_tn, random, consecutive, lowest_influence.
    #[arg(long, default_value = "interlace")]
    strategy: String,
    /// Skip similarity and selection: prune and train by this plan.json (from `select`, `sleb`
    /// or an earlier run).
    #[arg(long, conflicts_with_all = ["ratio", "calib_data", "sample_portion", "max_samples"])]
    plan: Option<PathBuf>,
    /// Use a random fraction of the calibration records (official scripts: a portion with seed 42).
    #[arg(long)]
    sample_portion: Option<f64>,
    /// Cap on calibration samples.
    #[arg(long)]
    max_samples: Option<usize>,
    /// Seed of sampling, selection (random strategy) and data order.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Final trained model (Hugging Face layout).
    #[arg(long)]
    out: PathBuf,
    /// Intermediate files: similarity/, plan.json, pruned/, run/ (default `<out>.work`).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Training epochs.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-5)]
    lr: f64,
    /// Conversations per micro-batch.
    #[arg(long, default_value_t = 1)]
    batch_size: usize,
    /// Micro-batches per optimizer step.
    #[arg(long, default_value_t = 1)]
    grad_accum: usize,
    /// Loss weighting: `micro-batch` (official) or `step-tokens` (see `interlace train`).
    #[arg(long, value_enum, default_value_t = LossNormalizationArg::MicroBatch)]
    loss_normalization: LossNormalizationArg,
    /// Truncate training conversations to this many tokens.
    #[arg(long, default_value_t = 8192)]
    max_length: usize,
    /// Replace existing outputs.
    #[arg(long)]
    force: bool,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendKind::Cpu)]
    backend: BackendKind,
    /// Float dtype (trainable layers keep f32 master weights).
    #[arg(long, value_enum, default_value_t = FloatKind::F32)]
    dtype: FloatKind,
    /// Train data-parallel on these devices, e.g. `--devices 0,1,2,3` (calibration runs on the
    /// first).
    #[arg(long, value_delimiter = ',')]
    devices: Vec<usize>,
    /// Activation checkpointing during training (see `interlace train`).
    #[arg(long)]
    activation_checkpointing: bool,
}

/// Runs the four steps, printing what each produced.
pub fn run(mut args: RunArgs) -> Result<(), Box<dyn Error>> {
    args.model = crate::hub::model_dir(&args.model)?;
    let strategy = Strategy::from_name(&args.strategy).ok_or_else(|| format!("unknown strategy `{}`", args.strategy))?;
    let work = args.work_dir.clone().unwrap_or_else(|| sibling(&args.out, "work"));
    let pipeline = Pipeline::new(&args.model, &work).with_dtype(args.dtype.dtype());
    let calib = args.calib_data.clone().unwrap_or_else(|| args.data.clone());
    let mut calibration = CalibrationOptions { sample_portion: args.sample_portion, max_samples: args.max_samples, seed: args.seed, ..Default::default() };
    if let (Strategy::AngularBlock | Strategy::AngularBlockLastToken, Some(ratio)) = (strategy, args.ratio) {
        // A block of n = floor(L × ratio) layers needs pack n from the same pass.
        let n_layers = interlace_prune::registry::num_layers(&args.model)?;
        calibration.packs.push(interlace_prune::similarity::n_drop_for(n_layers, ratio)?);
        calibration.packs.sort_unstable();
        calibration.packs.dedup();
    }
    let adapt = AdaptOptions {
        train: TrainConfig {
            epochs: args.epochs,
            lr: args.lr,
            batch_size: args.batch_size,
            grad_accum: args.grad_accum,
            loss_normalization: args.loss_normalization.into(),
            seed: args.seed,
            activation_checkpointing: args.activation_checkpointing,
            ..TrainConfig::default()
        },
        max_length: args.max_length,
        force: args.force,
        ..AdaptOptions::default()
    };
    with_backend!(args.backend, |B, device| {
        let devices = devices_at::<B>(&args.devices, device)?;
        // The device type depends on the backend: Copy for the CPU ones, not for all.
        #[allow(clippy::clone_on_copy)]
        let device = devices[0].clone();
        let plan = match (&args.plan, args.ratio) {
            (Some(path), _) => {
                let plan = Plan::from_file(path)?;
                eprintln!("1-2/4 plan ({}) from {}: drop {:?}, fine-tune {:?}", plan.strategy, path.display(), plan.drop, plan.finetune);
                plan
            }
            (None, Some(ratio)) => {
                let progress = CalibrationProgress::new(0, calib.display().to_string());
                let (_, summary) = pipeline.calibrate::<B>(&calib, &calibration, &device, &mut |e| progress.on_event(e))?;
                progress.finish();
                eprintln!("1/4 similarity: {} samples ({} skipped) -> {}", summary.used, summary.skipped.len(), pipeline.similarity_dir().display());
                let plan = pipeline.select(strategy, ratio, args.seed)?;
                eprintln!("2/4 plan ({}): drop {:?}, fine-tune {:?} -> {}", plan.strategy, plan.drop, plan.finetune, pipeline.plan_path().display());
                plan
            }
            (None, None) => return Err("either --ratio or --plan is required".into()),
        };
        let pruned = pipeline.prune(&plan, args.force, &mut NoProgress)?;
        eprintln!("3/4 pruned: {} -> {} layers -> {}", pruned.layers_before, pruned.layers_after, pipeline.pruned_dir().display());
        let records = interlace_train::data::read_records(&args.data)?.0.len();
        let bar = progress_bar(adapt.train.total_steps(records, devices.len()) as u64);
        let (report, _) = pipeline.adapt::<Autodiff<B>>(&plan, &args.data, &adapt, &args.out, &work.join("run"), &devices, |s| update_bar(&bar, s))?;
        bar.finish();
        eprintln!("4/4 trained {} steps, final loss {:.4} -> {}", report.steps, report.final_loss, args.out.display());
        Ok::<(), Box<dyn Error>>(())
    })
}
