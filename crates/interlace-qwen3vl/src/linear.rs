//! A linear layer that keeps PyTorch's `[out, in]` weight layout.
//!
//! Keeping the checkpoint layout means no transpose when loading or saving, and tensor names and
//! shapes stay identical to Hugging Face's (`q_proj.weight` is `[out, in]` here too).

use burn::module::{Module, Param};
use burn::prelude::{Backend, Tensor};
use interlace_core::linear_kernel::linear;

/// `y = x · Wᵀ + b` with `W` stored `[out, in]`.
#[derive(Module, Debug)]
pub struct HfLinear<B: Backend> {
    /// Weight `[out, in]`.
    pub weight: Param<Tensor<B, 2>>,
    /// Optional bias `[out]`.
    pub bias: Option<Param<Tensor<B, 1>>>,
}

impl<B: Backend> HfLinear<B> {
    /// Wraps loaded tensors.
    pub fn new(weight: Tensor<B, 2>, bias: Option<Tensor<B, 1>>) -> Self {
        Self { weight: Param::from_tensor(weight), bias: bias.map(Param::from_tensor) }
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.weight.dims()[0]
    }

    /// Applies the layer to the last axis of `x`.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        self.forward_with_weight(x, self.weight.val())
    }

    /// Applies the layer with `weight` `[out, in]` in place of its own (a padded copy of it, for
    /// one), adding its own bias.
    pub(crate) fn forward_with_weight<const D: usize>(&self, x: Tensor<B, D>, weight: Tensor<B, 2>) -> Tensor<B, D> {
        // Through the kernel registered for this backend, if any (OpenBLAS on burn-flex).
        let y = linear(x, weight);
        match &self.bias {
            Some(bias) => y + bias.val().unsqueeze::<D>(),
            None => y,
        }
    }
}
