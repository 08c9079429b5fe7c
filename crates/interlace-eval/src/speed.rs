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

/// Time to first token of a model and its base, measured in alternation on the same prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedTtft {
    /// Median time to first token of the base, milliseconds.
    pub base_ms: f64,
    /// Median time to first token of the model, milliseconds.
    pub model_ms: f64,
    /// Median over the pairs of `base time / model time`: the prefill speed-up. Above 1 means
    /// the model answers sooner.
    pub speedup: f64,
    /// Timed pairs (after one warm-up run of each model).
    pub pairs: usize,
}

/// Measures the prefill speed-up of `model` over `base` on `input`, timing the two in
/// alternation (base then model, then model then base, ...) and taking the median of the
/// per-pair ratios. On a shared machine the load drifts over seconds; two medians taken
/// minutes apart (as [`measure_speed`] on each model would) carry that drift into the ratio,
/// while adjacent runs see nearly the same load, and swapping the order every pair cancels
/// any advantage of running first.
pub fn compare_ttft<M: IncrementalDecoder>(base: &M, model: &M, input: &M::Input, pairs: usize) -> Result<PairedTtft, EvalError> {
    if pairs == 0 {
        return Err(EvalError::Input("a prefill comparison needs at least one pair".into()));
    }
    time_first_token(base, input)?;
    time_first_token(model, input)?;
    let (mut base_ms, mut model_ms, mut ratios) = (Vec::with_capacity(pairs), Vec::with_capacity(pairs), Vec::with_capacity(pairs));
    for pair in 0..pairs {
        let (b, m) = if pair % 2 == 0 {
            let b = time_first_token(base, input)?.2;
            (b, time_first_token(model, input)?.2)
        } else {
            let m = time_first_token(model, input)?.2;
            (time_first_token(base, input)?.2, m)
        };
        base_ms.push(b * 1000.0);
        model_ms.push(m * 1000.0);
        ratios.push(b / m.max(f64::MIN_POSITIVE));
    }
    Ok(PairedTtft { base_ms: median(base_ms), model_ms: median(model_ms), speedup: median(ratios), pairs })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// A decoder whose prefill does `work` rounds of arithmetic and logs its name.
    struct Busy<'a> {
        name: &'static str,
        work: u64,
        log: &'a RefCell<Vec<&'static str>>,
    }

    impl IncrementalDecoder for Busy<'_> {
        type Input = ();
        type Cache = ();
        type Error = std::convert::Infallible;

        fn new_cache(&self) {}

        fn input_len(&self, _: &()) -> usize {
            1
        }

        fn prefill_logits(&self, _: &(), _: &mut ()) -> Result<Vec<f32>, Self::Error> {
            self.log.borrow_mut().push(self.name);
            let mut x = 1u64;
            for i in 0..self.work {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
            }
            Ok(vec![0.0, (x % 2) as f32])
        }

        fn decode_logits(&self, _: u32, _: &mut ()) -> Result<Vec<f32>, Self::Error> {
            Ok(vec![0.0, 1.0])
        }
    }

    #[test]
    fn runs_alternate_and_the_order_swaps_every_pair() {
        let log = RefCell::new(Vec::new());
        let base = Busy { name: "base", work: 1000, log: &log };
        let model = Busy { name: "model", work: 1000, log: &log };
        let paired = compare_ttft(&base, &model, &(), 3).unwrap();
        assert_eq!(*log.borrow(), ["base", "model", "base", "model", "model", "base", "base", "model"]);
        assert_eq!(paired.pairs, 3);
        assert!(paired.speedup.is_finite() && paired.speedup > 0.0, "{paired:?}");
        assert!(paired.base_ms > 0.0 && paired.model_ms > 0.0, "{paired:?}");
    }

    #[test]
    fn zero_pairs_is_an_error() {
        let log = RefCell::new(Vec::new());
        let base = Busy { name: "base", work: 1, log: &log };
        assert!(matches!(compare_ttft(&base, &base, &(), 0), Err(EvalError::Input(_))));
        assert!(log.borrow().is_empty());
    }
}
