//! The whole INTERLACE pipeline in one program, on a model that really answers questions.
//!
//! With no arguments it runs on the embedded default: `fixtures/trained/shapes-qwen3vl`, a
//! 12-layer Qwen3-VL trained (by `fixtures/make_trained_fixtures.py`) on a synthetic visual task:
//! colours, shapes, counts and positions, asked as multiple choice, yes/no and short answers. On
//! a 2-core CPU it takes about a minute after the build:
//!
//! ```sh
//! cargo run -p interlace-prune --example prune_qwen3vl
//! ```
//!
//! It measures layer redundancy on calibration data, drops 25% of the text layers with the
//! INTERLACE rule, scores the model on held-out images before pruning, after pruning and after
//! the interleaved fine-tune of the neighbouring layers (VLMEvalKit's scoring, greedy replies),
//! and prints the similarity table, the plan, the scores, the relative performance, and the
//! parameter count and time to first token before and after.
//!
//! On a real checkpoint (build with `--features cuda` or `--features wgpu`):
//!
//! ```sh
//! cargo run --release -p interlace-prune --features cuda --example prune_qwen3vl -- \
//!     --model /models/Qwen3-VL-8B-Instruct --data finevision_1pct.jsonl --ratio 0.15 \
//!     --bench AI2D_TEST.tsv --bench POPE.tsv --backend cuda --dtype bf16 --epochs 1 --lr 1e-5
//! ```
//!
//! Everything it writes goes under `target/interlace-example/` (or `--work DIR`). It marks that
//! directory as its own and empties it on the next run; it never deletes a directory it did not
//! create: an existing, non-empty `--work` without its marker is refused.

use std::error::Error;
use std::path::{Path, PathBuf};

use interlace_prune::burn::backend::Autodiff;
use interlace_prune::burn::prelude::Backend;
use interlace_prune::eval::{read_benchmark, Benchmark, EvalOptions, PairedTtft, Sampling};
use interlace_prune::similarity::{CalibrationResult, Metric, Strategy};
use interlace_prune::surgery::NoProgress;
use interlace_prune::train::TrainConfig;
use interlace_prune::{
    compare_prefill_dirs, evaluate_dir, with_backend, AdaptOptions, BackendKind, CalibrationOptions, DirEvalOptions, DirEvaluation, FloatKind, Pipeline,
};

#[path = "support/work_dir.rs"]
mod work_dir;
use work_dir::claim_work_dir;

/// Command-line settings, defaulting to the embedded trained model and its data.
struct Settings {
    model: PathBuf,
    data: PathBuf,
    calib_data: PathBuf,
    benches: Vec<PathBuf>,
    limit: Option<usize>,
    ratio: f64,
    epochs: usize,
    lr: f64,
    work: PathBuf,
    backend: BackendKind,
    dtype: FloatKind,
}

fn trained() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/trained")
}

impl Settings {
    fn from_args() -> Result<Self, Box<dyn Error>> {
        let mut s = Settings {
            model: trained().join("shapes-qwen3vl"),
            data: trained().join("data/train.jsonl"),
            calib_data: trained().join("data/calibration.jsonl"),
            benches: ["shapes_mcq", "shapes_yesno", "shapes_open"].iter().map(|b| trained().join(format!("eval/{b}.tsv"))).collect(),
            limit: None,
            ratio: 0.25,
            epochs: 1,
            lr: ADAPT_LR,
            work: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/interlace-example"),
            backend: BackendKind::Cpu,
            dtype: FloatKind::F32,
        };
        let (mut calib_given, mut benches_given) = (false, false);
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--model" => s.model = value()?.into(),
                "--data" => s.data = value()?.into(),
                "--calib-data" => {
                    s.calib_data = value()?.into();
                    calib_given = true;
                }
                "--bench" => {
                    if !benches_given {
                        s.benches.clear();
                        benches_given = true;
                    }
                    s.benches.push(value()?.into());
                }
                "--limit" => s.limit = Some(value()?.parse()?),
                "--ratio" => s.ratio = value()?.parse()?,
                "--epochs" => s.epochs = value()?.parse()?,
                "--lr" => s.lr = value()?.parse()?,
                "--work" => s.work = value()?.into(),
                "--backend" => s.backend = value()?.parse()?,
                "--dtype" => s.dtype = value()?.parse()?,
                other => return Err(format!("unknown flag {other} (see the header of examples/prune_qwen3vl.rs)").into()),
            }
        }
        if !calib_given && s.model != trained().join("shapes-qwen3vl") {
            s.calib_data = s.data.clone();
        }
        Ok(s)
    }
}

/// Learning rate of the adaptation on the embedded model (its layers are small and were
/// trained at 1e-3; the paper's 1e-5 is for an 8B model).
const ADAPT_LR: f64 = 1e-4;

fn main() -> Result<(), Box<dyn Error>> {
    let s = Settings::from_args()?;
    with_backend!(s.backend, |B, device| run::<B>(&s, &device))
}

fn run<B: Backend>(s: &Settings, device: &B::Device) -> Result<(), Box<dyn Error>> {
    let started = std::time::Instant::now();
    let pipeline = Pipeline::new(&s.model, &s.work).with_dtype(s.dtype.dtype());
    claim_work_dir(&s.work)?;
    let benches = s.benches.iter().map(|b| read_benchmark(b, false)).collect::<Result<Vec<_>, _>>()?;
    println!("model: {}\n", s.model.display());

    let (result, summary) = pipeline.calibrate::<B>(&s.calib_data, &CalibrationOptions::default(), device, &mut |_| {})?;
    println!("similarity on {} samples ({} tokens):", summary.used, result.tokens);
    print_table(&result);

    let plan = pipeline.select(Strategy::Interlace, s.ratio, 42)?;
    println!("\nplan (ratio {}): drop {:?}, fine-tune {:?}, freeze {:?}", s.ratio, plan.drop, plan.finetune, plan.freeze);

    let evaluate = |dir: &Path| evaluate_dir::<B>(dir, &benches, &eval_options(s), device, |_, _| {});
    let base = evaluate(&s.model)?;
    let pruned = pipeline.prune(&plan, true, &mut NoProgress)?;
    println!("pruned: {} -> {} text layers, written to {}", pruned.layers_before, pruned.layers_after, pipeline.pruned_dir().display());
    let before_adapting = evaluate(&pipeline.pruned_dir())?;

    let adapt = AdaptOptions { train: TrainConfig { epochs: s.epochs, lr: s.lr, ..TrainConfig::default() }, force: true, ..AdaptOptions::default() };
    let trained_dir = s.work.join("trained");
    let (mut first, mut last) = (None, 0.0);
    let (report, _) = pipeline.adapt::<Autodiff<B>>(&plan, &s.data, &adapt, &trained_dir, &s.work.join("run"), std::slice::from_ref(device), |step| {
        first.get_or_insert(step.loss);
        last = step.loss;
    })?;
    println!("adapted {} steps: loss {:.3} -> {:.3}, written to {}", report.steps, first.unwrap_or(f64::NAN), last, trained_dir.display());
    let adapted = evaluate(&trained_dir)?;

    print_scores(&benches, &[("base", &base), ("pruned", &before_adapting), ("pruned + adapted", &adapted)]);
    let relative = |e: &DirEvaluation| 100.0 * e.mean_score().unwrap_or(f64::NAN) / base.mean_score().unwrap_or(f64::NAN);
    println!("\nrelative performance: {:.1}% after pruning, {:.1}% after adaptation", relative(&before_adapting), relative(&adapted));
    println!("parameters: {} -> {} ({:.1}% fewer)", base.params, adapted.params, 100.0 * (1.0 - adapted.params as f64 / base.params as f64));
    let speed: Vec<PairedTtft> =
        compare_prefill_dirs::<B>(&s.model, &trained_dir, &benches, &eval_options(s), PREFILL_PAIRS, device)?.into_iter().flatten().collect();
    if !speed.is_empty() {
        let mean = |f: fn(&PairedTtft) -> f64| speed.iter().map(f).sum::<f64>() / speed.len() as f64;
        println!(
            "time to first token: {:.2} ms -> {:.2} ms ({:.2}x faster prefill; base and pruned timed in alternation, median of {PREFILL_PAIRS} pairs)",
            mean(|p| p.base_ms),
            mean(|p| p.model_ms),
            mean(|p| p.speedup)
        );
    }
    println!("\ndone in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Timed pairs (base, then pruned, in alternation) per benchmark for the prefill speed-up.
const PREFILL_PAIRS: usize = 20;

/// VLMEvalKit's scoring with greedy replies (short: every answer is a word). Speed is timed
/// separately, base and pruned side by side ([`compare_prefill_dirs`]).
fn eval_options(s: &Settings) -> DirEvalOptions {
    DirEvalOptions {
        eval: EvalOptions { max_new_tokens: 8, sampling: Sampling::greedy(), limit: s.limit, ..EvalOptions::new(Vec::new()) },
        model_pixels: false,
        speed: None,
        dtype: s.dtype.dtype(),
    }
}

/// One line per benchmark, one column per model.
fn print_scores(benches: &[Benchmark], runs: &[(&str, &DirEvaluation)]) {
    println!("\n{:<16}{}", "benchmark", runs.iter().map(|(name, _)| format!("{name:>18}")).collect::<String>());
    for (i, bench) in benches.iter().enumerate() {
        let cells: String =
            runs.iter().map(|(_, e)| format!("{:>18}", e.results[i].score.map(|v| format!("{v:.1}")).unwrap_or_else(|| "n/a".into()))).collect();
        println!("{:<16}{cells}", bench.name);
    }
    let means: String = runs.iter().map(|(_, e)| format!("{:>18}", e.mean_score().map(|v| format!("{v:.1}")).unwrap_or_else(|| "n/a".into()))).collect();
    println!("{:<16}{means}", "mean");
}

fn print_table(result: &CalibrationResult) {
    println!("layer  {}", result.packs.iter().map(|p| format!("cos(h_i, h_i+{})", p.k)).collect::<Vec<_>>().join("  "));
    for layer in 0..result.n_layers {
        let cells: Vec<String> = result
            .packs
            .iter()
            .map(|p| {
                let cosine = p.summaries.iter().find(|(m, _)| *m == Metric::Cosine).map(|(_, s)| s);
                match cosine.and_then(|s| s.get(layer)) {
                    Some(summary) if summary.count > 0 => format!("{:>15.4}", summary.mean),
                    _ => format!("{:>15}", "-"),
                }
            })
            .collect();
        println!("{layer:>5}  {}", cells.join("  "));
    }
}
