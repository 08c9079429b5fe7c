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
//! (or `--work DIR`). It marks that directory as its own and empties it on the next run; it never
//! deletes a directory it did not create: an existing, non-empty `--work` without its marker is
//! refused.

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
    claim_work_dir(&s.work)?;
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

/// File that marks a work directory as this example's own.
const MARKER: &str = ".interlace-example";

/// Makes `work` an empty directory this example owns, never deleting anything it did not make.
///
/// A missing or empty directory is taken (and marked). A directory holding the marker was made
/// by an earlier run of this example and is emptied. Any other directory — `--work ~` by
/// mistake, or a folder with someone's files — is refused: the example does not delete what
/// it did not create.
fn claim_work_dir(work: &Path) -> Result<(), Box<dyn Error>> {
    let marker = work.join(MARKER);
    match std::fs::symlink_metadata(work) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(work)?,
        Err(e) => return Err(format!("cannot use --work {}: {e}", work.display()).into()),
        Ok(meta) if !meta.is_dir() => return Err(format!("--work {} exists and is not a directory", work.display()).into()),
        Ok(_) if marker.is_file() => {
            // Ours: remove what an earlier run wrote, entry by entry (the directory itself stays).
            for entry in std::fs::read_dir(work)? {
                let path = entry?.path();
                if path.is_dir() && !path.is_symlink() {
                    std::fs::remove_dir_all(&path)?
                } else {
                    std::fs::remove_file(&path)?
                }
            }
        }
        Ok(_) if std::fs::read_dir(work)?.next().is_none() => {}
        Ok(_) => {
            return Err(format!(
                "--work {} exists, is not empty and was not made by this example (no {MARKER} file); choose another --work, or empty it yourself",
                work.display()
            )
            .into())
        }
    }
    std::fs::write(&marker, "made by examples/prune_qwen3vl.rs; the example empties this directory on every run\n")?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_work_dir_with_user_content_is_never_deleted() {
        let root = tempfile::tempdir().unwrap();
        let theirs = root.path().join("theirs");
        std::fs::create_dir_all(theirs.join("sub")).unwrap();
        std::fs::write(theirs.join("notes.txt"), "keep me").unwrap();
        let err = claim_work_dir(&theirs).unwrap_err().to_string();
        assert!(err.contains("was not made by this example"), "{err}");
        assert_eq!(std::fs::read_to_string(theirs.join("notes.txt")).unwrap(), "keep me");
        assert!(theirs.join("sub").is_dir());

        // A file, not a directory: refused, untouched.
        let file = root.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(claim_work_dir(&file).is_err());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");

        // New and empty directories are taken and marked; a marked one is emptied on the next run.
        let ours = root.path().join("ours");
        claim_work_dir(&ours).unwrap();
        assert!(ours.join(MARKER).is_file());
        std::fs::create_dir_all(ours.join("pruned")).unwrap();
        std::fs::write(ours.join("plan.json"), "{}").unwrap();
        claim_work_dir(&ours).unwrap();
        let left: Vec<_> = std::fs::read_dir(&ours).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from(MARKER)]);
        let empty = root.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        claim_work_dir(&empty).unwrap();
        assert!(empty.join(MARKER).is_file());
    }
}
