use burn::prelude::{Backend, Tensor};

use crate::{LayerSet, ObservedForward};

/// A decoder stack that can run an input as if some of its layers had been removed, without
/// copying or changing itself.
///
/// Loss-based layer selection (SLEB, Shortened LLaMA's perplexity criterion) scores every
/// candidate removal with a full forward pass: `O(L)` passes per dropped layer. Building a
/// pruned copy for each would copy the model `O(L)` times; skipping layers inside one pass
/// copies nothing.
pub trait SkipLayersForward<B: Backend>: ObservedForward<B> {
    /// The logits `[batch, seq, vocab]` of `input`, exactly as the model after
    /// [`crate::DecoderStack::remove_layers`]`(skip)` computes them. Where a model adds
    /// something to the residual stream by layer position (Qwen3-VL's deepstack features go in
    /// after the first layers), the positions are those of the remaining layers, as in the
    /// pruned checkpoint.
    ///
    /// `skip` must have been validated against this stack ([`LayerSet::for_removal`]).
    fn forward_skipping(&self, input: &Self::Input, skip: &LayerSet) -> Result<Tensor<B, 3>, Self::Error>;

    /// The next-token targets a language-modelling loss scores on `input`: `targets[t]` is the
    /// token that position `t` predicts, `None` where nothing is scored (the last position, and
    /// targets that are not text, such as image placeholder tokens). One entry per position.
    fn text_targets(&self, input: &Self::Input) -> Vec<Option<u32>>;
}
