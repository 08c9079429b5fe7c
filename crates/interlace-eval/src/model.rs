//! What the evaluator needs from a model: the log-likelihood of continuations and greedy replies.
//!
//! A trait rather than a concrete model so that every family that implements
//! [`IncrementalDecoder`] is evaluated by the same code, and scoring can be tested against a
//! model whose logits are fixed by hand.

use interlace_core::IncrementalDecoder;

use crate::choice::log_softmax;
use crate::sampling::Sampling;
use crate::EvalError;

/// A causal language model that can be evaluated.
pub trait EvalModel {
    /// The model's input type.
    type Input;

    /// For each continuation (token ids), `log p(continuation | prompt)`: the sum of the
    /// log-probabilities of its tokens, each given the prompt and the tokens before it.
    fn continuation_log_probs(&self, prompt: &Self::Input, continuations: &[Vec<u32>]) -> Result<Vec<f64>, EvalError>;

    /// Greedy reply to `prompt`: at most `max_new_tokens` tokens, ending after the first
    /// token of `eos` (included).
    fn greedy(&self, prompt: &Self::Input, max_new_tokens: usize, eos: &[u32]) -> Result<Vec<u32>, EvalError>;

    /// A reply decoded with `sampling` (the draw seeded for question number `question`).
    /// The default serves greedy settings only; models that decode incrementally sample too.
    fn generate(&self, prompt: &Self::Input, max_new_tokens: usize, eos: &[u32], sampling: &Sampling, question: u64) -> Result<Vec<u32>, EvalError> {
        let _ = question;
        if sampling.is_greedy() {
            self.greedy(prompt, max_new_tokens, eos)
        } else {
            Err(EvalError::Input("this model decodes greedily only".into()))
        }
    }
}

/// Wraps a model error.
pub(crate) fn model_error<E: std::error::Error + Send + Sync + 'static>(error: E) -> EvalError {
    EvalError::Model(Box::new(error))
}

/// Index of the largest value; the first one on ties (greedy decoding's choice).
pub(crate) fn argmax(values: &[f32]) -> u32 {
    values.iter().enumerate().fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) }).0 as u32
}

/// Every model that decodes incrementally can be evaluated.
impl<M: IncrementalDecoder> EvalModel for M {
    type Input = M::Input;

    fn continuation_log_probs(&self, prompt: &M::Input, continuations: &[Vec<u32>]) -> Result<Vec<f64>, EvalError> {
        // One prefill serves every continuation; multi-token ones continue on a copy of the
        // cache, so the image is encoded once per question, not once per option.
        let mut cache = self.new_cache();
        let first = log_softmax(&self.prefill_logits(prompt, &mut cache).map_err(model_error)?);
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
                    let step = log_softmax(&self.decode_logits(previous, &mut branch).map_err(model_error)?);
                    total += *step.get(token as usize).ok_or_else(|| EvalError::Input(format!("token {token} is outside the vocabulary")))?;
                    previous = token;
                }
            }
            scores.push(total);
        }
        Ok(scores)
    }

    fn greedy(&self, prompt: &M::Input, max_new_tokens: usize, eos: &[u32]) -> Result<Vec<u32>, EvalError> {
        self.generate(prompt, max_new_tokens, eos, &Sampling::greedy(), 0)
    }

    fn generate(&self, prompt: &M::Input, max_new_tokens: usize, eos: &[u32], sampling: &Sampling, question: u64) -> Result<Vec<u32>, EvalError> {
        let mut tokens = Vec::new();
        if max_new_tokens == 0 {
            return Ok(tokens);
        }
        let mut rng = sampling.rng(question);
        let mut cache = self.new_cache();
        let mut logits = self.prefill_logits(prompt, &mut cache).map_err(model_error)?;
        loop {
            let token = sampling.pick(&logits, &tokens, &mut rng);
            tokens.push(token);
            if eos.contains(&token) || tokens.len() >= max_new_tokens {
                return Ok(tokens);
            }
            logits = self.decode_logits(token, &mut cache).map_err(model_error)?;
        }
    }
}
