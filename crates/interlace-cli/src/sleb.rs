//! `interlace sleb`: a pruning plan by calibration loss (SLEB, or the one-shot perplexity rule).

use interlace_qwen3vl::processor::Qwen3VlProcessor;
use std::error::Error;
use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use interlace_chat::ChatProcessor;
use interlace_core::SkipLayersForward;
use interlace_llama::{LlamaForCausalLM, TextProcessor};
use interlace_prune::{registry, with_backend};
use interlace_prune::{BackendKind, FloatKind};
use interlace_qwen3vl::Qwen3VlForConditionalGeneration;
use interlace_similarity::{
    loss_selection_passes, n_drop_for, plan_for_drop, sample_order, select_by_loss, CalibrationData, ChatInputBuilder, FinetuneRule, InputBuilder, LossRule,
    LossSelection, LossSelectionConfig,
};

/// Arguments of `interlace sleb`.
#[derive(Debug, Args)]
pub struct SlebArgs {
    /// Qwen3-VL model: a Hugging Face directory or a Hub id (owner/name[@revision]).
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    calibration: CalibrationSet,
    /// Fraction of layers to drop, in (0, 1): int(L × ratio) layers go.
    #[arg(long)]
    ratio: f64,
    /// Score every layer once and drop the cheapest (Shortened LLaMA's PPL criterion) instead of
    /// SLEB's re-scoring after each removal.
    #[arg(long)]
    one_shot: bool,
    /// Layers never dropped, comma-separated, or `none` (default: the first and the last layer,
    /// SLEB's barriers, for both rules).
    #[arg(long, value_delimiter = ',')]
    protect: Option<Vec<String>>,
    /// Which layers the plan fine-tunes: next (the kept layer after each dropped one), none, or
    /// all-remaining.
    #[arg(long, default_value = "none", value_parser = parse_finetune)]
    finetune: FinetuneRule,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendKind::Cpu)]
    backend: BackendKind,
    /// Float dtype of weights and activations (the loss is computed in f32 and summed in f64).
    #[arg(long, value_enum, default_value_t = FloatKind::F32)]
    dtype: FloatKind,
    /// Output directory: plan.json and sleb.json (every round's scores).
    #[arg(long)]
    out: PathBuf,
}

fn parse_finetune(name: &str) -> Result<FinetuneRule, String> {
    FinetuneRule::from_name(name).ok_or_else(|| format!("unknown fine-tune rule `{name}`; choose next, none or all-remaining"))
}

pub(crate) fn protected(arg: &Option<Vec<String>>, n_layers: usize) -> Result<Vec<usize>, Box<dyn Error>> {
    match arg.as_deref() {
        None => Ok(LossSelectionConfig::sleb_barriers(n_layers)),
        Some([only]) if only == "none" => Ok(Vec::new()),
        Some(list) => list.iter().map(|s| s.trim().parse::<usize>().map_err(|_| format!("--protect: `{s}` is not a layer index or `none`").into())).collect(),
    }
}

/// Which calibration records to use and how to read them (shared with `interlace compare`).
#[derive(Debug, Args)]
pub struct CalibrationSet {
    /// Calibration data: LLaVA/FineVision records as a JSON array or JSONL (the prompts are
    /// built as for `interlace similarity`; every text token is scored).
    #[arg(long)]
    pub data: PathBuf,
    /// Draw int(N × P) records like the official `random.sample` (default: every record, in order).
    #[arg(long)]
    pub sample_portion: Option<f64>,
    /// Seed of the subset draw (CPython-compatible) and of the `random` strategy.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Use at most N samples (the first N of the draw). Every one is scored in every pass.
    #[arg(long)]
    pub max_samples: Option<usize>,
    /// Directory image paths are relative to (default: the data file's directory).
    #[arg(long)]
    pub image_root: Option<PathBuf>,
    /// Stop at the first malformed record or unreadable image instead of skipping it.
    #[arg(long)]
    pub strict: bool,
}

impl CalibrationSet {
    /// Builds every calibration input once (they are scored in every pass), skipping bad
    /// records unless `--strict`.
    pub fn inputs<P: ChatProcessor>(&self, builder: &ChatInputBuilder<P>) -> Result<Vec<P::Input>, Box<dyn Error>> {
        let mut data = CalibrationData::open(&self.data, self.image_root.as_deref())?;
        let order = sample_order(data.len(), self.sample_portion, self.seed, self.max_samples)?;
        let mut inputs = Vec::with_capacity(order.len());
        for index in order {
            let line = data.line_of(index);
            match data.record(index).map_err(|e| e.to_string()).and_then(|record| builder.build(&record)) {
                Ok(input) => inputs.push(input),
                Err(reason) if self.strict => return Err(format!("{}:{line}: {reason}", self.data.display()).into()),
                Err(reason) => eprintln!("skipped {}:{line}: {reason}", self.data.display()),
            }
        }
        if inputs.is_empty() {
            return Err(format!("no usable calibration record in {}", self.data.display()).into());
        }
        Ok(inputs)
    }
}

/// Scores the layers, prints the plan and writes plan.json and sleb.json.
pub fn run(mut args: SlebArgs) -> Result<(), Box<dyn Error>> {
    args.model = crate::hub::model_dir(&args.model)?;
    let rule = if args.one_shot { LossRule::OneShot } else { LossRule::Sleb };
    let dtype = args.dtype.dtype();
    let selection = if registry::text_architecture(&args.model)?.is_some() {
        let inputs = args.calibration.inputs(&ChatInputBuilder::new(TextProcessor::from_dir(&args.model)?))?;
        with_backend!(args.backend, |B, device| {
            let model = LlamaForCausalLM::<B>::from_pretrained(&args.model, &device, dtype)?;
            select(&model, &inputs, &args, rule)
        })?
    } else {
        let inputs = args.calibration.inputs(&ChatInputBuilder::new(Qwen3VlProcessor::from_dir(&args.model)?))?;
        with_backend!(args.backend, |B, device| {
            let model = Qwen3VlForConditionalGeneration::<B>::from_pretrained(&args.model, &device, dtype)?;
            select(&model, &inputs, &args, rule)
        })?
    };
    let plan = plan_for_drop(selection.n_layers, rule.name(), args.ratio, &selection.order, args.finetune)?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let plan_json = serde_json::to_string_pretty(&plan)?;
    write_atomically(&args.out.join("plan.json"), &plan_json)?;
    write_atomically(&args.out.join("sleb.json"), &serde_json::to_string_pretty(&selection)?)?;
    eprintln!(
        "{}: dropped {:?} (in that order) with {} forward passes in {:.1} s; calibration NLL per token {:.4} → {:.4}",
        rule.name(),
        selection.order,
        selection.passes,
        selection.wall.as_secs_f64(),
        selection.baseline.mean(),
        selection.pruned_nll / selection.baseline.tokens as f64
    );
    println!("{plan_json}");
    Ok(())
}

/// The loss-based selection on one loaded model.
fn select<B, M>(model: &M, inputs: &[M::Input], args: &SlebArgs, rule: LossRule) -> Result<LossSelection, Box<dyn Error>>
where
    B: burn::prelude::Backend,
    M: SkipLayersForward<B>,
    M::Error: std::fmt::Display,
{
    let n_layers = model.num_layers();
    let config = LossSelectionConfig { rule, n_drop: n_drop_for(n_layers, args.ratio)?, protect: protected(&args.protect, n_layers)? };
    let bar = pass_bar(loss_selection_passes(&config, n_layers, inputs.len()), rule.name());
    let selection = select_by_loss(model, inputs, &config, &mut || bar.inc(1));
    bar.finish_and_clear();
    Ok(selection?)
}

/// A bar counting forward passes.
pub(crate) fn pass_bar(total: usize, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    let template = "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} forward passes · {per_sec} · ETA {eta} {msg}";
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar.set_message(message);
    bar
}

/// Writes `text` to a temporary file next to `path`, then renames it over `path`: a reader never
/// sees half a file, and a failure leaves the old one.
pub(crate) fn write_atomically(path: &Path, text: &str) -> Result<(), Box<dyn Error>> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, format!("{text}\n")).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(())
}
