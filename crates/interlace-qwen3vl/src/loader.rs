//! Builds modules from checkpoint tensors, checking every shape against the config, or from
//! random values of the right shapes (benchmarks of 8B-shaped models without a download).

use burn::module::{Param, ParamId};
use burn::prelude::{Backend, Tensor};
use burn::tensor::{DType, Distribution};

use crate::checkpoint::Checkpoint;
use crate::linear::HfLinear;
use crate::norm::{LayerNorm, RmsNorm, VisionNorm};
use crate::Result;

/// Where weights come from.
#[derive(Clone, Copy)]
enum Source<'a> {
    Checkpoint(&'a Checkpoint),
    /// Normal(0, 0.02) weights, unit norms, zero biases, generated on the device.
    Random,
}

/// Reads named tensors of a [`Checkpoint`] (or draws random ones) onto a device in the model's
/// float dtype.
pub struct WeightLoader<'a, B: Backend> {
    source: Source<'a>,
    device: &'a B::Device,
    dtype: DType,
}

impl<'a, B: Backend> WeightLoader<'a, B> {
    /// A loader producing tensors of `dtype` on `device`.
    pub fn new(checkpoint: &'a Checkpoint, device: &'a B::Device, dtype: DType) -> Self {
        Self { source: Source::Checkpoint(checkpoint), device, dtype }
    }

    /// A loader drawing random weights of the requested shapes (for benchmarks): normal(0, 0.02)
    /// matrices, ones for norm weights, zeros for biases. Seed with `B::seed` first.
    pub fn random(device: &'a B::Device, dtype: DType) -> Self {
        Self { source: Source::Random, device, dtype }
    }

    /// The checkpoint being read (`None` for random weights).
    pub fn checkpoint(&self) -> Option<&'a Checkpoint> {
        match self.source {
            Source::Checkpoint(c) => Some(c),
            Source::Random => None,
        }
    }

    /// Tensor `name`, which must have exactly `shape`.
    pub fn tensor<const D: usize>(&self, name: &str, shape: [usize; D]) -> Result<Tensor<B, D>> {
        self.reshaped(name, &shape, shape)
    }

    /// Tensor `name` stored with shape `stored` (e.g. a Conv3d kernel), reshaped to `shape`.
    pub fn reshaped<const D: usize>(&self, name: &str, stored: &[usize], shape: [usize; D]) -> Result<Tensor<B, D>> {
        let options = (self.device, self.dtype);
        match self.source {
            Source::Checkpoint(checkpoint) => {
                let data = checkpoint.read(name, stored, self.dtype)?;
                let data = burn::tensor::TensorData { shape: shape.to_vec().into(), ..data };
                Ok(Tensor::from_data(data, options))
            }
            Source::Random if name.ends_with(".bias") => Ok(Tensor::zeros(shape, options)),
            Source::Random if name.contains("norm") => Ok(Tensor::ones(shape, options)),
            Source::Random => Ok(Tensor::random(shape, Distribution::Normal(0.0, 0.02), options)),
        }
    }

    /// Tensor `name` as a trainable parameter whose id is derived from the name, so the same
    /// checkpoint always yields the same ids (optimizer state saved by one run resumes in the next).
    pub fn param<const D: usize>(&self, name: &str, shape: [usize; D]) -> Result<Param<Tensor<B, D>>> {
        Ok(named_param(name, self.tensor(name, shape)?))
    }

    /// `{prefix}.weight` `[out, in]` and, with `bias`, `{prefix}.bias` `[out]`.
    pub fn linear(&self, prefix: &str, out: usize, inp: usize, bias: bool) -> Result<HfLinear<B>> {
        let weight = self.param(&format!("{prefix}.weight"), [out, inp])?;
        let bias = if bias { Some(self.param(&format!("{prefix}.bias"), [out])?) } else { None };
        Ok(HfLinear { weight, bias })
    }

    /// RMSNorm weight `{prefix}.weight` `[dim]`.
    pub fn rms_norm(&self, prefix: &str, dim: usize, eps: f64) -> Result<RmsNorm<B>> {
        Ok(RmsNorm { weight: self.param(&format!("{prefix}.weight"), [dim])?, eps })
    }

    /// LayerNorm `{prefix}.weight` and `{prefix}.bias`, both `[dim]`.
    pub fn layer_norm(&self, prefix: &str, dim: usize, eps: f64) -> Result<LayerNorm<B>> {
        Ok(LayerNorm { weight: self.param(&format!("{prefix}.weight"), [dim])?, bias: self.param(&format!("{prefix}.bias"), [dim])?, eps })
    }

    /// A [`VisionNorm`]: LayerNorm (`{prefix}.weight` and `{prefix}.bias`) when `bias`, else
    /// RMSNorm (`{prefix}.weight` only).
    pub fn vision_norm(&self, prefix: &str, dim: usize, eps: f64, bias: bool) -> Result<VisionNorm<B>> {
        let bias = if bias { Some(self.param(&format!("{prefix}.bias"), [dim])?) } else { None };
        Ok(VisionNorm { weight: self.param(&format!("{prefix}.weight"), [dim])?, bias, eps })
    }
}

/// A trainable parameter with an id derived from its checkpoint name (FNV-1a, 64 bit).
pub fn named_param<B: Backend, const D: usize>(name: &str, tensor: Tensor<B, D>) -> Param<Tensor<B, D>> {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3));
    Param::initialized(ParamId::from(hash), tensor.require_grad())
}

impl<B: Backend> WeightLoader<'_, B> {}
