//! Normalisations computed in f32 whatever the model dtype, as transformers does.

use burn::module::{Module, Param};
use burn::prelude::{Backend, Tensor};
use burn::tensor::DType;

/// Qwen3 RMSNorm: `cast(x·rsqrt(mean(x²)+eps), dtype) · w`, statistics in f32.
///
/// The cast back happens *before* the weight multiply; multiplying in f32 first would differ
/// from transformers by a bf16 rounding step.
#[derive(Module, Debug)]
pub struct RmsNorm<B: Backend> {
    /// Scale `[dim]`.
    pub weight: Param<Tensor<B, 1>>,
    /// Added to the mean square.
    pub eps: f64,
}

impl<B: Backend> RmsNorm<B> {
    /// Wraps a loaded weight.
    pub fn new(weight: Tensor<B, 1>, eps: f64) -> Self {
        Self { weight: Param::from_tensor(weight), eps }
    }

    /// Normalises the last axis.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dtype = x.dtype();
        let x32 = x.cast(DType::F32);
        let mean_square = x32.clone().powi_scalar(2).mean_dim(D - 1);
        let normed = x32 * (mean_square + self.eps).sqrt().recip();
        normed.cast(dtype) * self.weight.val().unsqueeze::<D>()
    }
}

/// Affine LayerNorm with f32 statistics (vision tower and mergers).
#[derive(Module, Debug)]
pub struct LayerNorm<B: Backend> {
    /// Scale `[dim]`.
    pub weight: Param<Tensor<B, 1>>,
    /// Shift `[dim]`.
    pub bias: Param<Tensor<B, 1>>,
    /// Added to the variance.
    pub eps: f64,
}

impl<B: Backend> LayerNorm<B> {
    /// Wraps loaded tensors.
    pub fn new(weight: Tensor<B, 1>, bias: Tensor<B, 1>, eps: f64) -> Self {
        Self { weight: Param::from_tensor(weight), bias: Param::from_tensor(bias), eps }
    }

    /// Normalises the last axis.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dtype = x.dtype();
        let x32 = x.cast(DType::F32);
        let mean = x32.clone().mean_dim(D - 1);
        let centered = x32 - mean;
        let variance = centered.clone().powi_scalar(2).mean_dim(D - 1);
        let normed = centered * (variance + self.eps).sqrt().recip();
        let weight = self.weight.val().cast(DType::F32).unsqueeze::<D>();
        let bias = self.bias.val().cast(DType::F32).unsqueeze::<D>();
        (normed * weight + bias).cast(dtype)
    }
}
