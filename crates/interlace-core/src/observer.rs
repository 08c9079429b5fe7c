use burn::prelude::{Backend, Tensor};

use crate::CoreError;

/// Which tensor a stack hands to the observer for each hidden-state index.
///
/// For most decoders both are the same. They differ where a model adds something to the
/// residual stream between layers (Qwen3-VL's deepstack visual features) or normalises the
/// last state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TapPoint {
    /// Exactly what Hugging Face transformers returns with `output_hidden_states=True`:
    /// index 0 is the input embedding, index `i` the raw output of layer `i-1`, and the last
    /// index the output of the final norm.
    #[default]
    Transformers,
    /// The residual stream as the next layer consumes it (after any injection such as
    /// deepstack), and the last index the un-normalised output of the last layer.
    Residual,
}

/// Receives the hidden states `h_0 … h_L` of one forward pass, in order.
///
/// Implementations reduce what they need (for example cosine similarities between `h_i` and
/// `h_{i+k}`) and drop the rest, so the pass never holds every hidden state at once.
pub trait HiddenStateObserver<B: Backend> {
    /// Called once per index `0..=L` with a `[batch, seq, hidden]` tensor.
    ///
    /// Returning an error aborts the forward pass with [`CoreError::Observer`].
    fn observe(&mut self, index: usize, hidden: Tensor<B, 3>) -> Result<(), CoreError>;
}

/// An observer that ignores everything: the plain forward pass.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl<B: Backend> HiddenStateObserver<B> for NoObserver {
    fn observe(&mut self, _index: usize, _hidden: Tensor<B, 3>) -> Result<(), CoreError> {
        Ok(())
    }
}

/// An observer that keeps every hidden state, for tests and small inputs.
#[derive(Debug, Clone)]
pub struct CollectHiddenStates<B: Backend> {
    /// The hidden states in the order they were observed.
    pub states: Vec<Tensor<B, 3>>,
}

impl<B: Backend> Default for CollectHiddenStates<B> {
    fn default() -> Self {
        Self { states: Vec::new() }
    }
}

impl<B: Backend> HiddenStateObserver<B> for CollectHiddenStates<B> {
    fn observe(&mut self, index: usize, hidden: Tensor<B, 3>) -> Result<(), CoreError> {
        if index != self.states.len() {
            return Err(CoreError::Observer { index, reason: format!("expected hidden state {} next", self.states.len()) });
        }
        self.states.push(hidden);
        Ok(())
    }
}
