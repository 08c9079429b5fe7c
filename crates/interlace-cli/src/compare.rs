//! `interlace compare`: every selection strategy on one calibration set, side by side.

use interlace_qwen3vl::processor::Qwen3VlProcessor;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use interlace_core::SkipLayersForward;
use interlace_llama::{LlamaForCausalLM, TextProcessor};
use interlace_prune::{registry, with_backend};
use interlace_prune::{BackendKind, FloatKind};
use interlace_qwen3vl::Qwen3VlForConditionalGeneration;
use interlace_similarity::{
    compare_strategies, comparison_passes, n_drop_for, write_outputs, CalibrationConfig, Calibrator, ChatInputBuilder, CompareConfig, Comparison, RunMetadata,
    RunSummary, SimilarityTables,
};

use crate::sleb::{pass_bar, write_atomically, CalibrationSet};

/// Arguments of `interlace compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Qwen3-VL model: a Hugging Face directory or a Hub id (owner/name[@revision]).
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    calibration: CalibrationSet,
    /// Fractions of layers to drop, comma-separated; each strategy runs at each.
    #[arg(long, value_delimiter = ',', required = true)]
    ratios: Vec<f64>,
    /// Layers no strategy may drop, comma-separated, or `none` (default: each strategy's own, i.e.
    /// SLEB's first and last layer, nothing for the others).
    #[arg(long, value_delimiter = ',')]
    protect: Option<Vec<String>>,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendKind::Cpu)]
    backend: BackendKind,
    /// Float dtype of weights and activations.
    #[arg(long, value_enum, default_value_t = FloatKind::F32)]
    dtype: FloatKind,
    /// Output directory: similarity/ (the pass's tables), compare.json and compare.md.
    #[arg(long)]
    out: PathBuf,
}

/// Measures, selects with every strategy, scores each plan and writes the report.
pub fn run(mut args: CompareArgs) -> Result<(), Box<dyn Error>> {
    args.model = crate::hub::model_dir(&args.model)?;
    let sims = args.out.join("similarity");
    let dtype = args.dtype.dtype();
    let comparison = if registry::text_architecture(&args.model)?.is_some() {
        let inputs = args.calibration.inputs(&ChatInputBuilder::new(TextProcessor::from_dir(&args.model)?))?;
        with_backend!(args.backend, |B, device| {
            let model = LlamaForCausalLM::<B>::from_pretrained(&args.model, &device, dtype)?;
            compare_model(&model, &inputs, &args, &sims)
        })?
    } else {
        let inputs = args.calibration.inputs(&ChatInputBuilder::new(Qwen3VlProcessor::from_dir(&args.model)?))?;
        with_backend!(args.backend, |B, device| {
            let model = Qwen3VlForConditionalGeneration::<B>::from_pretrained(&args.model, &device, dtype)?;
            compare_model(&model, &inputs, &args, &sims)
        })?
    };
    let (comparison, wall) = comparison;
    let markdown = comparison.to_markdown();
    write_atomically(&args.out.join("compare.json"), &serde_json::to_string_pretty(&comparison)?)?;
    write_atomically(&args.out.join("compare.md"), &markdown)?;
    eprintln!("{} forward passes after the similarity pass, {:.1} s in all; wrote {}", comparison.passes, wall.as_secs_f64(), args.out.display());
    print!("{markdown}");
    Ok(())
}

/// The similarity pass and every strategy's scoring on one loaded model.
fn compare_model<B, M>(model: &M, inputs: &[M::Input], args: &CompareArgs, sims: &Path) -> Result<(Comparison, Duration), Box<dyn Error>>
where
    B: burn::prelude::Backend,
    M: SkipLayersForward<B>,
    M::Error: std::fmt::Display,
{
    let n_layers = model.num_layers();
    let protect = args.protect.as_ref().map(|_| crate::sleb::protected(&args.protect, n_layers)).transpose()?;
    let config = CompareConfig { ratios: args.ratios.clone(), seed: args.calibration.seed, protect };
    // One pass measures packs 1, 2, 3 and every block size the ratios ask for.
    let mut packs = vec![1, 2, 3];
    for &ratio in &args.ratios {
        packs.push(n_drop_for(n_layers, ratio)?);
    }
    packs.sort_unstable();
    packs.dedup();
    let mut calibrator = Calibrator::new(CalibrationConfig { packs, ..Default::default() }, n_layers)?;
    let bar = pass_bar(inputs.len() + comparison_passes(&config, n_layers, inputs.len()), "compare");
    let start = Instant::now();
    for input in inputs {
        calibrator.run_sample(model, input)?;
        bar.inc(1);
    }
    let summary = RunSummary { used: inputs.len(), skipped: Vec::new(), wall: start.elapsed() };
    write_outputs(sims, &calibrator.finish(), &summary, &metadata(args, inputs.len()))?;
    let tables = SimilarityTables::from_dir(sims)?;
    let comparison = compare_strategies(model, inputs, &tables, &config, &mut || bar.inc(1));
    bar.finish_and_clear();
    Ok((comparison?, start.elapsed()))
}

fn metadata(args: &CompareArgs, samples: usize) -> RunMetadata {
    RunMetadata {
        model: args.model.clone(),
        data: args.calibration.data.clone(),
        seed: args.calibration.seed,
        sample_portion: args.calibration.sample_portion,
        max_samples: args.calibration.max_samples,
        records: samples,
        backend: format!("{:?}/{:?}", args.backend, args.dtype).to_lowercase(),
    }
}
