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

/// Tanh-approximated GELU (`gelu_pytorch_tanh`), used by the vision blocks:
/// `0.5 x (1 + tanh(u))` with `u = sqrt(2/pi) (x + 0.044715 x^3)`.
///
/// Evaluated as the equal `x * sigmoid(2u)` with `x^3` as two products. burn's
/// `gelu_approximate` takes `powf(x, 3)` and `tanh`, which the CPU backend evaluates one element
/// at a time through libm's `powf` and `tanhf`: 14% of an image+text forward pass's CPU time on
/// the 2B shapes (docs/performance.md, lever 8). `sigmoid` is one pass with `expf`.
pub fn gelu_tanh<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    /// `2 sqrt(2/pi)`: the sigmoid takes twice the tanh's argument.
    const TWO_SQRT_2_OVER_PI: f64 = 2.0 * std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2;
    in_f32(x, |x| {
        let cube = x.clone() * x.clone() * x.clone();
        let twice_u = (x.clone() + cube * 0.044715) * TWO_SQRT_2_OVER_PI;
        x * activation::sigmoid(twice_u)
    })
}

/// SiLU, used by the text MLP.
pub fn silu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    in_f32(x, activation::silu)
}

/// `x · sigmoid(1.702 x)` (`quick_gelu`), used by the Qwen2-VL vision blocks.
pub fn quick_gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    in_f32(x, |x| x.clone() * activation::sigmoid(x * 1.702))
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::prelude::Tensor;

    /// PyTorch's `gelu(x, approximate="tanh")` formula, in f64.
    fn reference(x: f64) -> f64 {
        let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
        0.5 * x * (1.0 + u.tanh())
    }

    #[test]
    fn gelu_tanh_is_the_tanh_formula() {
        let xs: Vec<f32> = (-400..=400).map(|i| i as f32 * 0.025).collect();
        let got = super::gelu_tanh(Tensor::<Flex, 1>::from_floats(xs.as_slice(), &Default::default())).into_data().to_vec::<f32>().unwrap();
        // Relative to max(|want|, 1e-3); measured worst 5.9e-7 (f32 rounding of x^3, the sum and
        // the sigmoid). PyTorch's own f32 kernel, computing 1 + tanh(u), loses far more for x < -3.
        let worst = xs.iter().zip(&got).map(|(&x, &y)| (y as f64 - reference(x as f64)).abs() / reference(x as f64).abs().max(1e-3)).fold(0.0, f64::max);
        assert!(worst <= 7e-7, "gelu_tanh is {worst:.2e} (relative) off the tanh formula");
    }
}
