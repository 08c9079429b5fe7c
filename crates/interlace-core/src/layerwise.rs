use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::{Backend, Tensor};

use crate::ObservedForward;

/// A decoder stack whose forward pass can be taken apart into its three stages: what comes
/// before the layers, each layer on its own, and what comes after them.
///
/// Training uses this for activation checkpointing: the forward pass keeps only the hidden
/// state entering each layer, and the backward pass recomputes one layer at a time, so the
/// activations of a single layer (not of the whole stack) are alive at once. Composing the
/// stages must give exactly [`ObservedForward::forward_observed`]:
///
/// ```text
/// let (mut h, context) = model.begin(input)?;
/// for layer in 0..model.num_layers() { h = model.layer(layer, h, &context); }
/// let logits = model.finish(h);
/// ```
pub trait LayerwiseForward<B: Backend>: ObservedForward<B> {
    /// What every layer needs besides the hidden state (positions, rotary tables, per-layer
    /// additions such as Qwen3-VL's deepstack features). Built once per input.
    type Context;

    /// Runs everything before layer 0 (embeddings, encoders) and returns `h_0` `[batch, seq,
    /// hidden]` with the per-input context.
    fn begin(&self, input: &Self::Input) -> Result<(Tensor<B, 3>, Self::Context), Self::Error>;

    /// Runs decoder layer `index` on `hidden`, including whatever the model adds to the residual
    /// stream right after that layer.
    fn layer(&self, index: usize, hidden: Tensor<B, 3>, context: &Self::Context) -> Tensor<B, 3>;

    /// Runs everything after the last layer (final norm, output head) and returns the logits.
    ///
    /// It must act on each position on its own (as a norm and a projection do): the trainer
    /// runs it on the supervised positions only, `[1, n, hidden]` gathered from the sequence.
    fn finish(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3>;

    /// True when some parameter of layer `index` requires gradients (see
    /// [`has_trainable_params`]).
    fn layer_is_trainable(&self, index: usize) -> bool;

    /// True when some parameter used by [`Self::begin`] (embeddings, encoders) requires
    /// gradients.
    fn begin_is_trainable(&self) -> bool;
}

/// True when some float parameter of `module` requires gradients (always false outside an
/// autodiff backend).
pub fn has_trainable_params<B: Backend, M: Module<B>>(module: &M) -> bool {
    let mut visitor = AnyTrainable(false);
    module.visit(&mut visitor);
    visitor.0
}

struct AnyTrainable(bool);

impl<B: Backend> ModuleVisitor<B> for AnyTrainable {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0 |= param.is_require_grad();
    }
}
