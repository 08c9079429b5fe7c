//! The linear-layer kernel of the training backend, `Autodiff<Flex<f32>>`: `x · Wᵀ` and both of
//! its gradients through `cblas_sgemm`.
//!
//! burn-autodiff records a matmul as one node whose backward pass multiplies again with the
//! inner backend's matmul; this records `x · Wᵀ` as a node of its own, so the forward product and
//! the two backward ones (`∂x = g · W`, `∂W = gᵀ · x`) all run in OpenBLAS. Like burn's matmul
//! node it keeps `x` only when `W` needs a gradient and `W` only when `x` does.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{binary, Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::prelude::Tensor;
use burn::tensor::TensorPrimitive;

use crate::sgemm::{product, Sgemm};
use crate::sgemm_for;

/// The training backend this kernel serves (burn's default, no checkpointing strategy: interlace
/// checkpoints layers itself).
pub(crate) type Training = Autodiff<Flex<f32>>;

/// A 2-D tensor of the training backend.
type Matrix = Tensor<Training, 2>;

/// The backward step of `y = x · Wᵀ`.
#[derive(Debug)]
struct LinearBackward {
    sgemm: Sgemm,
}

impl Backward<Flex<f32>, 2> for LinearBackward {
    /// The ids of `x` and `W` where the other one needs a gradient.
    type State = (Option<NodeId>, Option<NodeId>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let (x, weight) = ops.state;
        let x: Option<FlexTensor> = x.map(|id| checkpointer.retrieve_node_output(id));
        let weight: Option<FlexTensor> = weight.map(|id| checkpointer.retrieve_node_output(id));
        let sgemm = self.sgemm;
        binary::<Flex<f32>, _, _>(
            ops.parents,
            ops.node,
            grads,
            // ∂x = g · W, [rows, out] · [out, in].
            |grad| product(sgemm, grad, false, weight.expect("W is kept when x needs a gradient"), false),
            // ∂W = gᵀ · x, [out, rows] · [rows, in].
            |grad| product(sgemm, grad, true, x.expect("x is kept when W needs a gradient"), false),
        );
    }
}

/// [`interlace_core::linear_kernel::LinearKernel`] for `Autodiff<Flex<f32>>`.
///
/// Takes f32 inputs of equal widths ([`sgemm_for`]); leaves anything else to burn's matmul.
pub(crate) fn linear(x: &Matrix, weight: &Matrix) -> Option<Matrix> {
    let sgemm = sgemm_for(x, weight)?;
    let (x, weight) = (x.clone().into_primitive().tensor(), weight.clone().into_primitive().tensor());
    let (x_tracked, weight_tracked) = (x.is_tracked(), weight.is_tracked());
    let forward = |x: FlexTensor, weight: FlexTensor| product(sgemm, x, false, weight, true);
    let step = LinearBackward { sgemm };
    let y = match step.prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let x_state = weight_tracked.then(|| prep.checkpoint(&x));
            let weight_state = x_tracked.then(|| prep.checkpoint(&weight));
            prep.finish((x_state, weight_state), forward(x.primitive, weight.primitive))
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(x.primitive, weight.primitive)),
    };
    Some(Tensor::from_primitive(TensorPrimitive::Float(y)))
}
