//! The attention kernel of the training backend, `Autodiff<Flex<f32>>`: the blocks of
//! [`crate::attention`] keeping their probabilities, and a backward step whose four products per
//! block also run in `cblas_sgemm`.
//!
//! Without it burn-autodiff records attention as its pieces (two batched matmuls, the mask, the
//! softmax), each backward piece on burn-flex's matmul or on one core. For a block of queries with
//! probabilities `P`, upstream gradient `∂O` and scale `c`:
//! `∂V += Pᵀ · ∂O`, `∂P = ∂O · Vᵀ`, `∂S = P ⊙ (∂P − rowsum(P ⊙ ∂P))`, `∂Q = c · ∂S · K`,
//! `∂K += c · ∂Sᵀ · Q`. It keeps the probabilities of the keys each block sees (at 2,048 causal
//! tokens 56% of the full square that burn's decomposed form keeps) and `q`, `k`, `v`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::prelude::Tensor;
use burn::tensor::{TensorData, TensorPrimitive};
use interlace_core::attention_kernel::AttentionMask;
use rayon::prelude::*;

use crate::attention::{attend, output_heads, prepare, AttentionShape, Block, HeadRows, QUERY_BLOCK};
use crate::autodiff::Training;
use crate::sgemm::{gemm, Matrix, MatrixMut, Sgemm};
use crate::softmax::softmax_backward;

/// A 4-D tensor of the training backend.
type Heads = Tensor<Training, 4>;

/// The backward step of one attention call.
#[derive(Debug)]
struct AttentionBackward {
    sgemm: Sgemm,
    shape: AttentionShape,
}

/// What the backward step needs: the checkpointed `q`, `k`, `v` and every block's probabilities.
#[derive(Debug, Clone)]
struct Saved {
    inputs: [NodeId; 3],
    probs: Vec<f32>,
}

impl Backward<Flex<f32>, 3> for AttentionBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let upstream: FlexTensor = grads.consume::<Flex<f32>>(&ops.node);
        let Saved { inputs, probs } = ops.state;
        let [q, k, v] = inputs.map(|id| HeadRows::of(&checkpointer.retrieve_node_output::<FlexTensor>(id)).expect("the forward pass read these inputs"));
        let upstream = HeadRows::of(&upstream).expect("the gradient has the output's shape");
        let gradients = attend_backward(self.sgemm, &self.shape, [&q, &k, &v], &probs, &upstream);
        let s = &self.shape;
        let kv_heads = s.heads / s.group;
        let shapes = [[s.batch, s.heads, s.queries, s.head_dim], [s.batch, kv_heads, s.keys, s.head_dim], [s.batch, kv_heads, s.keys, s.value_dim]];
        for ((parent, gradient), shape) in ops.parents.into_iter().zip(gradients).zip(shapes) {
            if let Some(parent) = parent {
                grads.register::<Flex<f32>>(parent.id, FlexTensor::from_data(TensorData::new(gradient, shape)));
            }
        }
    }
}

/// [`interlace_core::attention_kernel::AttentionKernel`] for `Autodiff<Flex<f32>>`: the inputs
/// [`crate::attention`] takes, with gradients for those that need one.
pub(crate) fn attention(q: &Heads, k: &Heads, v: &Heads, mask: AttentionMask) -> Option<Heads> {
    let [q, k, v] = [q, k, v].map(|t| t.clone().into_primitive().tensor());
    let (sgemm, shape, rows) = prepare(&q.primitive, &k.primitive, &v.primitive, mask)?;
    let [q_rows, k_rows, v_rows] = &rows;
    let step = AttentionBackward { sgemm, shape: shape.clone() };
    let out = match step.prepare::<NoCheckpointing>([q.node.clone(), k.node.clone(), v.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let inputs = [prep.checkpoint(&q), prep.checkpoint(&k), prep.checkpoint(&v)];
            let mut probs = Vec::new();
            let out = attend(sgemm, &shape, [q_rows, k_rows, v_rows], Some(&mut probs));
            prep.finish(Saved { inputs, probs }, output_heads(out, &shape))
        }
        OpsKind::UnTracked(prep) => prep.finish(output_heads(attend(sgemm, &shape, [q_rows, k_rows, v_rows], None), &shape)),
    };
    Some(Tensor::from_primitive(TensorPrimitive::Float(out)))
}

/// The gradients of `q`, `k` and `v`, each row-major in its input's shape, from the upstream
/// gradient of the output and the probabilities [`attend`] kept.
fn attend_backward(sgemm: Sgemm, shape: &AttentionShape, [q, k, v]: [&HeadRows; 3], probs: &[f32], upstream: &HeadRows) -> [Vec<f32>; 3] {
    let &AttentionShape { batch, heads, group, queries, keys, head_dim, value_dim, .. } = shape;
    let kv_heads = heads / group;
    let mut dq = vec![0.0f32; batch * heads * queries * head_dim];
    let mut dk = vec![0.0f32; batch * kv_heads * keys * head_dim];
    let mut dv = vec![0.0f32; batch * kv_heads * keys * value_dim];
    let mut dscores = vec![0.0f32; QUERY_BLOCK.min(queries) * keys];
    let mut kept = probs;
    for Block { batch: b, head, kv_head, first, rows, seen } in shape.blocks() {
        let (p, rest) = kept.split_at(rows * seen);
        kept = rest;
        let p = Matrix { data: p, rows, cols: seen, leading: seen };
        let d_out = upstream.rows(b, head, first, rows);
        let kv_start = (b * kv_heads + kv_head) * keys;
        // ∂V += Pᵀ · ∂O
        let dv_block = MatrixMut { data: &mut dv[kv_start * value_dim..], rows: seen, cols: value_dim, leading: value_dim };
        gemm(sgemm, 1.0, p, true, d_out, false, 1.0, dv_block);
        // ∂P = ∂O · Vᵀ, then ∂S row by row.
        let ds = &mut dscores[..rows * seen];
        gemm(sgemm, 1.0, d_out, false, v.rows(b, kv_head, 0, seen), true, 0.0, MatrixMut { data: &mut *ds, rows, cols: seen, leading: seen });
        ds.par_chunks_mut(seen).zip(p.data.par_chunks(seen)).for_each(|(ds, p)| softmax_backward(p, ds));
        let ds = Matrix { data: ds, rows, cols: seen, leading: seen };
        // ∂Q = c · ∂S · K, ∂K += c · ∂Sᵀ · Q
        let dq_block = MatrixMut { data: &mut dq[((b * heads + head) * queries + first) * head_dim..], rows, cols: head_dim, leading: head_dim };
        gemm(sgemm, shape.scale(), ds, false, k.rows(b, kv_head, 0, seen), false, 0.0, dq_block);
        let dk_block = MatrixMut { data: &mut dk[kv_start * head_dim..], rows: seen, cols: head_dim, leading: head_dim };
        gemm(sgemm, shape.scale(), ds, true, q.rows(b, head, first, rows), false, 1.0, dk_block);
    }
    [dq, dk, dv]
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::flex::FlexDevice;
    use burn::tensor::activation::softmax;
    use burn::tensor::{Bool, Distribution};

    /// The attention from burn's own ops (repeated key/value heads, matmul, mask, softmax), whose
    /// gradients burn-autodiff derives: the reference for the kernel's backward step.
    fn attention_from_burn_ops(q: Heads, k: Heads, v: Heads, mask: AttentionMask) -> Heads {
        let [batch, heads, queries, head_dim] = q.dims();
        let [_, kv_heads, keys, value_dim] = v.dims();
        let group = heads / kv_heads;
        let repeat = |t: Heads, dim: usize| t.unsqueeze_dim::<5>(2).expand([batch, kv_heads, group, keys, dim]).reshape([batch, heads, keys, dim]);
        let scores = q.matmul(repeat(k, head_dim).swap_dims(2, 3)) / (head_dim as f64).sqrt();
        let hidden: Vec<bool> = (0..queries).flat_map(|i| (0..keys).map(move |j| mask == AttentionMask::Causal && j > keys - queries + i)).collect();
        let hidden = Tensor::<Training, 2, Bool>::from_data(TensorData::new(hidden, [queries, keys]), &FlexDevice).unsqueeze::<4>();
        softmax(scores.mask_fill(hidden, f32::NEG_INFINITY), 3).matmul(repeat(v, value_dim))
    }

    /// Output and the gradients of `q`, `k` and `v` (strided views among them) against burn's
    /// decomposed attention, causal over several query blocks with a cached prefix, and not.
    #[test]
    fn gradients_match_burns_decomposed_attention() {
        if crate::use_openblas().is_err() {
            assert_ne!(std::env::var("INTERLACE_OPENBLAS_TESTS").as_deref(), Ok("require"), "OpenBLAS must load");
            return;
        }
        let device = FlexDevice;
        let (batch, heads, kv_heads, queries, keys, head_dim, value_dim) = (1, 4, 2, QUERY_BLOCK + 20, QUERY_BLOCK + 31, 8, 6);
        let random = |shape: [usize; 4]| Tensor::<Flex<f32>, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device).into_data();
        let (q_data, k_data, v_data) =
            (random([batch, queries, heads, head_dim]), random([batch, kv_heads, keys, head_dim]), random([batch, kv_heads, keys, value_dim]));
        let upstream = Tensor::<Training, 4>::from_data(random([batch, heads, queries, value_dim]), &device);
        let host = |t: Tensor<Flex<f32>, 4>| t.into_data().to_vec::<f32>().unwrap();
        for mask in [AttentionMask::Causal, AttentionMask::None] {
            let run = |kernel: bool| {
                let q_leaf = Tensor::<Training, 4>::from_data(q_data.clone(), &device).require_grad();
                let k = Tensor::<Training, 4>::from_data(k_data.clone(), &device).require_grad();
                let v = Tensor::<Training, 4>::from_data(v_data.clone(), &device).require_grad();
                // q as the models pass it: heads swapped out of `[batch, queries, heads, head_dim]`.
                let q = q_leaf.clone().swap_dims(1, 2);
                let out = match kernel {
                    true => attention(&q, &k, &v, mask).expect("f32 inputs are taken"),
                    false => attention_from_burn_ops(q, k.clone(), v.clone(), mask),
                };
                let grads = (out.clone() * upstream.clone()).sum().backward();
                let grad = |t: &Heads| host(t.grad(&grads).expect("every input needs a gradient"));
                [host(out.inner()), grad(&q_leaf), grad(&k), grad(&v)]
            };
            let (kernel, reference) = (run(true), run(false));
            for (name, (a, b)) in ["output", "∂q", "∂k", "∂v"].iter().zip(kernel.iter().zip(&reference)) {
                let worst = a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                assert!(worst < 1e-5, "{mask:?} {name}: worst difference {worst:e}");
            }
        }
    }
}
