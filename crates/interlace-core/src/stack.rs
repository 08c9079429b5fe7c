use burn::prelude::{Backend, Tensor};

use crate::{CoreError, HiddenStateObserver, LayerSet, TapPoint};

/// A model whose core is a stack of `L` decoder layers.
///
/// The analysis, surgery and training crates only need this view of a model: how many layers
/// it has, how big they are, how to remove some and which ones may learn.
pub trait DecoderStack: Sized {
    /// Number of decoder layers `L`.
    fn num_layers(&self) -> usize;

    /// Number of parameters of decoder layer `index`.
    fn layer_param_count(&self, index: usize) -> Result<usize, CoreError>;

    /// Number of parameters of the whole model (decoder layers and everything else).
    fn param_count(&self) -> usize;

    /// Removes the layers of `drop` and renumbers the rest consecutively, keeping their order.
    ///
    /// `drop` must have been validated against this stack ([`LayerSet::for_removal`]).
    fn remove_layers(self, drop: &LayerSet) -> Result<Self, CoreError>;

    /// Marks exactly the layers of `trainable` as requiring gradients; every other parameter of
    /// the model (other layers, embeddings, heads, encoders) is frozen.
    fn set_trainable_layers(self, trainable: &LayerSet) -> Result<Self, CoreError>;
}

/// A decoder stack that can run one input with a [`HiddenStateObserver`] attached.
pub trait ObservedForward<B: Backend>: DecoderStack {
    /// The model's own input type (token ids, images, ...).
    type Input;
    /// The model's error type; must carry [`CoreError`] so observer failures propagate.
    type Error: From<CoreError>;

    /// Runs one forward pass, handing hidden states `0..=L` (chosen by `tap`) to `observer` as
    /// they are produced, and returns the logits `[batch, seq, vocab]`.
    fn forward_observed(&self, input: &Self::Input, tap: TapPoint, observer: &mut dyn HiddenStateObserver<B>) -> Result<Tensor<B, 3>, Self::Error>;

    /// Runs one forward pass for the observer alone: hands out hidden states `0..=L` exactly as
    /// [`Self::forward_observed`] does, but computes no logits, so a stack may stop after its
    /// last hidden state (Qwen3-VL skips the output head, a 151,936-row projection that costs
    /// as much as several layers). Calibration uses this. The default runs
    /// [`Self::forward_observed`] and drops the logits.
    fn observe_hidden_states(&self, input: &Self::Input, tap: TapPoint, observer: &mut dyn HiddenStateObserver<B>) -> Result<(), Self::Error> {
        self.forward_observed(input, tap, observer).map(drop)
    }
}
