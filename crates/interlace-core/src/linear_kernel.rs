//! The `x · Wᵀ` product of every linear layer, with a per-backend replacement kernel.
//!
//! Model crates compute their linear layers (and tied output heads) through [`linear`]. By default
//! that is burn's matmul against a transposed view of the `[out, in]` weight. A crate that has a
//! faster kernel for one backend registers it with [`register_linear_kernel`] (interlace-prune
//! does so for OpenBLAS on burn-flex), and from then on every linear layer of every model on that
//! backend goes through it; other backends, and every autodiff backend, are untouched.
//!
//! The table is shared with [`crate::attention_kernel`]: keyed by the backend type, because
//! model code is generic over `B: Backend` and Rust has no specialisation.

use std::any::TypeId;

use burn::prelude::{Backend, Tensor};

use crate::kernel_registry::KernelRegistry;

/// A kernel for `y = x · Wᵀ`: `x` is `[rows, in]`, `weight` `[out, in]`, the result `[rows, out]`.
///
/// It returns `None` when it does not handle these inputs (another dtype, say), and [`linear`]
/// then runs burn's matmul. (It borrows them so that declining costs nothing; cloning a burn
/// tensor to compute with it only shares its storage.)
pub type LinearKernel<B> = fn(&Tensor<B, 2>, &Tensor<B, 2>) -> Option<Tensor<B, 2>>;

/// Registered kernels, one `LinearKernel<B>` per backend type.
static KERNELS: KernelRegistry = KernelRegistry::new();

/// Makes every [`linear`] call on backend `B` use `kernel`, replacing the one registered before.
///
/// A process-wide setting: register once, before the model work starts.
pub fn register_linear_kernel<B: Backend>(kernel: LinearKernel<B>) {
    KERNELS.register(TypeId::of::<B>(), kernel);
}

/// Removes backend `B`'s kernel, so [`linear`] runs burn's matmul again; returns whether one was
/// registered.
pub fn unregister_linear_kernel<B: Backend>() -> bool {
    KERNELS.unregister(TypeId::of::<B>())
}

/// The kernel registered for backend `B`, if any.
pub fn linear_kernel<B: Backend>() -> Option<LinearKernel<B>> {
    KERNELS.get::<LinearKernel<B>>(TypeId::of::<B>())
}

/// `x · Wᵀ` over the last axis of `x`, with `weight` stored `[out, in]` as PyTorch stores it.
///
/// Uses the kernel registered for `B` when there is one and it takes these inputs (all leading
/// axes of `x` flattened into rows), burn's matmul otherwise.
pub fn linear<B: Backend, const D: usize>(x: Tensor<B, D>, weight: Tensor<B, 2>) -> Tensor<B, D> {
    let Some(kernel) = linear_kernel::<B>() else {
        return matmul_transposed(x, weight);
    };
    let dims = x.dims();
    let rows = dims[..D - 1].iter().product::<usize>();
    let x_rows = x.reshape([rows, dims[D - 1]]);
    match kernel(&x_rows, &weight) {
        Some(y) => {
            let mut out_dims = dims;
            out_dims[D - 1] = y.dims()[1];
            y.reshape(out_dims)
        }
        None => matmul_transposed(x_rows.reshape(dims), weight),
    }
}

/// burn's matmul against the transposed weight.
fn matmul_transposed<B: Backend, const D: usize>(x: Tensor<B, D>, weight: Tensor<B, 2>) -> Tensor<B, D> {
    // Unsqueeze first, then transpose: the transposed view goes to the matmul as it is
    // (burn-flex's gemm takes strides). Reshaping a transposed view (unsqueeze after transpose)
    // made burn-flex copy the whole weight on every call.
    x.matmul(weight.unsqueeze::<D>().transpose())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::ndarray::NdArrayDevice;
    use burn::backend::NdArray;
    use burn::tensor::{TensorData, Tolerance};

    // Only this test registers a kernel, and only for f64 NdArray: the other tests of this
    // binary run on other backends, so the process-wide registry does not leak into them.
    type Registered = NdArray<f64>;
    type Untouched = NdArray<f32>;

    /// A stand-in kernel that is recognisable: it returns `2 · x · Wᵀ` for f64 inputs.
    fn doubling(x: &Tensor<Registered, 2>, weight: &Tensor<Registered, 2>) -> Option<Tensor<Registered, 2>> {
        Some(x.clone().matmul(weight.clone().transpose()) * 2.0)
    }

    fn declining(_: &Tensor<Registered, 2>, _: &Tensor<Registered, 2>) -> Option<Tensor<Registered, 2>> {
        None
    }

    #[test]
    fn registered_kernel_serves_its_backend_only_and_declining_falls_back() {
        let device = NdArrayDevice::Cpu;
        let x = [[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]];
        let w = [[1.0, 0.0, -1.0], [0.5, 0.5, 0.5], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let expected = TensorData::from([[[-2.0, 3.0, 4.0, 3.0], [-2.0, 7.5, 13.0, 6.0]]]);
        let run_registered = || linear(Tensor::<Registered, 3>::from_data(x, &device), Tensor::<Registered, 2>::from_data(w, &device)).into_data();
        let run_untouched = || linear(Tensor::<Untouched, 3>::from_data(x, &device), Tensor::<Untouched, 2>::from_data(w, &device)).into_data();

        run_registered().assert_approx_eq::<f64>(&expected, Tolerance::absolute(1e-12));
        register_linear_kernel::<Registered>(doubling);
        let doubled = TensorData::from([[[-4.0, 6.0, 8.0, 6.0], [-4.0, 15.0, 26.0, 12.0]]]);
        run_registered().assert_approx_eq::<f64>(&doubled, Tolerance::absolute(1e-12));
        run_untouched().assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-6));
        assert!(linear_kernel::<Untouched>().is_none());

        register_linear_kernel::<Registered>(declining);
        run_registered().assert_approx_eq::<f64>(&expected, Tolerance::absolute(1e-12));
        assert!(unregister_linear_kernel::<Registered>());
        assert!(!unregister_linear_kernel::<Registered>());
        run_registered().assert_approx_eq::<f64>(&expected, Tolerance::absolute(1e-12));
    }
}
