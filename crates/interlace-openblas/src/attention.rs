//! The attention kernel of the inference backend, `Flex<f32>`: both products of every head in
//! `cblas_sgemm`, the softmax on all cores.
//!
//! burn-flex's fused attention runs one head at a time on one core, tiling the keys 64 at a time
//! (flash attention): about 0.5 s per 2B text layer at 2,048 tokens on the 2-core Xeon of
//! docs/performance.md (lever 13). Here each head's queries go in blocks of [`QUERY_BLOCK`]: one
//! sgemm for the block's scores against the keys it may see (a causal block skips the keys past
//! its last query, half of all products at long inputs), the softmax row by row in parallel, one
//! sgemm for the probabilities times the values. Inputs are read through their strides (the
//! models pass heads as swapped views), and the output is written `[batch, queries, heads,
//! value_dim]`, so merging the heads afterwards is a free reshape. The training kernel
//! (`attention_autodiff`) runs the same blocks and keeps their probabilities.

use std::ffi::c_int;

use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::prelude::Tensor;
use burn::tensor::{DType, TensorData, TensorPrimitive};
use interlace_core::attention_kernel::AttentionMask;
use rayon::prelude::*;

use crate::sgemm::{gemm, Matrix, MatrixMut, Sgemm};
use crate::softmax::softmax_prefix;

/// A 4-D tensor of the inference backend.
type Heads = Tensor<Flex<f32>, 4>;

/// Query rows per block. Large enough for sgemm to run near its peak on both cores (a 256 × 2,048
/// × 128 product), small enough that a causal block computes few scores it throws away (12% more
/// than the causal half at 2,048 tokens) and the block's scores (2 MiB at 2,048 keys) stay in cache.
pub(crate) const QUERY_BLOCK: usize = 256;

/// [`interlace_core::attention_kernel::AttentionKernel`] for burn-flex: f32 inputs of consistent
/// shapes (see [`AttentionShape::of`]); anything else is declined.
pub(crate) fn attention(q: &Heads, k: &Heads, v: &Heads, mask: AttentionMask) -> Option<Heads> {
    let primitive = |t: &Heads| t.clone().into_primitive().tensor();
    let (sgemm, shape, [q, k, v]) = prepare(&primitive(q), &primitive(k), &primitive(v), mask)?;
    let out = attend(sgemm, &shape, [&q, &k, &v], None);
    Some(Tensor::from_primitive(TensorPrimitive::Float(output_heads(out, &shape))))
}

/// What both kernels start from: the library, the shape, and the inputs as sgemm reads them;
/// `None` for inputs the kernels do not take.
pub(crate) fn prepare(q: &FlexTensor, k: &FlexTensor, v: &FlexTensor, mask: AttentionMask) -> Option<(Sgemm, AttentionShape, [HeadRows; 3])> {
    let sgemm = crate::loaded_sgemm()?;
    if [q, k, v].iter().any(|t| t.dtype() != DType::F32 || t.layout().shape().num_dims() != 4) {
        return None;
    }
    let dims = |t: &FlexTensor| {
        let shape = t.layout().shape();
        [shape[0], shape[1], shape[2], shape[3]]
    };
    let shape = AttentionShape::of(dims(q), dims(k), dims(v), mask)?;
    Some((sgemm, shape, [HeadRows::of(q)?, HeadRows::of(k)?, HeadRows::of(v)?]))
}

/// The `[batch, queries, heads, value_dim]` output of [`attend`] as a `[batch, heads, queries,
/// value_dim]` view (merging the heads afterwards is then a free reshape).
pub(crate) fn output_heads(out: Vec<f32>, shape: &AttentionShape) -> FlexTensor {
    let out = FlexTensor::from_data(TensorData::new(out, [shape.batch, shape.queries, shape.heads, shape.value_dim]));
    Tensor::<Flex<f32>, 4>::from_primitive(TensorPrimitive::Float(out)).swap_dims(1, 2).into_primitive().tensor()
}

/// The sizes of one attention call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttentionShape {
    pub(crate) batch: usize,
    pub(crate) heads: usize,
    /// Query heads per key/value head.
    pub(crate) group: usize,
    pub(crate) queries: usize,
    pub(crate) keys: usize,
    pub(crate) head_dim: usize,
    pub(crate) value_dim: usize,
    pub(crate) mask: AttentionMask,
}

impl AttentionShape {
    /// The shape of `q` `[batch, heads, queries, head_dim]` against `k` `[batch, kv_heads, keys,
    /// head_dim]` and `v` `[batch, kv_heads, keys, value_dim]`; `None` when they do not fit
    /// together, are empty, have more causal queries than keys, or exceed a C int.
    pub(crate) fn of(q: [usize; 4], k: [usize; 4], v: [usize; 4], mask: AttentionMask) -> Option<Self> {
        let [batch, heads, queries, head_dim] = q;
        let [_, kv_heads, keys, value_dim] = v;
        let consistent = k == [batch, kv_heads, keys, head_dim] && v[0] == batch && kv_heads > 0 && heads % kv_heads == 0;
        let non_empty = [batch, heads, queries, keys, head_dim, value_dim].iter().all(|&size| size > 0);
        let causal_fits = mask == AttentionMask::None || queries <= keys;
        let fits_c_int =
            [keys * head_dim.max(value_dim), heads * value_dim.max(head_dim) * queries, QUERY_BLOCK * keys].iter().all(|&size| c_int::try_from(size).is_ok());
        (consistent && non_empty && causal_fits && fits_c_int).then_some(Self {
            batch,
            heads,
            group: heads / kv_heads,
            queries,
            keys,
            head_dim,
            value_dim,
            mask,
        })
    }

    /// Keys that query `i` may see (all of them, or up to its own position).
    pub(crate) fn visible_keys(&self, i: usize) -> usize {
        match self.mask {
            AttentionMask::None => self.keys,
            AttentionMask::Causal => self.keys - self.queries + i + 1,
        }
    }

    /// The `1 / √head_dim` the scores are scaled by.
    pub(crate) fn scale(&self) -> f32 {
        (self.head_dim as f32).sqrt().recip()
    }

    /// Every block of queries of every head, in the order both passes walk them.
    pub(crate) fn blocks(&self) -> impl Iterator<Item = Block> + '_ {
        let heads = (0..self.batch).flat_map(move |batch| (0..self.heads).map(move |head| (batch, head)));
        heads.flat_map(move |(batch, head)| {
            (0..self.queries).step_by(QUERY_BLOCK).map(move |first| {
                let rows = QUERY_BLOCK.min(self.queries - first);
                // The block's last query sees the most keys; the rows before it mask the rest.
                Block { batch, head, kv_head: head / self.group, first, rows, seen: self.visible_keys(first + rows - 1) }
            })
        })
    }
}

/// Queries `first..first + rows` of head `head` (key/value head `kv_head`) of batch row `batch`,
/// and the keys `0..seen` the block's last query sees.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Block {
    pub(crate) batch: usize,
    pub(crate) head: usize,
    pub(crate) kv_head: usize,
    pub(crate) first: usize,
    pub(crate) rows: usize,
    pub(crate) seen: usize,
}

/// A 4-D f32 tensor whose last axis is unit-strided, so that each `[batch, head]` slice is a
/// row-major matrix with a leading dimension: what sgemm reads without a copy.
pub(crate) struct HeadRows {
    tensor: FlexTensor,
    /// Strides of the batch, head and row axes.
    strides: [usize; 3],
    /// Columns of each row (the last axis).
    cols: usize,
}

impl HeadRows {
    /// `t` as it is when its strides allow (any non-negative batch and head strides, unit columns,
    /// rows at least a row apart), after a contiguous copy otherwise.
    pub(crate) fn of(t: &FlexTensor) -> Option<Self> {
        Self::strided(t.clone()).or_else(|| Self::strided(t.to_contiguous()))
    }

    fn strided(tensor: FlexTensor) -> Option<Self> {
        let layout = tensor.layout();
        let (shape, strides) = (layout.shape(), layout.strides());
        let unit_columns = strides[3] == 1 && strides[2] >= shape[3] as isize && strides[0] >= 0 && strides[1] >= 0;
        if !unit_columns {
            return None;
        }
        let cols = shape[3];
        let strides = [strides[0] as usize, strides[1] as usize, strides[2] as usize];
        let last = layout.start_offset() + (0..3).map(|axis| (shape[axis] - 1) * strides[axis]).sum::<usize>() + cols - 1;
        (last < tensor.storage::<f32>().len()).then_some(Self { tensor, strides, cols })
    }

    /// Rows `first..first + rows` of head `head` of batch row `batch`.
    pub(crate) fn rows(&self, batch: usize, head: usize, first: usize, rows: usize) -> Matrix<'_> {
        let start = self.tensor.layout().start_offset() + batch * self.strides[0] + head * self.strides[1] + first * self.strides[2];
        Matrix { data: &self.tensor.storage::<f32>()[start..], rows, cols: self.cols, leading: self.strides[2] }
    }
}

/// The attention output, `[batch, queries, heads, value_dim]` row-major. With `kept`, each block's
/// probabilities (`rows × seen`, in [`AttentionShape::blocks`] order) are appended to it.
pub(crate) fn attend(sgemm: Sgemm, shape: &AttentionShape, [q, k, v]: [&HeadRows; 3], mut kept: Option<&mut Vec<f32>>) -> Vec<f32> {
    let out_leading = shape.heads * shape.value_dim;
    let mut out = vec![0.0f32; shape.batch * shape.queries * out_leading];
    let mut scores = vec![0.0f32; QUERY_BLOCK.min(shape.queries) * shape.keys];
    for Block { batch, head, kv_head, first, rows, seen } in shape.blocks() {
        let probs = &mut scores[..rows * seen];
        let probs_out = MatrixMut { data: &mut *probs, rows, cols: seen, leading: seen };
        gemm(sgemm, shape.scale(), q.rows(batch, head, first, rows), false, k.rows(batch, kv_head, 0, seen), true, 0.0, probs_out);
        probs.par_chunks_mut(seen).enumerate().for_each(|(row, scores)| softmax_prefix(scores, shape.visible_keys(first + row)));
        let out_start = (batch * shape.queries + first) * out_leading + head * shape.value_dim;
        let out_block = MatrixMut { data: &mut out[out_start..], rows, cols: shape.value_dim, leading: out_leading };
        gemm(sgemm, 1.0, Matrix { data: probs, rows, cols: seen, leading: seen }, false, v.rows(batch, kv_head, 0, seen), false, 0.0, out_block);
        if let Some(kept) = kept.as_deref_mut() {
            kept.extend_from_slice(probs);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The attention in f64 on the host, inputs `[batch, heads, seq, dim]` row-major.
    fn attention_f64(q: &[f32], k: &[f32], v: &[f32], shape: &AttentionShape) -> Vec<f32> {
        let &AttentionShape { batch, heads, group, queries, keys, head_dim, value_dim, .. } = shape;
        let kv_heads = heads / group;
        let mut out = vec![0.0f32; batch * heads * queries * value_dim];
        for (b, h, i) in (0..batch).flat_map(|b| (0..heads).flat_map(move |h| (0..queries).map(move |i| (b, h, i)))) {
            let q_row = &q[((b * heads + h) * queries + i) * head_dim..][..head_dim];
            let kv = b * kv_heads + h / group;
            let seen = shape.visible_keys(i);
            let scores: Vec<f64> = (0..seen)
                .map(|j| {
                    q_row.iter().zip(&k[(kv * keys + j) * head_dim..][..head_dim]).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>() / (head_dim as f64).sqrt()
                })
                .collect();
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f64 = weights.iter().sum();
            for c in 0..value_dim {
                let value = (0..seen).map(|j| weights[j] * v[(kv * keys + j) * value_dim + c] as f64).sum::<f64>() / total;
                out[((b * heads + h) * queries + i) * value_dim + c] = value as f32;
            }
        }
        out
    }

    fn host(t: Heads) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap()
    }

    /// Grouped heads, several query blocks, a cached prefix (fewer queries than keys) and strided
    /// views as inputs, causal and not, against the f64 attention.
    #[test]
    fn attention_matches_an_f64_reference() {
        if crate::use_openblas().is_err() {
            assert_ne!(std::env::var("INTERLACE_OPENBLAS_TESTS").as_deref(), Ok("require"), "OpenBLAS must load");
            return;
        }
        let device = burn::backend::flex::FlexDevice;
        let random = |shape: [usize; 4]| Tensor::<Flex<f32>, 4>::random(shape, burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let (batch, heads, kv_heads, queries, keys, head_dim, value_dim) = (2, 4, 2, QUERY_BLOCK + 44, QUERY_BLOCK + 55, 8, 6);
        // q as the models pass it: heads swapped out of `[batch, queries, heads, head_dim]`.
        let q = random([batch, queries, heads, head_dim]).swap_dims(1, 2);
        let k = random([batch, kv_heads, keys, head_dim]);
        let v = random([batch, kv_heads, keys, value_dim + 3]).narrow(3, 2, value_dim);
        for mask in [AttentionMask::Causal, AttentionMask::None] {
            let shape = AttentionShape::of(q.dims(), k.dims(), v.dims(), mask).expect("consistent shapes");
            let expected = attention_f64(&host(q.clone()), &host(k.clone()), &host(v.clone()), &shape);
            let out = attention(&q, &k, &v, mask).expect("f32 inputs are taken");
            assert_eq!(out.dims(), [batch, heads, queries, value_dim]);
            let worst = host(out).iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(worst < 1e-5, "{mask:?}: worst difference {worst:e}");
        }
    }

    #[test]
    fn shapes_that_do_not_fit_together_are_declined() {
        let causal = AttentionMask::Causal;
        let ok = AttentionShape::of([1, 16, 5, 128], [1, 8, 9, 128], [1, 8, 9, 64], causal).expect("grouped heads fit");
        assert_eq!((ok.group, ok.visible_keys(0), ok.visible_keys(4)), (2, 5, 9));
        assert!(AttentionShape::of([1, 16, 5, 128], [1, 6, 9, 128], [1, 6, 9, 128], causal).is_none(), "16 heads over 6");
        assert!(AttentionShape::of([1, 16, 5, 128], [1, 8, 9, 64], [1, 8, 9, 128], causal).is_none(), "head dims differ");
        assert!(AttentionShape::of([1, 16, 10, 128], [1, 8, 9, 128], [1, 8, 9, 128], causal).is_none(), "more causal queries than keys");
        assert!(AttentionShape::of([1, 16, 10, 128], [1, 8, 9, 128], [1, 8, 9, 128], AttentionMask::None).is_some());
        assert!(AttentionShape::of([1, 16, 0, 128], [1, 8, 9, 128], [1, 8, 9, 128], causal).is_none(), "empty");
    }
}
