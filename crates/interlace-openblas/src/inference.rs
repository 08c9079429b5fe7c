//! The linear-layer kernel of the inference backend, `Flex<f32>`.

use burn::backend::Flex;
use burn::prelude::Tensor;
use burn::tensor::{DType, TensorPrimitive};

use crate::loaded_sgemm;
use crate::sgemm::product;

/// A 2-D tensor of the inference backend.
type Matrix = Tensor<Flex<f32>, 2>;

/// [`interlace_core::linear_kernel::LinearKernel`] for burn-flex: `x · Wᵀ` through `cblas_sgemm`.
///
/// Takes f32 inputs of matching widths; leaves anything else to burn's matmul (which also
/// reports shape errors).
pub(crate) fn linear(x: &Matrix, weight: &Matrix) -> Option<Matrix> {
    let sgemm = loaded_sgemm()?;
    if x.dtype() != DType::F32 || weight.dtype() != DType::F32 || x.dims()[1] != weight.dims()[1] {
        return None;
    }
    let y = product(sgemm, x.clone().into_primitive().tensor(), false, weight.clone().into_primitive().tensor(), true);
    Some(Tensor::from_primitive(TensorPrimitive::Float(y)))
}
