//! Module mappers every model crate needs to prepare a stack for training.

use burn::module::{ModuleMapper, Param};
use burn::prelude::{Backend, Tensor};
use burn::tensor::DType;

/// Casts every float parameter to a dtype, keeping its gradient flag (f32 master weights of the
/// trainable layers inside a bf16 model).
#[derive(Debug, Clone, Copy)]
pub struct CastParams(pub DType);

impl<B: Backend> ModuleMapper<B> for CastParams {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let dtype = self.0;
        param.map(|tensor| {
            let require_grad = tensor.is_require_grad();
            tensor.cast(dtype).set_require_grad(require_grad)
        })
    }
}

/// Marks every float parameter as requiring gradients.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequireGrad;

impl<B: Backend> ModuleMapper<B> for RequireGrad {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        param.set_require_grad(true)
    }
}
