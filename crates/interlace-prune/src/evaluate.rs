//! A checkpoint directory on benchmarks, as `interlace eval` runs it.

use std::path::Path;

use burn::prelude::Backend;
use burn::tensor::DType;
use interlace_core::DecoderStack;
use interlace_eval::vlmeval::pixel_bounds;
use interlace_eval::{evaluate_benchmark, measure_speed, prepare_input, Benchmark, BenchmarkResult, EvalOptions};
use interlace_qwen3vl::processor::Qwen3VlProcessor;
use interlace_qwen3vl::{GenerationConfig, Qwen3VlError, Qwen3VlForConditionalGeneration};

use crate::PipelineError;

/// How [`evaluate_dir`] runs.
#[derive(Debug, Clone, PartialEq)]
pub struct DirEvalOptions {
    /// Scoring, decoding and limits; the end-of-reply tokens are the model's own
    /// (`generation_config.json`), whatever `eos_token_ids` says.
    pub eval: EvalOptions,
    /// Keep the model's `preprocessor_config.json` image bounds instead of the ones VLMEvalKit's
    /// Qwen3-VL wrapper uses ([`pixel_bounds`]).
    pub model_pixels: bool,
    /// Measure time to first token and decode speed on each benchmark's first image question:
    /// `(decode tokens, timed repeats)`.
    pub speed: Option<(usize, usize)>,
    /// Float dtype of weights and activations.
    pub dtype: DType,
}

/// What [`evaluate_dir`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct DirEvaluation {
    /// One result per benchmark, in order (with its speed when asked for).
    pub results: Vec<BenchmarkResult>,
    /// Parameters of the model.
    pub params: usize,
    /// Text layers of the model.
    pub layers: usize,
}

impl DirEvaluation {
    /// Mean of the benchmarks' headline scores (those scored by rules).
    pub fn mean_score(&self) -> Option<f64> {
        let scores: Vec<f64> = self.results.iter().filter_map(|r| r.score).collect();
        (!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64)
    }

    /// Mean time to first token over the benchmarks that were timed, in milliseconds.
    pub fn mean_ttft_ms(&self) -> Option<f64> {
        let times: Vec<f64> = self.results.iter().filter_map(|r| r.speed.as_ref().map(|s| s.ttft_ms)).collect();
        (!times.is_empty()).then(|| times.iter().sum::<f64>() / times.len() as f64)
    }
}

/// Loads the checkpoint in `dir` and evaluates it on every benchmark, calling
/// `progress(benchmark, questions done)` as it goes.
pub fn evaluate_dir<B: Backend>(
    dir: &Path,
    benches: &[Benchmark],
    options: &DirEvalOptions,
    device: &B::Device,
    mut progress: impl FnMut(&Benchmark, usize),
) -> Result<DirEvaluation, PipelineError> {
    let mut processor = Qwen3VlProcessor::from_dir(dir).map_err(Qwen3VlError::from)?;
    let model = Qwen3VlForConditionalGeneration::<B>::from_pretrained(dir, device, options.dtype)?;
    let eval = EvalOptions { eos_token_ids: GenerationConfig::from_dir(dir, 1)?.eos_token_ids, ..options.eval.clone() };
    let mut results = Vec::with_capacity(benches.len());
    for bench in benches {
        if !options.model_pixels {
            let config = processor.image_config_mut();
            (config.min_pixels, config.max_pixels) = pixel_bounds(bench.dataset, config.patch_size * config.merge_size);
        }
        let mut result = evaluate_benchmark(&model, &processor, bench, &eval, |done| progress(bench, done))?;
        if let Some((decode_tokens, repeats)) = options.speed {
            let items = bench.items.iter();
            let prompt = items.clone().filter(|i| !i.images.is_empty()).chain(items).find_map(|item| prepare_input(&processor, bench, item).ok());
            if let Some(prompt) = prompt {
                result.speed = Some(measure_speed(&model, &prompt, decode_tokens, repeats)?);
            }
        }
        results.push(result);
    }
    Ok(DirEvaluation { results, params: model.param_count(), layers: model.num_layers() })
}
