//! A checkpoint directory on benchmarks, as `interlace eval` runs it.

use std::path::Path;

use burn::prelude::Backend;
use burn::tensor::DType;
use interlace_core::DecoderStack;
use interlace_eval::vlmeval::pixel_bounds;
use interlace_eval::{compare_ttft, evaluate_benchmark, measure_speed, prepare_input, Benchmark, BenchmarkResult, EvalOptions, PairedTtft};
use interlace_qwen3vl::processor::Qwen3VlProcessor;
use interlace_qwen3vl::{GenerationConfig, Qwen3VlError, Qwen3VlForConditionalGeneration, Qwen3VlInput};

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
        set_pixel_bounds(&mut processor, bench, options.model_pixels);
        let mut result = evaluate_benchmark(&model, &processor, bench, &eval, |done| progress(bench, done))?;
        if let Some((decode_tokens, repeats)) = options.speed {
            if let Some(prompt) = timing_prompt(&processor, bench) {
                result.speed = Some(measure_speed(&model, &prompt, decode_tokens, repeats)?);
            }
        }
        results.push(result);
    }
    Ok(DirEvaluation { results, params: model.param_count(), layers: model.num_layers() })
}

/// Prefill speed-up of the checkpoint in `dir` over the one in `base`, per benchmark, on the
/// prompt [`evaluate_dir`] times (the first question with an image, under the same image
/// bounds), measured by [`compare_ttft`]: the two models run in alternation for `pairs` pairs,
/// so load that drifts during a long run does not end up in the ratio. `None` for a benchmark
/// without a usable question. `options.eval` and `options.speed` are not used.
pub fn compare_prefill_dirs<B: Backend>(
    base: &Path,
    dir: &Path,
    benches: &[Benchmark],
    options: &DirEvalOptions,
    pairs: usize,
    device: &B::Device,
) -> Result<Vec<Option<PairedTtft>>, PipelineError> {
    let mut processor = Qwen3VlProcessor::from_dir(dir).map_err(Qwen3VlError::from)?;
    let base_model = Qwen3VlForConditionalGeneration::<B>::from_pretrained(base, device, options.dtype)?;
    let model = Qwen3VlForConditionalGeneration::<B>::from_pretrained(dir, device, options.dtype)?;
    let mut comparisons = Vec::with_capacity(benches.len());
    for bench in benches {
        set_pixel_bounds(&mut processor, bench, options.model_pixels);
        let comparison = timing_prompt(&processor, bench).map(|prompt| compare_ttft(&base_model, &model, &prompt, pairs)).transpose()?;
        comparisons.push(comparison);
    }
    Ok(comparisons)
}

/// Gives `processor` the image bounds VLMEvalKit uses for `bench`, unless the model's own are kept.
fn set_pixel_bounds(processor: &mut Qwen3VlProcessor, bench: &Benchmark, model_pixels: bool) {
    if !model_pixels {
        let config = processor.image_config_mut();
        (config.min_pixels, config.max_pixels) = pixel_bounds(bench.dataset, config.patch_size * config.merge_size);
    }
}

/// The question speed is timed on: the benchmark's first that has an image and can be prepared
/// (images are most of a real prompt's prefill), else its first that can be prepared.
fn timing_prompt(processor: &Qwen3VlProcessor, bench: &Benchmark) -> Option<Qwen3VlInput> {
    let items = bench.items.iter();
    items.clone().filter(|i| !i.images.is_empty()).chain(items).find_map(|item| prepare_input(processor, bench, item).ok())
}
