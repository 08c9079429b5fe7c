//! What the evaluator needs from a model: the log-likelihood of continuations and greedy replies.
//!
//! A trait rather than the concrete Qwen3-VL type so that scoring can be tested against a
//! model whose logits are fixed by hand.

use burn::prelude::Backend;
use burn::tensor::Tensor;
use interlace_core::DecoderStack;
use interlace_qwen3vl::generate::argmax;
use interlace_qwen3vl::{KvCache, Qwen3VlForConditionalGeneration, Qwen3VlInput};

use crate::choice::log_softmax;
use crate::EvalError;

/// A causal language model that can be evaluated.
pub trait EvalModel {
    /// For each continuation (token ids), `log p(continuation | prompt)`: the sum of the
    /// log-probabilities of its tokens, each given the prompt and the tokens before it.
    fn continuation_log_probs(&self, prompt: &Qwen3VlInput, continuations: &[Vec<u32>]) -> Result<Vec<f64>, EvalError>;

    /// Greedy reply to `prompt`: at most `max_new_tokens` tokens, ending after the first
    /// token of `eos` (included).
    fn greedy(&self, prompt: &Qwen3VlInput, max_new_tokens: usize, eos: &[u32]) -> Result<Vec<u32>, EvalError>;
}

/// The logits of a `[vocab]` tensor on the host, in f32 whatever the model dtype.
pub(crate) fn host_logits<B: Backend>(logits: Tensor<B, 1>) -> Result<Vec<f32>, EvalError> {
    logits.into_data().convert::<f32>().to_vec::<f32>().map_err(|e| EvalError::Input(format!("cannot read logits back from the device: {e:?}")))
}

impl<B: Backend> EvalModel for Qwen3VlForConditionalGeneration<B> {
    fn continuation_log_probs(&self, prompt: &Qwen3VlInput, continuations: &[Vec<u32>]) -> Result<Vec<f64>, EvalError> {
        // One prefill serves every continuation; multi-token ones continue on a copy of the
        // cache, so the image is encoded once per question, not once per option.
        let mut cache = KvCache::new(self.num_layers());
        let first = log_softmax(&host_logits(self.prefill(prompt, &mut cache)?)?);
        let mut scores = Vec::with_capacity(continuations.len());
        for tokens in continuations {
            let Some((&head, rest)) = tokens.split_first() else {
                return Err(EvalError::Input("an answer continuation has no tokens".into()));
            };
            let mut total = *first.get(head as usize).ok_or_else(|| EvalError::Input(format!("token {head} is outside the vocabulary")))?;
            if !rest.is_empty() {
                let mut branch = cache.clone();
                let mut previous = head;
                for &token in rest {
                    let step = log_softmax(&host_logits(self.decode_step(previous, &mut branch)?)?);
                    total += *step.get(token as usize).ok_or_else(|| EvalError::Input(format!("token {token} is outside the vocabulary")))?;
                    previous = token;
                }
            }
            scores.push(total);
        }
        Ok(scores)
    }

    fn greedy(&self, prompt: &Qwen3VlInput, max_new_tokens: usize, eos: &[u32]) -> Result<Vec<u32>, EvalError> {
        let mut tokens = Vec::new();
        if max_new_tokens == 0 {
            return Ok(tokens);
        }
        let mut cache = KvCache::new(self.num_layers());
        let mut logits = host_logits(self.prefill(prompt, &mut cache)?)?;
        loop {
            let token = argmax(&logits);
            tokens.push(token);
            if eos.contains(&token) || tokens.len() >= max_new_tokens {
                return Ok(tokens);
            }
            logits = host_logits(self.decode_step(token, &mut cache)?)?;
        }
    }
}
