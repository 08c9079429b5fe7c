//! Global gradient-norm clipping over all trainable parameters.
//!
//! burn clips each tensor on its own; PyTorch's `clip_grad_norm_` (what the official training
//! uses through the HF Trainer) scales every gradient by one factor computed from the norm of
//! all of them together.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::Tensor;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::DType;

struct SquaredNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    total: f64,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let squared: f32 = grad.cast(DType::F32).powi_scalar(2).sum().into_scalar().to_f32_lossy();
            self.total += squared as f64;
        }
    }
}

trait ToF32 {
    fn to_f32_lossy(self) -> f32;
}

impl<E: burn::tensor::ElementConversion> ToF32 for E {
    fn to_f32_lossy(self) -> f32 {
        self.elem::<f32>()
    }
}

struct Scale<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    factor: f64,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads.register::<B::InnerBackend, D>(param.id, grad.mul_scalar(self.factor));
        }
    }
}

/// L2 norm of all gradients of `module`'s parameters held in `grads`.
pub fn global_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(module: &M, grads: &GradientsParams) -> f64 {
    let mut visitor = SquaredNorm::<B> { grads, total: 0.0, _backend: std::marker::PhantomData };
    module.visit(&mut visitor);
    visitor.total.sqrt()
}

/// Scales all gradients so their global norm is at most `max_norm` (PyTorch:
/// `clip_coef = max_norm / (norm + 1e-6)`, applied when below 1). Returns the norm before
/// clipping.
pub fn clip_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(module: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let norm = global_grad_norm::<B, M>(module, grads);
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        let mut visitor = Scale::<B> { grads, factor, _backend: std::marker::PhantomData };
        module.visit(&mut visitor);
    }
    norm
}
