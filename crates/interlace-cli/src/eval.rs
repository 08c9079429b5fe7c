//! `interlace eval`: benchmark scores, held-out loss and speed of a model next to its base.

use std::error::Error;
use std::path::{Path, PathBuf};

use burn::prelude::Backend;
use burn::tensor::DType;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use interlace_eval::{
    evaluate_benchmark, heldout_loss, measure_speed, prepare_input, read_benchmark, Benchmark, BenchmarkResult, EvalOptions, EvalReport, HeldOutLoss,
    ScoringMode, SpeedComparison, SpeedReport,
};
use interlace_qwen3vl::processor::Qwen3VlProcessor;
use interlace_qwen3vl::{GenerationConfig, Qwen3VlForConditionalGeneration, Qwen3VlInput};

use interlace_prune::with_backend;
use interlace_prune::{BackendKind, FloatKind};

/// Arguments of `interlace eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model to evaluate (Hugging Face directory), typically a pruned one.
    #[arg(long)]
    model: PathBuf,
    /// The model to compare with (the unpruned original): adds base scores, relative
    /// performance and speed ratios.
    #[arg(long)]
    base: Option<PathBuf>,
    /// Benchmark files: VLMEvalKit TSV (`.tsv`) or JSONL (`.jsonl`) with the same fields.
    #[arg(long, num_args = 1.., required_unless_present = "heldout")]
    bench: Vec<PathBuf>,
    /// Evaluate only the first N questions of each benchmark.
    #[arg(long)]
    limit: Option<usize>,
    /// Answer multiple-choice and yes/no questions by greedy decoding and answer extraction
    /// instead of comparing the log-likelihood of the answers.
    #[arg(long)]
    generate: bool,
    /// Upper bound on generated tokens per reply (open questions, --generate).
    #[arg(long, default_value_t = 32)]
    max_new_tokens: usize,
    /// Conversation data (the training format) for held-out loss and perplexity on assistant tokens.
    #[arg(long)]
    heldout: Option<PathBuf>,
    /// Longest held-out conversation in tokens (longer ones are truncated).
    #[arg(long, default_value_t = 4096)]
    max_length: usize,
    /// Skip the time-to-first-token and decode-speed measurement.
    #[arg(long)]
    no_speed: bool,
    /// Timed runs per speed measurement (after one warm-up run); the median is reported.
    #[arg(long, default_value_t = 3)]
    speed_repeats: usize,
    /// Decode steps timed per speed run.
    #[arg(long, default_value_t = 16)]
    decode_tokens: usize,
    /// Fail on the first malformed benchmark row instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendKind::Cpu)]
    backend: BackendKind,
    /// Float dtype of weights and activations.
    #[arg(long, value_enum, default_value_t = FloatKind::F32)]
    dtype: FloatKind,
    /// Folder for results.json and results.md.
    #[arg(long)]
    out: PathBuf,
}

/// What was measured for one model.
struct ModelRun {
    results: Vec<BenchmarkResult>,
    heldout: Option<HeldOutLoss>,
    speed: Option<SpeedReport>,
}

/// Settings shared by the model and the base.
struct Plan<'a> {
    args: &'a EvalArgs,
    benches: &'a [Benchmark],
    mode: ScoringMode,
}

/// The speed prompt: the first question that has an image (else the first question), as the
/// benchmark would pose it to the model.
fn speed_prompt(processor: &Qwen3VlProcessor, benches: &[Benchmark]) -> Option<Qwen3VlInput> {
    let items = benches.iter().flat_map(|b| b.items.iter());
    let candidates = items.clone().filter(|i| !i.images.is_empty()).chain(items);
    candidates.filter_map(|item| prepare_input(processor, item).ok()).next()
}

fn run_model<B: Backend>(dir: &Path, device: &B::Device, dtype: DType, label: &str, plan: &Plan) -> Result<ModelRun, Box<dyn Error>> {
    let args = plan.args;
    let processor = Qwen3VlProcessor::from_dir(dir)?;
    let model = Qwen3VlForConditionalGeneration::<B>::from_pretrained(dir, device, dtype)?;
    let eos = GenerationConfig::from_dir(dir, 1)?.eos_token_ids;
    let options = EvalOptions { mode: plan.mode, max_new_tokens: args.max_new_tokens, limit: args.limit, strict: args.strict, ..EvalOptions::new(eos) };
    let style = ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} {elapsed_precise}")?.progress_chars("=> ");
    let mut results = Vec::with_capacity(plan.benches.len());
    for bench in plan.benches {
        let total = args.limit.unwrap_or(usize::MAX).min(bench.items.len());
        let bar = ProgressBar::new(total as u64).with_style(style.clone()).with_prefix(format!("{label} {}", bench.name));
        let result = evaluate_benchmark(&model, &processor, bench, &options, |done| bar.set_position(done as u64));
        bar.finish_and_clear();
        let result = result?;
        for bad in &result.malformed[bench.malformed.len()..] {
            eprintln!("warning: {}: row {} (line {}) skipped: {}", bench.path.display(), bad.index, bad.line, bad.reason);
        }
        results.push(result);
    }
    let heldout = match &args.heldout {
        Some(data) => Some(heldout_loss(&model, data, Qwen3VlProcessor::from_dir(dir)?, args.max_length, args.limit)?),
        None => None,
    };
    let speed = match (args.no_speed, speed_prompt(&processor, plan.benches)) {
        (false, Some(prompt)) => Some(measure_speed(&model, &prompt, args.decode_tokens, args.speed_repeats)?),
        _ => None,
    };
    Ok(ModelRun { results, heldout, speed })
}

/// Evaluates `--model` (and `--base`), writes results.json and results.md, prints the table.
pub fn run(args: EvalArgs) -> Result<(), Box<dyn Error>> {
    let benches = args.bench.iter().map(|path| read_benchmark(path, args.strict)).collect::<Result<Vec<_>, _>>()?;
    for bench in &benches {
        for bad in &bench.malformed {
            eprintln!("warning: {}: row {} (line {}) skipped: {}", bench.path.display(), bad.index, bad.line, bad.reason);
        }
    }
    if benches.is_empty() && args.heldout.is_none() {
        return Err("nothing to evaluate: give --bench or --heldout".into());
    }
    let mode = if args.generate { ScoringMode::Generate } else { ScoringMode::LogLikelihood };
    let plan = Plan { args: &args, benches: &benches, mode };
    let dtype = args.dtype.dtype();
    let (model_run, base_run) = with_backend!(args.backend, |B, device| {
        let model_run = run_model::<B>(&args.model, &device, dtype, "model", &plan)?;
        let base_run = match &args.base {
            Some(base) => Some(run_model::<B>(base, &device, dtype, "base", &plan)?),
            None => None,
        };
        Ok::<_, Box<dyn Error>>((model_run, base_run))
    })?;
    let (base_results, base_heldout, base_speed) = match base_run {
        Some(run) => (run.results, run.heldout, run.speed),
        None => (Vec::new(), None, None),
    };
    let mut report =
        EvalReport::new(args.model.display().to_string(), args.base.as_ref().map(|b| b.display().to_string()), mode, model_run.results, base_results);
    report.heldout = model_run.heldout;
    report.base_heldout = base_heldout;
    report.speed = model_run.speed.map(|speed| SpeedComparison::new(speed, base_speed));
    report.write(&args.out)?;
    print!("{}", report.markdown());
    eprintln!("wrote {} and {}", args.out.join("results.json").display(), args.out.join("results.md").display());
    Ok(())
}
