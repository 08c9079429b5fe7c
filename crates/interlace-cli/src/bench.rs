//! `interlace bench`: forward, calibration (pack-1/2/3 similarities in the same pass) and
//! training-step throughput of a real-size model with random weights (no download), for
//! comparison with the PyTorch reference on the same card.

use std::error::Error;
use std::time::Instant;

use burn::backend::Autodiff;
use burn::optim::Optimizer;
use burn::prelude::Backend;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::DType;
use clap::Args;
use interlace_core::{DecoderStack, LayerSet};
use interlace_qwen3vl::{Qwen3VlConfig, Qwen3VlForConditionalGeneration, Qwen3VlInput};
use interlace_similarity::{CalibrationConfig, Calibrator};
use interlace_train::{example_gradients, pytorch_adamw, TrainConfig, TrainingExample};

use interlace_prune::with_backend;
use interlace_prune::{BackendKind, FloatKind};

/// Arguments of `interlace bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Published architecture to instantiate with random weights: 2B, 4B or 8B.
    #[arg(long, default_value = "8B")]
    preset: String,
    /// Override the number of text layers (e.g. 2 for a quick CPU smoke run).
    #[arg(long)]
    layers: Option<usize>,
    /// Tokens per sequence (image tokens included).
    #[arg(long, default_value_t = 2048)]
    tokens: usize,
    /// Put one square image of this many pixels a side (a multiple of 32) at the start of
    /// the sequence, for image+text measurements: 448 gives 196 image tokens.
    #[arg(long)]
    image_side: Option<usize>,
    /// Layers dropped before the training-step measurement (the paper's 15% of 36: 5).
    #[arg(long, default_value_t = 5)]
    drop: usize,
    /// Trainable layers in the training-step measurement.
    #[arg(long, default_value_t = 5)]
    trainable: usize,
    /// Untimed iterations first (autotuning, allocation).
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed iterations.
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Skip the training-step measurement.
    #[arg(long)]
    no_train: bool,
    /// Only measure the training step (so the reported peak memory is the training step's).
    #[arg(long, conflicts_with = "no_train")]
    only_train: bool,
    /// Activation checkpointing in the training step.
    #[arg(long)]
    activation_checkpointing: bool,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendKind::Cpu)]
    backend: BackendKind,
    /// Float dtype.
    #[arg(long, value_enum, default_value_t = FloatKind::F32)]
    dtype: FloatKind,
}

/// Runs the measurements and prints one JSON object.
pub fn run(args: BenchArgs) -> Result<(), Box<dyn Error>> {
    let mut config = Qwen3VlConfig::preset(&args.preset).ok_or_else(|| format!("unknown preset `{}` (2B, 4B, 8B)", args.preset))?;
    if let Some(layers) = args.layers {
        if !(1..=interlace_core::MAX_LAYERS).contains(&layers) {
            return Err(format!("--layers {layers} must be from 1 to {}", interlace_core::MAX_LAYERS).into());
        }
        config.text.num_hidden_layers = layers;
    }
    if !(1..=MAX_TOKENS).contains(&args.tokens) {
        return Err(format!("--tokens {} must be from 1 to {MAX_TOKENS}", args.tokens).into());
    }
    // Checked before any measurement, so a bad combination fails at once, not after the forward pass.
    let layers = match args.no_train {
        true => None,
        false => Some(training_layers(config.text.num_hidden_layers, args.drop, args.trainable)?),
    };
    let mut report = with_backend!(args.backend, |B, device| measure::<B>(&args, &config, layers.as_ref(), &device))?;
    report["cpu_matmul"] = serde_json::Value::String(cpu_matmul(args.backend));
    println!("{report}");
    Ok(())
}

/// Which kernel multiplied the linear layers (forward and training step) on the CPU backend.
fn cpu_matmul(backend: BackendKind) -> String {
    match backend {
        #[cfg(feature = "flex")]
        BackendKind::Cpu => match interlace_prune::use_openblas() {
            Ok(library) => format!("OpenBLAS ({library})"),
            Err(why) => format!("burn-flex gemm ({why})"),
        },
        _ => "backend's own".to_string(),
    }
}

fn tokens_input(config: &Qwen3VlConfig, n: usize, image_side: Option<usize>) -> Result<Qwen3VlInput, Box<dyn Error>> {
    // Ordinary text ids (no image pads), spread over the vocabulary.
    let text = |count: usize| (0..count).map(|i| (i * 7919 % 150_000 % config.text.vocab_size) as u32);
    let Some(side) = image_side else { return Ok(Qwen3VlInput::text(text(n).collect())) };
    let merge = config.vision.patch_size * config.vision.spatial_merge_size;
    if side == 0 || side % merge != 0 {
        return Err(format!("--image-side {side} must be a positive multiple of {merge}").into());
    }
    let grid = side / config.vision.patch_size;
    // (side / merge)² tokens, computed without overflow for any --image-side.
    let image_tokens = (side / merge).checked_mul(side / merge).filter(|t| t.saturating_add(2) <= n);
    let Some(image_tokens) = image_tokens else {
        return Err(format!("an image of {side} pixels a side takes more than the --tokens {n} (with its start and end tokens)").into());
    };
    let mut ids = vec![config.vision_start_token_id];
    ids.extend(std::iter::repeat_n(config.image_token_id, image_tokens));
    ids.push(config.vision_end_token_id);
    ids.extend(text(n - ids.len()));
    // Pixel values as the processor leaves them (normalised to about [-1, 1]); the content
    // does not matter for speed.
    let pixel_values = (0..grid * grid * config.vision.patch_dim()).map(|i| ((i * 7919 % 2001) as f32 / 1000.0) - 1.0).collect();
    Ok(Qwen3VlInput { input_ids: ids, pixel_values, image_grid_thw: vec![[1, grid, grid]] })
}

fn timed(warmup: usize, iters: usize, mut f: impl FnMut() -> Result<(), Box<dyn Error>>) -> Result<f64, Box<dyn Error>> {
    for _ in 0..warmup {
        f()?;
    }
    let start = Instant::now();
    for _ in 0..iters.max(1) {
        f()?;
    }
    Ok(start.elapsed().as_secs_f64() / iters.max(1) as f64)
}

fn measure<B: Backend>(
    args: &BenchArgs,
    config: &Qwen3VlConfig,
    layers: Option<&(LayerSet, LayerSet)>,
    device: &B::Device,
) -> Result<serde_json::Value, Box<dyn Error>> {
    let dtype = args.dtype.dtype();
    let input = tokens_input(config, args.tokens, args.image_side)?;
    let mut report = serde_json::json!({
        "preset": args.preset, "layers": config.text.num_hidden_layers, "tokens": args.tokens, "image_side": args.image_side,
        "backend": format!("{:?}", args.backend), "dtype": format!("{dtype:?}"),
    });
    if !args.only_train {
        let model = Qwen3VlForConditionalGeneration::<B>::random(config, device, dtype)?;
        let forward = timed(args.warmup, args.iters, || {
            // Reading one value back waits for the device to finish the pass.
            let logits = model.forward(&input)?;
            let _ = logits.slice([0..1, 0..1, 0..1]).into_data();
            Ok(())
        })?;
        // Calibration: the same pass with the pack-1/2/3 similarity observer attached, stopping
        // after the final norm (no output head: calibration needs no logits).
        let mut calibrator = Calibrator::new(CalibrationConfig::default(), config.text.num_hidden_layers)?;
        let calibration = timed(args.warmup, args.iters, || {
            calibrator.run_sample(&model, &input)?;
            Ok(())
        })?;
        report["forward_seconds"] = forward.into();
        report["forward_tokens_per_s"] = (args.tokens as f64 / forward).into();
        report["calibration_seconds"] = calibration.into();
        report["calibration_tokens_per_s"] = (args.tokens as f64 / calibration).into();
    }
    if let Some(layers) = layers {
        let step = train_step::<Autodiff<B>>(args, config, layers, device, &input)?;
        report["train_step_seconds"] = step.into();
        report["train_tokens_per_s"] = (args.tokens as f64 / step).into();
        report["activation_checkpointing"] = args.activation_checkpointing.into();
    }
    if let Some(peak) = peak_resident_mib() {
        report["peak_host_memory_mib"] = peak.into();
    }
    Ok(report)
}

/// Longest sequence `--tokens` accepts (four times Qwen3-VL's 262,144 positions).
const MAX_TOKENS: usize = 1 << 20;

/// The layers dropped (source numbering) and trained (pruned numbering) in the training-step
/// measurement: every third layer from the second-to-last down is dropped and the layers just
/// below the drops are trained (the interleaved shape). Where that pattern does not fit (few
/// layers), the top layers are dropped and the bottom ones trained. Never panics: impossible
/// counts are errors.
fn training_layers(n: usize, drop: usize, trainable: usize) -> Result<(LayerSet, LayerSet), String> {
    if drop.checked_add(trainable).is_none_or(|total| total > n) {
        return Err(format!("--drop {drop} + --trainable {trainable} exceed {n} layers"));
    }
    if drop == n {
        return Err(format!("--drop {drop} would remove all {n} layers"));
    }
    let interleaved: Option<Vec<usize>> = (0..drop).map(|k| n.checked_sub(2)?.checked_sub(k.checked_mul(3)?)).collect();
    let dropped = interleaved.unwrap_or_else(|| (n - drop..n).collect());
    let dropped = LayerSet::for_removal(dropped, n).map_err(|e| format!("--drop {drop}: {e}"))?;
    let kept = n - drop;
    let below: Option<Vec<usize>> = (0..trainable).map(|k| kept.checked_sub(2)?.checked_sub(3 * k.min(kept / 3))).collect();
    let trained = match below.map(|layers| LayerSet::new(layers, kept)) {
        Some(Ok(set)) => set,
        _ => LayerSet::new(0..trainable, kept).map_err(|e| format!("--trainable {trainable}: {e}"))?,
    };
    Ok((dropped, trained))
}

/// The process's peak resident memory (Linux `VmHWM`): the CPU backend's peak memory.
fn peak_resident_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// One optimizer step as `interlace train` runs it: trainable layers in f32 (master weights),
/// the rest in the chosen dtype, gradients of the masked loss, AdamW.
fn train_step<B: AutodiffBackend>(
    args: &BenchArgs,
    config: &Qwen3VlConfig,
    (drop, trainable): &(LayerSet, LayerSet),
    device: &B::Device,
    input: &Qwen3VlInput,
) -> Result<f64, Box<dyn Error>> {
    let model = Qwen3VlForConditionalGeneration::<B>::random(config, device, args.dtype.dtype())?;
    let model = model.remove_layers(drop)?;
    let mut model = Some(model.cast_layers(trainable, DType::F32).set_trainable_layers(trainable)?);
    let mut optimizer = pytorch_adamw(0.0).init::<B, Qwen3VlForConditionalGeneration<B>>();
    // The trainer's own choice, with its default head chunk size.
    let backward = TrainConfig { activation_checkpointing: args.activation_checkpointing, ..TrainConfig::default() }.backward();
    let example = TrainingExample { input: input.clone(), labels: input.input_ids.iter().map(|&t| t as i64).collect() };
    timed(args.warmup, args.iters, || {
        let current = model.take().expect("model present between steps");
        let (grads, _) = example_gradients(&current, &example, 1.0, backward)?;
        let next = optimizer.step(1e-5, current, grads);
        let _ = next.model.language_model.norm.weight.val().slice(0..1).into_data();
        model = Some(next);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::training_layers;

    #[test]
    fn layer_counts_that_once_underflowed_give_sets_or_errors() {
        // The paper's shape: 36 layers, drop 5, train 5.
        let (drop, trained) = training_layers(36, 5, 5).unwrap();
        assert_eq!(drop.as_slice(), &[22, 25, 28, 31, 34]);
        assert_eq!(trained.len(), 5);
        // These used to compute `n - 2 - 3k` or `kept - 2` below zero.
        for (n, d, t) in [(2, 1, 1), (3, 2, 1), (3, 2, 0), (1, 0, 1), (4, 3, 1), (5, 2, 3)] {
            let (drop, trained) = training_layers(n, d, t).unwrap_or_else(|e| panic!("{n} {d} {t}: {e}"));
            assert_eq!((drop.len(), trained.len()), (d, t), "{n} {d} {t}");
            assert_eq!(drop.num_layers(), n);
            assert_eq!(trained.num_layers(), n - d);
        }
        for (n, d, t) in [(2, 2, 0), (1, 1, 0), (0, 0, 0), (3, 2, 2), (4, usize::MAX, 1), (4, 1, usize::MAX)] {
            assert!(training_layers(n, d, t).is_err(), "{n} {d} {t}");
        }
    }
}
