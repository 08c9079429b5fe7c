//! Time to first token and decode throughput.
//!
//! Time to first token is the prefill of the prompt (vision tower, every decoder layer, the
//! last position's logits read back to the host) and the choice of the first token; it leaves
//! out image decoding and preprocessing, which a pruned model does not change. Decode
//! throughput is greedy decode steps (one token each, logits read back) per second. Each is
//! the median over `repeats` runs after one warm-up run, so allocator and autotune warm-up
//! do not count.

use std::time::Instant;

use interlace_core::IncrementalDecoder;
use serde::Serialize;

use crate::model::{argmax, model_error};
use crate::EvalError;

/// Speed of one model on one prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpeedReport {
    /// Prompt length in tokens (image tokens included).
    pub prompt_tokens: usize,
    /// Median time to first token, milliseconds.
    pub ttft_ms: f64,
    /// Decode steps timed per run.
    pub decode_tokens: usize,
    /// Median decode throughput, tokens per second.
    pub decode_tokens_per_s: f64,
    /// Timed runs (after one warm-up).
    pub repeats: usize,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// One prefill and first-token choice; returns the cache, the token and the elapsed seconds.
pub(crate) fn time_first_token<M: IncrementalDecoder>(model: &M, input: &M::Input) -> Result<(M::Cache, u32, f64), EvalError> {
    let start = Instant::now();
    let mut cache = model.new_cache();
    let logits = model.prefill_logits(input, &mut cache).map_err(model_error)?;
    let token = argmax(&logits);
    Ok((cache, token, start.elapsed().as_secs_f64()))
}

/// Measures time to first token and decode throughput of `model` on `input`.
pub fn measure_speed<M: IncrementalDecoder>(model: &M, input: &M::Input, decode_tokens: usize, repeats: usize) -> Result<SpeedReport, EvalError> {
    if repeats == 0 || decode_tokens == 0 {
        return Err(EvalError::Input("speed needs at least one repeat and one decode token".into()));
    }
    let mut ttft = Vec::with_capacity(repeats);
    let mut decode = Vec::with_capacity(repeats);
    for run in 0..=repeats {
        let (mut cache, mut token, first) = time_first_token(model, input)?;
        let start = Instant::now();
        for _ in 0..decode_tokens {
            token = argmax(&model.decode_logits(token, &mut cache).map_err(model_error)?);
        }
        let elapsed = start.elapsed().as_secs_f64();
        if run > 0 {
            ttft.push(first * 1000.0);
            decode.push(decode_tokens as f64 / elapsed.max(f64::MIN_POSITIVE));
        }
    }
    Ok(SpeedReport { prompt_tokens: model.input_len(input), ttft_ms: median(ttft), decode_tokens, decode_tokens_per_s: median(decode), repeats })
}
