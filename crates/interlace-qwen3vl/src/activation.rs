//! Activations evaluated in f32 and rounded once, as PyTorch's kernels do for bf16 inputs.

use burn::prelude::{Backend, Tensor};
use burn::tensor::{activation, DType};

fn in_f32<B: Backend, const D: usize>(x: Tensor<B, D>, f: impl FnOnce(Tensor<B, D>) -> Tensor<B, D>) -> Tensor<B, D> {
    let dtype = x.dtype();
    f(x.cast(DType::F32)).cast(dtype)
}

/// Exact (erf) GELU, used by the patch mergers.
pub fn gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    in_f32(x, activation::gelu)
}

/// Tanh-approximated GELU (`gelu_pytorch_tanh`), used by the vision blocks.
pub fn gelu_tanh<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    in_f32(x, activation::gelu_approximate)
}

/// SiLU, used by the text MLP.
pub fn silu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    in_f32(x, activation::silu)
}

/// `x · sigmoid(1.702 x)` (`quick_gelu`), used by the Qwen2-VL vision blocks.
pub fn quick_gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    in_f32(x, |x| x.clone() * activation::sigmoid(x * 1.702))
}
