//! The linear-layer kernel of the inference backend, `Flex<f32>`.

use burn::backend::Flex;
use burn::prelude::Tensor;
use burn::tensor::TensorPrimitive;

use crate::sgemm::product;
use crate::sgemm_for;

/// A 2-D tensor of the inference backend.
type Matrix = Tensor<Flex<f32>, 2>;

/// [`interlace_core::linear_kernel::LinearKernel`] for burn-flex: `x · Wᵀ` through `cblas_sgemm`
/// (f32 inputs of equal widths; see [`sgemm_for`]).
pub(crate) fn linear(x: &Matrix, weight: &Matrix) -> Option<Matrix> {
    let sgemm = sgemm_for(x, weight)?;
    let y = product(sgemm, x.clone().into_primitive().tensor(), false, weight.clone().into_primitive().tensor(), true);
    Some(Tensor::from_primitive(TensorPrimitive::Float(y)))
}
