//! The whole INTERLACE pipeline in one program.
//!
//! With no arguments it runs on the embedded default — a tiny random Qwen3-VL checkpoint and a
//! small image+text data set committed under `fixtures/` — on CPU in well under two minutes:
//!
//! ```sh
//! cargo run -p interlace-prune --example prune_qwen3vl
//! ```
//!
//! On a real checkpoint (build with `--features cuda` or `--features wgpu`):
//!
//! ```sh
//! cargo run --release -p interlace-prune --features cuda --example prune_qwen3vl -- \
//!     --model /models/Qwen3-VL-8B-Instruct --data finevision_1pct.jsonl --ratio 0.15 \
//!     --backend cuda --dtype bf16 --epochs 1 --lr 1e-5
//! ```
//!
//! It prints the similarity table, the plan, parameter counts before and after, and a
//! generation before and after; everything it writes goes under `target/interlace-example/`
//! (or `--work DIR`).

use std::error::Error;
use std::path::{Path, PathBuf};

use interlace_prune::burn::backend::Autodiff;
use interlace_prune::burn::prelude::Backend;
use interlace_prune::core::DecoderStack;
use interlace_prune::qwen3vl::processor::{ChatMessage, ContentPart, Qwen3VlProcessor};
use interlace_prune::qwen3vl::{generate, GenerationConfig, Qwen3VlForConditionalGeneration};
use interlace_prune::similarity::{CalibrationResult, Metric, Strategy};
use interlace_prune::surgery::NoProgress;
use interlace_prune::train::TrainConfig;
use interlace_prune::{with_backend, AdaptOptions, BackendKind, CalibrationOptions, FloatKind, Pipeline};

/// Command-line settings, defaulting to the embedded tiny model and data.
struct Settings {
    model: PathBuf,
    data: PathBuf,
    calib_data: PathBuf,
    image: PathBuf,
    ratio: f64,
    epochs: usize,
    lr: f64,
    work: PathBuf,
    backend: BackendKind,
    dtype: FloatKind,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

impl Settings {
    fn from_args() -> Result<Self, Box<dyn Error>> {
        let mut s = Settings {
            model: fixtures().join("models/tiny-b"),
            data: fixtures().join("train/conversations.jsonl"),
            calib_data: fixtures().join("calibration/calib.jsonl"),
            image: fixtures().join("images/landscape.png"),
            ratio: 0.2,
            epochs: 30,
            lr: 1e-3,
            work: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/interlace-example"),
            backend: BackendKind::Ndarray,
            dtype: FloatKind::F32,
        };
        let mut calib_given = false;
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
                "--image" => s.image = value()?.into(),
                "--ratio" => s.ratio = value()?.parse()?,
                "--epochs" => s.epochs = value()?.parse()?,
                "--lr" => s.lr = value()?.parse()?,
                "--work" => s.work = value()?.into(),
                "--backend" => s.backend = value()?.parse()?,
                "--dtype" => s.dtype = value()?.parse()?,
                other => return Err(format!("unknown flag {other} (see the header of examples/prune_qwen3vl.rs)").into()),
            }
        }
        if !calib_given && s.model != fixtures().join("models/tiny-b") {
            s.calib_data = s.data.clone();
        }
        Ok(s)
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let s = Settings::from_args()?;
    with_backend!(s.backend, |B, device| run::<B>(&s, &device))
}

fn run<B: Backend>(s: &Settings, device: &B::Device) -> Result<(), Box<dyn Error>> {
    let started = std::time::Instant::now();
    let pipeline = Pipeline::new(&s.model, &s.work).with_dtype(s.dtype.dtype());
    if s.work.exists() {
        std::fs::remove_dir_all(&s.work)?;
    }
    println!("model: {}\n", s.model.display());
    let before = describe::<B>(&s.model, &s.image, device)?;

    let (result, summary) = pipeline.calibrate::<B>(&s.calib_data, &CalibrationOptions::default(), device, &mut |_| {})?;
    println!("similarity on {} samples ({} tokens):", summary.used, result.tokens);
    print_table(&result);

    let plan = pipeline.select(Strategy::Interlace, s.ratio, 42)?;
    println!("\nplan (ratio {}): drop {:?}, fine-tune {:?}, freeze {:?}", s.ratio, plan.drop, plan.finetune, plan.freeze);

    let pruned = pipeline.prune(&plan, true, &mut NoProgress)?;
    println!("pruned: {} -> {} text layers, written to {}", pruned.layers_before, pruned.layers_after, pipeline.pruned_dir().display());

    let adapt = AdaptOptions { train: TrainConfig { epochs: s.epochs, lr: s.lr, ..TrainConfig::default() }, force: true, ..AdaptOptions::default() };
    let trained_dir = s.work.join("trained");
    let mut last = 0.0;
    let mut first = None;
    let (report, _) = pipeline.adapt::<Autodiff<B>>(&plan, &s.data, &adapt, &trained_dir, &s.work.join("run"), std::slice::from_ref(device), |step| {
        first.get_or_insert(step.loss);
        last = step.loss;
    })?;
    println!("adapted {} steps: loss {:.3} -> {:.3}, written to {}\n", report.steps, first.unwrap_or(f64::NAN), last, trained_dir.display());

    let after = describe::<B>(&trained_dir, &s.image, device)?;
    println!("parameters: {} -> {} ({:.1}% fewer)", before.0, after.0, 100.0 * (1.0 - after.0 as f64 / before.0 as f64));
    println!("generation before: {:?}", before.1);
    println!("generation after:  {:?}", after.1);
    println!("\ndone in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Parameter count and a short greedy generation for one image.
fn describe<B: Backend>(dir: &Path, image: &Path, device: &B::Device) -> Result<(usize, String), Box<dyn Error>> {
    let model = Qwen3VlForConditionalGeneration::<B>::from_pretrained(dir, device, interlace_prune::burn::tensor::DType::F32)?;
    let processor = Qwen3VlProcessor::from_dir(dir)?;
    let messages = [ChatMessage::user(vec![ContentPart::image_path(image), ContentPart::text("Describe this image.")])];
    let input = processor.process(&messages, true)?.into();
    let output = generate(&model, &input, &GenerationConfig::from_dir(dir, 12)?, |_| {})?;
    Ok((model.param_count(), processor.decode(&output.new_tokens, true)?))
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
