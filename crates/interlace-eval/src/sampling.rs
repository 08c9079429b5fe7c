//! Choosing the next token: greedy, or sampled as vLLM samples for VLMEvalKit.
//!
//! VLMEvalKit runs Qwen3-VL-8B-Instruct through vLLM with temperature 0.7, top-p 0.8, top-k 20,
//! presence penalty 1.5, repetition penalty 1.0 and up to 16384 new tokens
//! ([`Sampling::vlmevalkit_qwen3vl`]). The sampler applies them in vLLM's order: the presence
//! penalty on tokens already generated, then temperature, top-k, top-p, and a draw. The draw
//! uses a seeded generator, so a run is repeatable, but it is not vLLM's random stream: sampled
//! replies match VLMEvalKit's in distribution, not token for token. Greedy decoding
//! ([`Sampling::greedy`]) is exact and the better choice for comparing a pruned model with its
//! base on few questions.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// Decoding settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sampling {
    /// Softmax temperature; 0 means greedy (the most likely token, first on ties).
    pub temperature: f32,
    /// Keep the smallest set of most likely tokens whose probability reaches this (1 = all).
    pub top_p: f32,
    /// Keep at most this many most likely tokens (0 = all).
    pub top_k: usize,
    /// Subtracted from the logit of every token the reply already contains.
    pub presence_penalty: f32,
    /// Seed of the draw; each question uses `seed + its line in the file`.
    pub seed: u64,
}

impl Sampling {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        Self { temperature: 0.0, top_p: 1.0, top_k: 0, presence_penalty: 0.0, seed: 0 }
    }

    /// VLMEvalKit's settings for `Qwen3-VL-8B-Instruct` (and the 2B/4B Instruct models).
    pub fn vlmevalkit_qwen3vl() -> Self {
        Self { temperature: 0.7, top_p: 0.8, top_k: 20, presence_penalty: 1.5, seed: 0 }
    }

    /// Whether this is greedy decoding.
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }

    /// A generator for one question.
    pub(crate) fn rng(&self, question: u64) -> StdRng {
        StdRng::seed_from_u64(self.seed.wrapping_add(question))
    }

    /// The next token after `logits`, given the tokens generated so far.
    pub(crate) fn pick(&self, logits: &[f32], generated: &[u32], rng: &mut StdRng) -> u32 {
        if self.is_greedy() {
            return crate::model::argmax(logits);
        }
        let mut scores: Vec<(u32, f32)> = logits.iter().enumerate().map(|(i, &l)| (i as u32, l)).collect();
        if self.presence_penalty != 0.0 {
            for (token, score) in scores.iter_mut() {
                if generated.contains(token) {
                    *score -= self.presence_penalty;
                }
            }
        }
        for (_, score) in scores.iter_mut() {
            *score /= self.temperature;
        }
        scores.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if self.top_k > 0 {
            scores.truncate(self.top_k.max(1));
        }
        let max = scores[0].1;
        let weights: Vec<f64> = scores.iter().map(|(_, s)| f64::from(s - max).exp()).collect();
        let total: f64 = weights.iter().sum();
        let mut kept = 0;
        let mut cumulative = 0.0;
        for w in &weights {
            kept += 1;
            cumulative += w / total;
            if cumulative >= f64::from(self.top_p) {
                break;
            }
        }
        let kept_total: f64 = weights[..kept].iter().sum();
        let mut draw = rng.random::<f64>() * kept_total;
        for (i, w) in weights[..kept].iter().enumerate() {
            draw -= w;
            if draw < 0.0 {
                return scores[i].0;
            }
        }
        scores[kept - 1].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_argmax_and_sampling_stays_in_the_nucleus() {
        let logits = [0.0, 5.0, 4.9, -3.0];
        assert_eq!(Sampling::greedy().pick(&logits, &[], &mut Sampling::greedy().rng(0)), 1);
        let nucleus = Sampling { temperature: 1.0, top_p: 0.5, top_k: 0, presence_penalty: 0.0, seed: 3 };
        let mut rng = nucleus.rng(0);
        assert!((0..50).all(|_| nucleus.pick(&logits, &[], &mut rng) == 1), "top-p 0.5 keeps only the best token");
        let two = Sampling { temperature: 1.0, top_p: 1.0, top_k: 2, presence_penalty: 0.0, seed: 3 };
        let mut rng = two.rng(0);
        let picks: Vec<u32> = (0..200).map(|_| two.pick(&logits, &[], &mut rng)).collect();
        assert!(picks.contains(&1) && picks.contains(&2) && picks.iter().all(|&t| t == 1 || t == 2));
        let penalised = Sampling { temperature: 1.0, top_p: 0.5, top_k: 0, presence_penalty: 10.0, seed: 3 };
        let mut rng = penalised.rng(0);
        assert_eq!(penalised.pick(&logits, &[1], &mut rng), 2, "the presence penalty pushes a used token out");
    }
}
