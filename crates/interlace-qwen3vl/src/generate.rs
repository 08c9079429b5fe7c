//! Text generation with a KV cache: greedy or seeded temperature / top-k / top-p sampling.

use std::path::Path;

use burn::prelude::{Backend, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::cache::KvCache;
use crate::input::Qwen3VlInput;
use crate::model::Qwen3VlForConditionalGeneration;
use crate::{Qwen3VlError, Result};
use interlace_core::DecoderStack;

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Sampling {
    /// Always the most likely token (ties: the lowest id, as `argmax`).
    Greedy,
    /// Sample from the softmax of `logits / temperature`, restricted to the `top_k` most likely
    /// tokens and then to the smallest set whose probability reaches `top_p`.
    Sample {
        /// Softmax temperature (> 0).
        temperature: f64,
        /// Nucleus mass in (0, 1].
        top_p: f64,
        /// Keep only this many candidates (`None`: all).
        top_k: Option<usize>,
        /// Seed of the random generator: same seed, same tokens.
        seed: u64,
    },
}

/// Settings of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// Upper bound on generated tokens.
    pub max_new_tokens: usize,
    /// Token choice.
    pub sampling: Sampling,
    /// Generation stops after producing any of these.
    pub eos_token_ids: Vec<u32>,
}

impl GenerationConfig {
    /// Greedy decoding of at most `max_new_tokens`, stopping at `eos_token_ids`.
    pub fn greedy(max_new_tokens: usize, eos_token_ids: Vec<u32>) -> Self {
        Self { max_new_tokens, sampling: Sampling::Greedy, eos_token_ids }
    }

    /// Reads the eos ids of `dir/generation_config.json` (greedy, `max_new_tokens` given).
    /// Without that file, the eos ids are empty and generation runs to `max_new_tokens`.
    pub fn from_dir(dir: impl AsRef<Path>, max_new_tokens: usize) -> Result<Self> {
        let path = dir.as_ref().join("generation_config.json");
        if !path.exists() {
            return Ok(Self::greedy(max_new_tokens, Vec::new()));
        }
        let text = std::fs::read_to_string(&path).map_err(|source| Qwen3VlError::Io { path: path.clone(), source })?;
        let json: Value = serde_json::from_str(&text).map_err(|e| Qwen3VlError::Config {
            path: path.clone(),
            field: "<document>".into(),
            reason: format!("not valid JSON: {e}"),
        })?;
        let bad = |reason: &str| Qwen3VlError::Config { path: path.clone(), field: "eos_token_id".into(), reason: reason.into() };
        let eos = match json.get("eos_token_id") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Number(n)) => vec![n.as_u64().ok_or_else(|| bad("expected a token id"))? as u32],
            Some(Value::Array(items)) => items.iter().map(|v| v.as_u64().map(|v| v as u32).ok_or_else(|| bad("expected token ids"))).collect::<Result<_>>()?,
            Some(_) => return Err(bad("expected a token id or a list of ids")),
        };
        Ok(Self::greedy(max_new_tokens, eos))
    }
}

/// Result of [`generate`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GenerationOutput {
    /// Length of the prompt in tokens.
    pub prompt_tokens: usize,
    /// Generated token ids (including the eos token if one was produced).
    pub new_tokens: Vec<u32>,
    /// Whether generation ended on an eos token rather than the length limit.
    pub stopped_at_eos: bool,
}

/// Generates a continuation of `input` with a KV cache.
///
/// `on_token` sees every new token as it is produced (for streaming output).
pub fn generate<B: Backend>(
    model: &Qwen3VlForConditionalGeneration<B>,
    input: &Qwen3VlInput,
    config: &GenerationConfig,
    mut on_token: impl FnMut(u32),
) -> Result<GenerationOutput> {
    let mut sampler = Sampler::new(&config.sampling)?;
    let mut cache = KvCache::new(model.num_layers());
    let mut output = GenerationOutput { prompt_tokens: input.input_ids.len(), new_tokens: Vec::new(), stopped_at_eos: false };
    if config.max_new_tokens == 0 {
        return Ok(output);
    }
    let mut logits = model.prefill(input, &mut cache)?;
    loop {
        let token = sampler.next(logits)?;
        output.new_tokens.push(token);
        on_token(token);
        if config.eos_token_ids.contains(&token) {
            output.stopped_at_eos = true;
            break;
        }
        if output.new_tokens.len() >= config.max_new_tokens {
            break;
        }
        logits = model.decode_step(token, &mut cache)?;
    }
    Ok(output)
}

/// Chooses tokens from logits according to a [`Sampling`] rule.
struct Sampler {
    sampling: Sampling,
    rng: Option<StdRng>,
}

impl Sampler {
    fn new(sampling: &Sampling) -> Result<Self> {
        let rng = match sampling {
            Sampling::Greedy => None,
            Sampling::Sample { temperature, top_p, top_k, seed } => {
                // Written so that NaN fails both checks.
                let temperature_ok = *temperature > 0.0;
                let top_p_ok = *top_p > 0.0 && *top_p <= 1.0;
                if !temperature_ok || !top_p_ok || *top_k == Some(0) {
                    return Err(Qwen3VlError::Input(format!(
                        "invalid sampling settings: temperature {temperature} (> 0), top_p {top_p} (in (0, 1]), top_k {top_k:?} (>= 1)"
                    )));
                }
                Some(StdRng::seed_from_u64(*seed))
            }
        };
        Ok(Self { sampling: sampling.clone(), rng })
    }

    fn next<B: Backend>(&mut self, logits: Tensor<B, 1>) -> Result<u32> {
        let values: Vec<f32> =
            logits.cast(burn::tensor::DType::F32).into_data().into_vec::<f32>().map_err(|e| Qwen3VlError::Input(format!("cannot read logits: {e:?}")))?;
        if values.iter().any(|v| v.is_nan()) {
            return Err(Qwen3VlError::Input("the model produced NaN logits".into()));
        }
        Ok(match (&self.sampling, self.rng.as_mut()) {
            (Sampling::Sample { temperature, top_p, top_k, .. }, Some(rng)) => sample(&values, *temperature, *top_p, *top_k, rng),
            _ => argmax(&values),
        })
    }
}

/// Index of the largest value; the first one on ties (greedy decoding's choice).
pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best as u32
}

fn sample(logits: &[f32], temperature: f64, top_p: f64, top_k: Option<usize>, rng: &mut StdRng) -> u32 {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    order.truncate(top_k.unwrap_or(order.len()).max(1));
    let max = logits[order[0]] as f64;
    let weights: Vec<f64> = order.iter().map(|&i| ((logits[i] as f64 - max) / temperature).exp()).collect();
    let total: f64 = weights.iter().sum();
    // Nucleus: the smallest prefix whose mass reaches top_p (always at least one token).
    let mut kept = 0;
    let mut mass = 0.0;
    while kept < weights.len() && (kept == 0 || mass < top_p) {
        mass += weights[kept] / total;
        kept += 1;
    }
    let draw = rng.random::<f64>() * weights[..kept].iter().sum::<f64>();
    let mut acc = 0.0;
    for (i, w) in weights[..kept].iter().enumerate() {
        acc += w;
        if draw < acc {
            return order[i] as u32;
        }
    }
    order[kept - 1] as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_prefers_the_first_of_equals() {
        assert_eq!(argmax(&[0.0, 2.0, 2.0, 1.0]), 1);
    }

    #[test]
    fn tiny_top_p_is_greedy_and_seeds_repeat() {
        let logits = [0.1, 3.0, 2.9, -1.0];
        let mut rng = StdRng::seed_from_u64(7);
        assert_eq!(sample(&logits, 1.0, 1e-6, None, &mut rng), 1);
        let draws = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..20).map(|_| sample(&logits, 1.0, 1.0, None, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draws(3), draws(3));
        assert!(draws(3).iter().all(|&t| t < 4));
        let mut rng = StdRng::seed_from_u64(1);
        assert!((0..50).all(|_| [1, 2].contains(&sample(&logits, 1.0, 1.0, Some(2), &mut rng))));
    }

    #[test]
    fn invalid_sampling_settings_are_refused() {
        let bad = Sampling::Sample { temperature: 0.0, top_p: 0.9, top_k: None, seed: 0 };
        assert!(Sampler::new(&bad).is_err());
    }
}
