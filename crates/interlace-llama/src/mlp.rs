//! The SwiGLU MLP of the Llama family: `down(silu(gate(x)) · up(x))`, with biases under Llama's
//! `mlp_bias`.

use burn::module::Module;
use burn::prelude::{Backend, Tensor};
use burn::tensor::{activation, DType};
use interlace_qwen3vl::linear::HfLinear;

/// `mlp` of one decoder layer.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// `[I, H]`.
    pub gate_proj: HfLinear<B>,
    /// `[I, H]`.
    pub up_proj: HfLinear<B>,
    /// `[H, I]`.
    pub down_proj: HfLinear<B>,
}

impl<B: Backend> Mlp<B> {
    /// Applies the MLP to the last axis of `x`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.down_proj.forward(silu(self.gate_proj.forward(x.clone())) * self.up_proj.forward(x))
    }
}

/// SiLU evaluated in f32 and rounded once, as PyTorch's kernel does for bf16 inputs.
fn silu<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    let dtype = x.dtype();
    activation::silu(x.cast(DType::F32)).cast(dtype)
}
