//! `interlace similarity`: per-layer hidden-state similarities on calibration data.

use interlace_qwen3vl::processor::Qwen3VlProcessor;
use std::error::Error;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use interlace_core::{ObservedForward, TapPoint};
use interlace_qwen3vl::Qwen3VlForConditionalGeneration;
use interlace_similarity::{
    calibrate, sample_order, write_outputs, CalibrationConfig, CalibrationData, CalibrationProgress, CalibrationResult, Calibrator, ChatInputBuilder,
    InputBuilder, RunMetadata, RunSummary,
};

use interlace_llama::{LlamaForCausalLM, TextProcessor};
use interlace_prune::{registry, with_backend};
use interlace_prune::{BackendKind, FloatKind};

/// Which hidden states are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Taps {
    /// transformers' `output_hidden_states` (layer outputs before deepstack, final norm last).
    Transformers,
    /// The residual stream each next layer consumes (after deepstack, last one un-normalised).
    Residual,
}

/// Arguments of `interlace similarity`.
#[derive(Debug, Args)]
pub struct SimilarityArgs {
    /// Model: a Hugging Face directory or a Hub id (owner/name[@revision]); a vision-language
    /// family or a text decoder (Llama, Mistral, Qwen2, Qwen3).
    #[arg(long)]
    model: PathBuf,
    /// Calibration data: LLaVA/FineVision records, or plain-text documents `{"text": ...}`, as a
    /// JSON array or JSONL.
    #[arg(long)]
    data: PathBuf,
    /// Pack distances k: compare hidden states i and i+k (all in one pass per sample).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    packs: Vec<usize>,
    /// Which hidden states to compare.
    #[arg(long, value_enum, default_value_t = Taps::Transformers)]
    taps: Taps,
    /// Draw int(N × P) records like the official `random.sample` (default: every record, in order).
    #[arg(long)]
    sample_portion: Option<f64>,
    /// Seed of the subset draw (CPython-compatible).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Measure at most N samples (the first N of the draw).
    #[arg(long)]
    max_samples: Option<usize>,
    /// Directory image paths are relative to (default: the data file's directory).
    #[arg(long)]
    image_root: Option<PathBuf>,
    /// Stop at the first malformed record or unreadable image instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendKind::Cpu)]
    backend: BackendKind,
    /// Float dtype of weights and activations (similarities are always computed in f32/f64).
    #[arg(long, value_enum, default_value_t = FloatKind::F32)]
    dtype: FloatKind,
    /// Output directory: pack{k}.json, report.json, similarity.png.
    #[arg(long)]
    out: PathBuf,
}

/// Runs the calibration pass and writes the pack files, report and plot.
pub fn run(mut args: SimilarityArgs) -> Result<(), Box<dyn Error>> {
    args.model = crate::hub::model_dir(&args.model)?;
    let tap = match args.taps {
        Taps::Transformers => TapPoint::Transformers,
        Taps::Residual => TapPoint::Residual,
    };
    let mut data = CalibrationData::open(&args.data, args.image_root.as_deref())?;
    let order = sample_order(data.len(), args.sample_portion, args.seed, args.max_samples)?;
    let config = CalibrationConfig { packs: args.packs.clone(), tap };
    let label = args.data.display().to_string();
    let dtype = args.dtype.dtype();
    // Text decoders (Llama, Mistral, Qwen2, Qwen3) take documents and conversations through their
    // own tokenizer and template; everything else is a vision-language family.
    let (result, summary) = if registry::text_architecture(&args.model)?.is_some() {
        let builder = ChatInputBuilder::new(TextProcessor::from_dir(&args.model)?);
        with_backend!(args.backend, |B, device| {
            let model = LlamaForCausalLM::<B>::from_pretrained(&args.model, &device, dtype)?;
            measure(&model, &builder, &mut data, &order, &config, args.strict, &label)
        })?
    } else {
        let builder = ChatInputBuilder::new(Qwen3VlProcessor::from_dir(&args.model)?);
        with_backend!(args.backend, |B, device| {
            let model = Qwen3VlForConditionalGeneration::<B>::from_pretrained(&args.model, &device, dtype)?;
            measure(&model, &builder, &mut data, &order, &config, args.strict, &label)
        })?
    };
    if summary.used == 0 {
        return Err(format!("no sample of {} could be used ({} skipped)", args.data.display(), summary.skipped.len()).into());
    }
    let meta = RunMetadata {
        model: args.model.clone(),
        data: args.data.clone(),
        seed: args.seed,
        sample_portion: args.sample_portion,
        max_samples: args.max_samples,
        records: data.len(),
        backend: format!("{:?}/{:?}", args.backend, args.dtype).to_lowercase(),
    };
    let written = write_outputs(&args.out, &result, &summary, &meta)?;
    eprintln!(
        "measured {} samples ({} skipped, {} tokens) in {:.1} s ({:.2} samples/s); wrote {}",
        summary.used,
        summary.skipped.len(),
        result.tokens,
        summary.wall.as_secs_f64(),
        summary.used as f64 / summary.wall.as_secs_f64().max(1e-9),
        written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// One calibration pass of `model` over the records `order`, with a progress bar.
fn measure<B, M, I>(
    model: &M,
    builder: &I,
    data: &mut CalibrationData,
    order: &[usize],
    config: &CalibrationConfig,
    strict: bool,
    label: &str,
) -> Result<(CalibrationResult, RunSummary), Box<dyn Error>>
where
    B: burn::prelude::Backend,
    M: ObservedForward<B>,
    M::Error: std::fmt::Display,
    I: InputBuilder<Input = M::Input>,
{
    let mut calibrator = Calibrator::new(config.clone(), model.num_layers())?;
    let progress = CalibrationProgress::new(order.len(), label.to_string());
    let summary = calibrate(model, builder, data, order, &mut calibrator, strict, &mut |e| progress.on_event(e));
    progress.finish();
    Ok((calibrator.finish(), summary?))
}
