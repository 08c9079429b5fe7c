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
        rms_norm(x, self.weight.val(), self.eps)
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
        layer_norm(x, self.weight.val(), self.bias.val(), self.eps)
    }
}

/// The norm of a vision block or merger: LayerNorm with its bias (Qwen2-VL, Qwen3-VL) or, in
/// Qwen2.5-VL, an RMSNorm (same weight name, no bias). One type keeps the module path
/// `norm1.weight` the checkpoint name in every family.
#[derive(Module, Debug)]
pub struct VisionNorm<B: Backend> {
    /// Scale `[dim]`.
    pub weight: Param<Tensor<B, 1>>,
    /// Shift `[dim]`: present for LayerNorm, absent for RMSNorm.
    pub bias: Option<Param<Tensor<B, 1>>>,
    /// Added to the variance or mean square.
    pub eps: f64,
}

impl<B: Backend> VisionNorm<B> {
    /// Normalises the last axis, with f32 statistics.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        match &self.bias {
            Some(bias) => layer_norm(x, self.weight.val(), bias.val(), self.eps),
            None => rms_norm(x, self.weight.val(), self.eps),
        }
    }
}

/// RMSNorm of the last axis: statistics in f32, cast back, then scaled (transformers' order).
fn rms_norm<B: Backend, const D: usize>(x: Tensor<B, D>, weight: Tensor<B, 1>, eps: f64) -> Tensor<B, D> {
    let dtype = x.dtype();
    let x32 = x.cast(DType::F32);
    let mean_square = x32.clone().powi_scalar(2).mean_dim(D - 1);
    let normed = x32 * (mean_square + eps).sqrt().recip();
    normed.cast(dtype) * weight.unsqueeze::<D>()
}

/// Affine LayerNorm of the last axis, computed in f32 and cast back once.
fn layer_norm<B: Backend, const D: usize>(x: Tensor<B, D>, weight: Tensor<B, 1>, bias: Tensor<B, 1>, eps: f64) -> Tensor<B, D> {
    let dtype = x.dtype();
    let x32 = x.cast(DType::F32);
    let mean = x32.clone().mean_dim(D - 1);
    let centered = x32 - mean;
    let variance = centered.clone().powi_scalar(2).mean_dim(D - 1);
    let normed = centered * (variance + eps).sqrt().recip();
    (normed * weight.cast(DType::F32).unsqueeze::<D>() + bias.cast(DType::F32).unsqueeze::<D>()).cast(dtype)
}
