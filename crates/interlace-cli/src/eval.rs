//! `interlace eval`: benchmark scores, held-out loss and speed of a model next to its base.

use std::error::Error;
use std::path::{Path, PathBuf};

use burn::prelude::Backend;
use burn::tensor::DType;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use interlace_eval::vlmeval::Dataset;
use interlace_eval::{
    heldout_loss, read_benchmark_as, write_predictions, Benchmark, BenchmarkResult, EvalOptions, EvalReport, HeldOutLoss, Sampling, ScoringMode,
};
use interlace_prune::{evaluate_dir, DirEvalOptions};
use interlace_qwen3vl::processor::Qwen3VlProcessor;
use interlace_qwen3vl::Qwen3VlForConditionalGeneration;

use interlace_prune::with_backend;
use interlace_prune::{BackendKind, FloatKind};

/// Arguments of `interlace eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model to evaluate (Hugging Face directory or Hub id owner/name[@revision]), typically a pruned one.
    #[arg(long)]
    pub(crate) model: PathBuf,
    /// The model to compare with (the unpruned original; directory or Hub id): adds base scores, relative
    /// performance and speed ratios.
    #[arg(long)]
    pub(crate) base: Option<PathBuf>,
    /// Benchmark files: VLMEvalKit TSV (`.tsv`) or JSONL (`.jsonl`) with the same fields. A file
    /// named after a VLMEvalKit dataset (`MMBench_DEV_EN_V11.tsv`, `POPE.tsv`, ...) is prompted
    /// and scored by that dataset's rules; others by the generic rules of their questions.
    #[arg(long, num_args = 1.., required_unless_present_any = ["heldout", "perplexity", "choices"])]
    pub(crate) bench: Vec<PathBuf>,
    /// The VLMEvalKit dataset of each --bench file, in the same order, when the file name does
    /// not say it (`auto` keeps the detection for that file).
    #[arg(long, num_args = 1..)]
    dataset: Vec<String>,
    /// Evaluate only the first N questions of each benchmark.
    #[arg(long)]
    pub(crate) limit: Option<usize>,
    /// How replies are produced: `generate` (VLMEvalKit's way) or `loglik` (fast mode, not
    /// VLMEvalKit's: closed questions answered by the likeliest option letter or yes/no).
    #[arg(long, value_enum, default_value_t = Scoring::Generate)]
    scoring: Scoring,
    /// Decode greedily instead of with VLMEvalKit's sampling settings for Qwen3-VL
    /// (temperature 0.7, top-p 0.8, top-k 20, presence penalty 1.5).
    #[arg(long)]
    greedy: bool,
    /// Seed of the sampled replies (each question adds its line number).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Resize images within the model's preprocessor_config.json bounds instead of the ones
    /// VLMEvalKit's Qwen3-VL wrapper uses (4 to 16384 merged patches; OCRBench at least
    /// 102400 pixels).
    #[arg(long)]
    model_pixels: bool,
    /// Upper bound on generated tokens per reply (VLMEvalKit runs Qwen3-VL with 16384).
    #[arg(long, default_value_t = 16384)]
    max_new_tokens: usize,
    /// Conversation data (the training format) for held-out loss and perplexity on assistant tokens.
    #[arg(long)]
    pub(crate) heldout: Option<PathBuf>,
    /// Text models: documents (JSONL `{"text": ...}`) for word/byte perplexity and bits per
    /// byte, by lm-evaluation-harness's rolling log-likelihood.
    #[arg(long)]
    pub(crate) perplexity: Option<PathBuf>,
    /// Text models: multiple-choice questions (JSONL `{"context": ..., "choices": [...],
    /// "answer": index}`, each choice scored as a continuation of the context exactly as
    /// written, e.g. `" Paris"`) for acc and acc_norm as lm-evaluation-harness computes them.
    #[arg(long)]
    pub(crate) choices: Option<PathBuf>,
    /// Text models: the context length of scoring (lm-evaluation-harness's `max_length`;
    /// default: the config's `max_position_embeddings`, else 2048).
    #[arg(long)]
    pub(crate) context_length: Option<usize>,
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
    pub(crate) backend: BackendKind,
    /// Float dtype of weights and activations.
    #[arg(long, value_enum, default_value_t = FloatKind::F32)]
    pub(crate) dtype: FloatKind,
    /// Folder for results.json, results.md and predictions/ (one VLMEvalKit predictions
    /// file per model and benchmark).
    #[arg(long)]
    pub(crate) out: PathBuf,
}

/// `--scoring`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scoring {
    /// Generate every answer and score it with VLMEvalKit's rules.
    Generate,
    /// Fast mode: log-likelihood of the option letters / yes-no for closed questions.
    Loglik,
}

/// What was measured for one model.
struct ModelRun {
    results: Vec<BenchmarkResult>,
    heldout: Option<HeldOutLoss>,
}

/// Settings shared by the model and the base.
struct Plan<'a> {
    args: &'a EvalArgs,
    benches: &'a [Benchmark],
    mode: ScoringMode,
    sampling: Sampling,
}

fn run_model<B: Backend>(dir: &Path, device: &B::Device, dtype: DType, label: &str, plan: &Plan) -> Result<ModelRun, Box<dyn Error>> {
    let args = plan.args;
    let options = DirEvalOptions {
        eval: EvalOptions {
            mode: plan.mode,
            max_new_tokens: args.max_new_tokens,
            sampling: plan.sampling.clone(),
            limit: args.limit,
            strict: args.strict,
            ..EvalOptions::new(Vec::new())
        },
        model_pixels: args.model_pixels,
        speed: (!args.no_speed).then_some((args.decode_tokens, args.speed_repeats)),
        dtype,
    };
    let style = ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} {elapsed_precise}")?.progress_chars("=> ");
    let mut bar: Option<(String, ProgressBar)> = None;
    let evaluation = evaluate_dir::<B>(dir, plan.benches, &options, device, |bench, done| {
        if bar.as_ref().is_none_or(|(name, _)| *name != bench.name) {
            let total = args.limit.unwrap_or(usize::MAX).min(bench.items.len());
            let fresh = ProgressBar::new(total as u64).with_style(style.clone()).with_prefix(format!("{label} {}", bench.name));
            if let Some((_, old)) = bar.replace((bench.name.clone(), fresh)) {
                old.finish_and_clear();
            }
        }
        if let Some((_, b)) = &bar {
            b.set_position(done as u64);
        }
    });
    if let Some((_, b)) = bar {
        b.finish_and_clear();
    }
    let evaluation = evaluation?;
    let predictions = args.out.join("predictions");
    std::fs::create_dir_all(&predictions)?;
    for (bench, result) in plan.benches.iter().zip(&evaluation.results) {
        for bad in &result.malformed[bench.malformed.len()..] {
            eprintln!("warning: {}: row {} (line {}) skipped: {}", bench.path.display(), bad.index, bad.line, bad.reason);
        }
        write_predictions(&predictions.join(format!("{label}_{}.tsv", bench.name)), bench, result)?;
    }
    let heldout = match &args.heldout {
        Some(data) => {
            let model = Qwen3VlForConditionalGeneration::<B>::from_pretrained(dir, device, dtype)?;
            Some(heldout_loss(&model, data, Qwen3VlProcessor::from_dir(dir)?, args.max_length, args.limit)?)
        }
        None => None,
    };
    Ok(ModelRun { results: evaluation.results, heldout })
}

/// Evaluates `--model` (and `--base`), writes results.json and results.md, prints the table.
pub fn run(mut args: EvalArgs) -> Result<(), Box<dyn Error>> {
    args.model = crate::hub::model_dir(&args.model)?;
    args.base = args.base.as_deref().map(crate::hub::model_dir).transpose()?;
    if interlace_prune::registry::text_architecture(&args.model)?.is_some() {
        return crate::eval_text::run(&args);
    }
    if !args.dataset.is_empty() && args.dataset.len() != args.bench.len() {
        return Err(format!(
            "--dataset names {} dataset(s) for {} --bench file(s); give one per file (`auto` to detect)",
            args.dataset.len(),
            args.bench.len()
        )
        .into());
    }
    let mut datasets = Vec::with_capacity(args.bench.len());
    for i in 0..args.bench.len() {
        datasets.push(match args.dataset.get(i).map(String::as_str) {
            None | Some("auto") => None,
            Some(name) => Some(name.parse::<Dataset>()?),
        });
    }
    let benches = args.bench.iter().zip(datasets).map(|(path, dataset)| read_benchmark_as(path, args.strict, dataset)).collect::<Result<Vec<_>, _>>()?;
    for bench in &benches {
        for bad in &bench.malformed {
            eprintln!("warning: {}: row {} (line {}) skipped: {}", bench.path.display(), bad.index, bad.line, bad.reason);
        }
    }
    if benches.is_empty() && args.heldout.is_none() {
        return Err("nothing to evaluate: give --bench or --heldout (--perplexity and --choices are for text models)".into());
    }
    let mode = match args.scoring {
        Scoring::Generate => ScoringMode::Generate,
        Scoring::Loglik => ScoringMode::LogLikelihood,
    };
    let sampling = if args.greedy { Sampling::greedy() } else { Sampling { seed: args.seed, ..Sampling::vlmevalkit_qwen3vl() } };
    let plan = Plan { args: &args, benches: &benches, mode, sampling: sampling.clone() };
    let dtype = args.dtype.dtype();
    let (model_run, base_run) = with_backend!(args.backend, |B, device| {
        let model_run = run_model::<B>(&args.model, &device, dtype, "model", &plan)?;
        let base_run = match &args.base {
            Some(base) => Some(run_model::<B>(base, &device, dtype, "base", &plan)?),
            None => None,
        };
        Ok::<_, Box<dyn Error>>((model_run, base_run))
    })?;
    let (base_results, base_heldout) = match base_run {
        Some(run) => (run.results, run.heldout),
        None => (Vec::new(), None),
    };
    let base = args.base.as_ref().map(|b| b.display().to_string());
    let mut report = EvalReport::new(args.model.display().to_string(), base, mode, sampling, model_run.results, base_results);
    report.heldout = model_run.heldout;
    report.base_heldout = base_heldout;
    report.write(&args.out)?;
    print!("{}", report.markdown());
    eprintln!("wrote {}, {} and {}", args.out.join("results.json").display(), args.out.join("results.md").display(), args.out.join("predictions").display());
    Ok(())
}
