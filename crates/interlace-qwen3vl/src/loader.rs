//! Builds modules from checkpoint tensors, checking every shape against the config.

use burn::prelude::{Backend, Tensor};
use burn::tensor::DType;

use crate::checkpoint::Checkpoint;
use crate::linear::HfLinear;
use crate::norm::{LayerNorm, RmsNorm};
use crate::Result;

/// Reads named tensors of a [`Checkpoint`] onto a device in the model's float dtype.
pub struct WeightLoader<'a, B: Backend> {
    checkpoint: &'a Checkpoint,
    device: &'a B::Device,
    dtype: DType,
}

impl<'a, B: Backend> WeightLoader<'a, B> {
    /// A loader producing tensors of `dtype` on `device`.
    pub fn new(checkpoint: &'a Checkpoint, device: &'a B::Device, dtype: DType) -> Self {
        Self { checkpoint, device, dtype }
    }

    /// The checkpoint being read.
    pub fn checkpoint(&self) -> &'a Checkpoint {
        self.checkpoint
    }

    /// Tensor `name`, which must have exactly `shape`.
    pub fn tensor<const D: usize>(&self, name: &str, shape: [usize; D]) -> Result<Tensor<B, D>> {
        let data = self.checkpoint.read(name, &shape, self.dtype)?;
        Ok(Tensor::from_data(data, (self.device, self.dtype)))
    }

    /// Tensor `name` stored with shape `stored` (e.g. a Conv3d kernel), reshaped to `shape`.
    pub fn reshaped<const D: usize>(&self, name: &str, stored: &[usize], shape: [usize; D]) -> Result<Tensor<B, D>> {
        let data = self.checkpoint.read(name, stored, self.dtype)?;
        let data = burn::tensor::TensorData { shape: shape.to_vec().into(), ..data };
        Ok(Tensor::from_data(data, (self.device, self.dtype)))
    }

    /// `{prefix}.weight` `[out, in]` and, with `bias`, `{prefix}.bias` `[out]`.
    pub fn linear(&self, prefix: &str, out: usize, inp: usize, bias: bool) -> Result<HfLinear<B>> {
        let weight = self.tensor(&format!("{prefix}.weight"), [out, inp])?;
        let bias = if bias { Some(self.tensor(&format!("{prefix}.bias"), [out])?) } else { None };
        Ok(HfLinear::new(weight, bias))
    }

    /// RMSNorm weight `{prefix}.weight` `[dim]`.
    pub fn rms_norm(&self, prefix: &str, dim: usize, eps: f64) -> Result<RmsNorm<B>> {
        Ok(RmsNorm::new(self.tensor(&format!("{prefix}.weight"), [dim])?, eps))
    }

    /// LayerNorm `{prefix}.weight` and `{prefix}.bias`, both `[dim]`.
    pub fn layer_norm(&self, prefix: &str, dim: usize, eps: f64) -> Result<LayerNorm<B>> {
        Ok(LayerNorm::new(self.tensor(&format!("{prefix}.weight"), [dim])?, self.tensor(&format!("{prefix}.bias"), [dim])?, eps))
    }
}
