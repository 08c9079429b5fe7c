//! `docs/results.md`: the INTERLACE paper's comparison of layer-selection rules, reproduced on
//! the embedded trained model (`fixtures/trained/shapes-qwen3vl`, 12 text layers).
//!
//! ```sh
//! cargo run -p interlace-prune --example reproduce_results
//! ```
//!
//! For each ratio (12.5% and 25% of the text layers) and each selection rule — `interlace`,
//! `interlace_oa`, `interlace_tn`, `consecutive`, `random` (3 seeds), `lowest-influence`,
//! `angular-block`, `angular-block-last-token`, SLEB and its one-shot variant — it prunes the
//! model, scores it on the held-out benchmarks (VLMEvalKit's rules, greedy replies), adapts the
//! plan's fine-tune layers with the same budget for every rule (one epoch, same learning rate),
//! scores it again, and times its prefill against the base model's (the two in alternation,
//! [`compare_prefill_dirs`], so the load of a shared machine does not skew the ratio). The rules that choose no fine-tune layers
//! (lowest-influence, angular-block*, SLEB) fine-tune the kept layer after each dropped one.
//! It writes the table to `docs/results.md` (or `--out FILE`) and its work under
//! `target/interlace-results/` (or `--work DIR`, guarded as in `prune_qwen3vl`). That is 24
//! prune-score-adapt-score runs; each took about 3 minutes on a 2-core machine (2026-12-02), so
//! the whole page takes over an hour there (`--ratios 0.25` or `--limit N` for a quicker look).

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use interlace_prune::burn::backend::Autodiff;
use interlace_prune::burn::prelude::Backend;
use interlace_prune::core::{DecoderStack, Plan};
use interlace_prune::eval::{read_benchmark, Benchmark, EvalOptions, PairedTtft, Sampling};
use interlace_prune::qwen3vl::processor::Qwen3VlProcessor;
use interlace_prune::qwen3vl::Qwen3VlForConditionalGeneration;
use interlace_prune::similarity::{
    n_drop_for, plan_for_drop, sample_order, select_by_loss, select_with, CalibrationData, ChatInputBuilder, FinetuneRule, InputBuilder, LossRule,
    LossSelectionConfig, SelectOptions, SimilarityTables, Strategy,
};
use interlace_prune::surgery::NoProgress;
use interlace_prune::train::TrainConfig;
use interlace_prune::{
    compare_prefill_dirs, evaluate_dir, with_backend, AdaptOptions, BackendKind, CalibrationOptions, DirEvalOptions, DirEvaluation, FloatKind, Pipeline,
};

#[path = "support/work_dir.rs"]
mod work_dir;
use work_dir::claim_work_dir;

/// Learning rate of every adaptation (the embedded model's layers were trained at 1e-3).
const ADAPT_LR: f64 = 1e-4;
/// Seeds of the `random` rule.
const RANDOM_SEEDS: [u64; 3] = [1, 2, 3];

struct Settings {
    model: PathBuf,
    data: PathBuf,
    calib_data: PathBuf,
    benches: Vec<PathBuf>,
    ratios: Vec<f64>,
    epochs: usize,
    lr: f64,
    limit: Option<usize>,
    work: PathBuf,
    out: PathBuf,
    backend: BackendKind,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Settings {
    fn from_args() -> Result<Self, Box<dyn Error>> {
        let trained = root().join("fixtures/trained");
        let mut s = Settings {
            model: trained.join("shapes-qwen3vl"),
            data: trained.join("data/train.jsonl"),
            calib_data: trained.join("data/calibration.jsonl"),
            benches: ["shapes_mcq", "shapes_yesno", "shapes_open"].iter().map(|b| trained.join(format!("eval/{b}.tsv"))).collect(),
            ratios: vec![0.125, 0.25],
            epochs: 1,
            lr: ADAPT_LR,
            limit: None,
            work: root().join("target/interlace-results"),
            out: root().join("docs/results.md"),
            backend: BackendKind::Cpu,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--data" => s.data = value()?.into(),
                "--ratios" => s.ratios = value()?.split(',').map(|r| r.trim().parse()).collect::<Result<_, _>>()?,
                "--epochs" => s.epochs = value()?.parse()?,
                "--lr" => s.lr = value()?.parse()?,
                "--limit" => s.limit = Some(value()?.parse()?),
                "--work" => s.work = value()?.into(),
                "--out" => s.out = value()?.into(),
                "--backend" => s.backend = value()?.parse()?,
                other => return Err(format!("unknown flag {other} (see the header of examples/reproduce_results.rs)").into()),
            }
        }
        Ok(s)
    }
}

/// One pruned-and-adapted configuration.
struct Row {
    ratio: f64,
    rule: String,
    plan: Result<Plan, String>,
    before: Option<f64>,
    after: Option<f64>,
    /// Prefill speed-up over the base, mean over the benchmarks.
    speedup: Option<f64>,
    /// Times to first token of the base and of the adapted model in the same measurement,
    /// milliseconds (means over the benchmarks).
    ttft_ms: Option<(f64, f64)>,
}

/// Timed pairs (base, then pruned, in alternation) per benchmark for the prefill speed-up.
const PREFILL_PAIRS: usize = 20;

fn main() -> Result<(), Box<dyn Error>> {
    let s = Settings::from_args()?;
    with_backend!(s.backend, |B, device| run::<B>(&s, &device))
}

fn run<B: Backend>(s: &Settings, device: &B::Device) -> Result<(), Box<dyn Error>> {
    let started = std::time::Instant::now();
    claim_work_dir(&s.work)?;
    let benches = s.benches.iter().map(|b| read_benchmark(b, false)).collect::<Result<Vec<_>, _>>()?;
    let options = DirEvalOptions {
        eval: EvalOptions { max_new_tokens: 8, sampling: Sampling::greedy(), limit: s.limit, ..EvalOptions::new(Vec::new()) },
        model_pixels: false,
        speed: None,
        dtype: burn_f32(),
    };
    let evaluate = |dir: &Path| evaluate_dir::<B>(dir, &benches, &options, device, |_, _| {});

    let calibration = Pipeline::new(&s.model, s.work.join("calibration"));
    calibration.calibrate::<B>(&s.calib_data, &CalibrationOptions::default(), device, &mut |_| {})?;
    let tables = SimilarityTables::from_dir(&calibration.similarity_dir())?;
    let base = evaluate(&s.model)?;
    eprintln!("base: {:.1} mean score", base.mean_score().unwrap_or(f64::NAN));
    let loss_inputs = calibration_inputs(&s.model, &s.calib_data)?;
    let model = Qwen3VlForConditionalGeneration::<B>::from_pretrained(&s.model, device, burn_f32())?;

    let mut rows = Vec::new();
    for &ratio in &s.ratios {
        for (rule, plan) in plans(&tables, &model, &loss_inputs, ratio) {
            let row = match &plan {
                Ok(plan) => {
                    let work = s.work.join(format!("{ratio}-{rule}"));
                    let (before, after, trained) = prune_and_adapt::<B>(s, plan, &work, device, &evaluate)?;
                    let speed: Vec<PairedTtft> =
                        compare_prefill_dirs::<B>(&s.model, &trained, &benches, &options, PREFILL_PAIRS, device)?.into_iter().flatten().collect();
                    let mean = |f: fn(&PairedTtft) -> f64| (!speed.is_empty()).then(|| speed.iter().map(f).sum::<f64>() / speed.len() as f64);
                    eprintln!(
                        "{ratio} {rule}: drop {:?}: {:.1} -> {:.1}",
                        plan.drop,
                        before.mean_score().unwrap_or(f64::NAN),
                        after.mean_score().unwrap_or(f64::NAN)
                    );
                    Row {
                        ratio,
                        rule,
                        plan: Ok(plan.clone()),
                        before: before.mean_score(),
                        after: after.mean_score(),
                        speedup: mean(|p| p.speedup),
                        ttft_ms: mean(|p| p.base_ms).zip(mean(|p| p.model_ms)),
                    }
                }
                Err(reason) => Row { ratio, rule, plan: Err(reason.clone()), before: None, after: None, speedup: None, ttft_ms: None },
            };
            rows.push(row);
        }
    }
    let markdown = render(s, &benches, &base, &rows, started.elapsed().as_secs_f64());
    let partial = s.out.with_extension("md.partial");
    std::fs::write(&partial, &markdown)?;
    std::fs::rename(&partial, &s.out)?;
    println!("{markdown}");
    eprintln!("wrote {} in {:.0} s", s.out.display(), started.elapsed().as_secs_f64());
    Ok(())
}

fn burn_f32() -> interlace_prune::burn::tensor::DType {
    FloatKind::F32.dtype()
}

/// Every rule's plan at `ratio`, labelled; a rule that cannot produce one says why.
fn plans<B: Backend>(
    tables: &SimilarityTables,
    model: &Qwen3VlForConditionalGeneration<B>,
    inputs: &[interlace_prune::qwen3vl::Qwen3VlInput],
    ratio: f64,
) -> Vec<(String, Result<Plan, String>)> {
    let mut plans = Vec::new();
    let strategies = [
        Strategy::Interlace,
        Strategy::InterlaceOa,
        Strategy::InterlaceTn,
        Strategy::Consecutive,
        Strategy::LowestInfluence,
        Strategy::AngularBlock,
        Strategy::AngularBlockLastToken,
    ];
    for strategy in strategies {
        let options = SelectOptions { protect: Vec::new(), finetune: (!strategy.defines_finetune()).then_some(FinetuneRule::Next) };
        plans.push((strategy.name().to_string(), select_with(tables, strategy, ratio, 42, &options).map_err(|e| e.to_string())));
    }
    for seed in RANDOM_SEEDS {
        plans.push((format!("random (seed {seed})"), select_with(tables, Strategy::Random, ratio, seed, &SelectOptions::default()).map_err(|e| e.to_string())));
    }
    for rule in [LossRule::Sleb, LossRule::OneShot] {
        let n_layers = model.num_layers();
        let plan = n_drop_for(n_layers, ratio).map_err(|e| e.to_string()).and_then(|n_drop| {
            let config = LossSelectionConfig { rule, n_drop, protect: LossSelectionConfig::sleb_barriers(n_layers) };
            let selection = select_by_loss(model, inputs, &config, &mut || {}).map_err(|e| e.to_string())?;
            plan_for_drop(n_layers, rule.name(), ratio, &selection.order, FinetuneRule::Next).map_err(|e| e.to_string())
        });
        plans.push((rule.name().to_string(), plan));
    }
    plans
}

/// The calibration records as model inputs (for the loss-based rules).
fn calibration_inputs(model: &Path, data: &Path) -> Result<Vec<interlace_prune::qwen3vl::Qwen3VlInput>, Box<dyn Error>> {
    let builder = ChatInputBuilder::new(Qwen3VlProcessor::from_dir(model)?);
    let mut records = CalibrationData::open(data, None)?;
    let order = sample_order(records.len(), None, 42, None)?;
    order.into_iter().map(|i| Ok(builder.build(&records.record(i)?)?)).collect()
}

/// Prunes by `plan` into `work/pruned`, scores it, adapts it into `work/trained`, scores again;
/// returns both scores and the adapted checkpoint's directory.
fn prune_and_adapt<B: Backend>(
    s: &Settings,
    plan: &Plan,
    work: &Path,
    device: &B::Device,
    evaluate: &dyn Fn(&Path) -> Result<DirEvaluation, interlace_prune::PipelineError>,
) -> Result<(DirEvaluation, DirEvaluation, PathBuf), Box<dyn Error>> {
    let pipeline = Pipeline::new(&s.model, work);
    pipeline.prune(plan, true, &mut NoProgress)?;
    let before = evaluate(&pipeline.pruned_dir())?;
    let adapt = AdaptOptions { train: TrainConfig { epochs: s.epochs, lr: s.lr, ..TrainConfig::default() }, force: true, ..AdaptOptions::default() };
    let trained = work.join("trained");
    pipeline.adapt::<Autodiff<B>>(plan, &s.data, &adapt, &trained, &work.join("run"), std::slice::from_ref(device), |_| {})?;
    let after = evaluate(&trained)?;
    Ok((before, after, trained))
}

fn mean_and_spread(values: &[f64]) -> (f64, f64) {
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let spread = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64).sqrt();
    (mean, spread)
}

/// Which rule came out best after adaptation at `ratio`, and where INTERLACE ranks: written from
/// the measured scores, so the page says what happened, whichever rule wins. The random seeds count
/// as one entry (their mean).
fn ranking(rows: &[Row], ratio: f64) -> String {
    let at_ratio = || rows.iter().filter(|r| r.ratio == ratio);
    let mut entries: Vec<(String, f64)> = at_ratio().filter(|r| !r.rule.starts_with("random")).filter_map(|r| Some((r.rule.clone(), r.after?))).collect();
    let random: Vec<f64> = at_ratio().filter(|r| r.rule.starts_with("random")).filter_map(|r| r.after).collect();
    if !random.is_empty() {
        entries.push(("random (mean)".into(), mean_and_spread(&random).0));
    }
    entries.sort_by(|a, b| b.1.total_cmp(&a.1));
    let Some((best, best_score)) = entries.first() else {
        return "No rule produced an adapted model.".into();
    };
    let order = entries.iter().map(|(rule, score)| format!("{rule} {score:.1}")).collect::<Vec<_>>().join(" > ");
    match entries.iter().position(|(rule, _)| rule == "interlace") {
        Some(0) if entries.get(1).is_some_and(|(_, second)| second == best_score) => {
            format!("After adaptation INTERLACE ties for the highest score ({best_score:.1}). Order: {order}.")
        }
        Some(0) => format!("After adaptation INTERLACE scores highest ({best_score:.1}). Order: {order}."),
        Some(rank) => format!(
            "After adaptation INTERLACE ranks {} of {} ({:.1}); {best} scores highest ({best_score:.1}). Order: {order}.",
            rank + 1,
            entries.len(),
            entries[rank].1
        ),
        None => format!("INTERLACE produced no adapted model; {best} scores highest ({best_score:.1}). Order: {order}."),
    }
}

fn render(s: &Settings, benches: &[Benchmark], base: &DirEvaluation, rows: &[Row], seconds: f64) -> String {
    let base_score = base.mean_score().unwrap_or(f64::NAN);
    // The base's time to first token over every paired measurement (one per adapted model).
    let base_ttfts: Vec<f64> = rows.iter().filter_map(|r| r.ttft_ms.map(|(b, _)| b)).collect();
    let base_ttft = base_ttfts.iter().sum::<f64>() / base_ttfts.len() as f64;
    let mut md = String::new();
    let _ = writeln!(md, "# Results: INTERLACE and the other selection rules on the embedded trained model\n");
    let _ = writeln!(md, "Produced by `cargo run -p interlace-prune --example reproduce_results` ({seconds:.0} s). Do not edit by hand.\n");
    let names: Vec<&str> = benches.iter().map(|b| b.name.as_str()).collect();
    let _ = writeln!(
        md,
        "Model: `fixtures/trained/shapes-qwen3vl` ({} text layers, {} parameters). Score: mean over {} of VLMEvalKit's score (greedy replies){}. \
         Adaptation: the plan's fine-tune layers only, {} epoch(s) of `{}` at lr {}, AdamW, cosine, 3% warm-up, clip 1.0 — \
         the same budget for every rule. Rules that choose no fine-tune layers (lowest-influence, angular-block*, SLEB, one-shot) fine-tune the kept layer after \
         each dropped one. Relative = 100 · score / base score. Prefill speed-up = base time to first token / adapted model's time to first token on the first question of each \
         benchmark, the two models timed in alternation ({PREFILL_PAIRS} pairs, median of the per-pair ratios), averaged over the benchmarks.\n",
        base.layers,
        base.params,
        names.join(", "),
        s.limit.map(|l| format!(", first {l} questions each")).unwrap_or_default(),
        s.epochs,
        s.data.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        s.lr
    );
    let per_bench: Vec<String> =
        benches.iter().zip(&base.results).map(|(b, r)| format!("{} {}", b.name, r.score.map(|v| format!("{v:.1}")).unwrap_or_default())).collect();
    let _ =
        writeln!(md, "Base model: {base_score:.1} ({}); time to first token {base_ttft:.2} ms (mean over the paired measurements).\n", per_bench.join(", "));
    for &ratio in &s.ratios {
        let _ = writeln!(md, "## Ratio {}%\n", ratio * 100.0);
        let _ = writeln!(md, "| rule | dropped | fine-tuned | score before adaptation | score after | relative (%) | prefill speed-up |");
        let _ = writeln!(md, "|---|---|---|---:|---:|---:|---:|");
        let fmt = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "n/a".into());
        for row in rows.iter().filter(|r| r.ratio == ratio) {
            match &row.plan {
                Ok(plan) => {
                    let _ = writeln!(
                        md,
                        "| {} | {:?} | {:?} | {} | {} | {} | {} |",
                        row.rule,
                        plan.drop,
                        plan.finetune,
                        fmt(row.before),
                        fmt(row.after),
                        fmt(row.after.map(|a| 100.0 * a / base_score)),
                        row.speedup.map(|v| format!("{v:.2}×")).unwrap_or_else(|| "n/a".into())
                    );
                }
                Err(_) => {
                    let _ = writeln!(md, "| {} | — | — | n/a | n/a | n/a | n/a |", row.rule);
                }
            }
        }
        let random: Vec<&Row> = rows.iter().filter(|r| r.ratio == ratio && r.rule.starts_with("random") && r.after.is_some()).collect();
        if !random.is_empty() {
            let (before, before_spread) = mean_and_spread(&random.iter().filter_map(|r| r.before).collect::<Vec<_>>());
            let (after, after_spread) = mean_and_spread(&random.iter().filter_map(|r| r.after).collect::<Vec<_>>());
            let _ = writeln!(
                md,
                "| **random, mean ± spread of {}** | | | {before:.1} ± {before_spread:.1} | {after:.1} ± {after_spread:.1} | {:.1} | |",
                random.len(),
                100.0 * after / base_score
            );
        }
        let _ = writeln!(md, "\n{}", ranking(rows, ratio));
        for row in rows.iter().filter(|r| r.ratio == ratio) {
            if let Err(reason) = &row.plan {
                let _ = writeln!(md, "\n{}: no plan: {reason}", row.rule);
            }
        }
        let _ = writeln!(md);
    }
    md
}
