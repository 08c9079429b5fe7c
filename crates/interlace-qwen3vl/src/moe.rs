//! The sparse mixture-of-experts MLP of Qwen3-VL-MoE (`Qwen3VLMoeTextSparseMoeBlock`): a linear
//! router picks `top_k` experts per token, their SwiGLU outputs are summed with the router's
//! softmax probabilities renormalised over the chosen experts.
//!
//! Routing follows transformers exactly: softmax in f32, top-k, division by the sum of the chosen
//! probabilities, cast back to the compute dtype, then experts in ascending index order each add
//! their weighted output into the tokens routed to them. Only the tokens routed to an expert are
//! gathered for it, so one expert's activations exist at a time (never `[tokens, experts, width]`).

use burn::module::{Module, Param};
use burn::prelude::{Backend, Int, Tensor};
use burn::tensor::activation::softmax;
use burn::tensor::{DType, IndexingUpdateOp, TensorData};

use crate::activation::silu;
use crate::linear::HfLinear;
use crate::loader::WeightLoader;
use crate::Result;

/// How the fused expert tensors are stored. transformers 5 keeps `[E, out, in]` and reads the
/// older hub files' transposed `[E, in, out]` too (its `Transpose(1, 2, check_dims=True)`
/// conversion); interlace keeps whichever layout the file has, so trained tensors are written
/// back in the file's own layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpertLayout {
    /// `gate_up_proj [E, 2·I, H]`, `down_proj [E, H, I]` (transformers 5's `save_pretrained`).
    OutIn,
    /// `gate_up_proj [E, H, 2·I]`, `down_proj [E, I, H]` (the Qwen3-VL-MoE hub files).
    InOut,
}

/// The experts of one sparse layer (`mlp.experts`), as the two fused tensors of the checkpoint.
#[derive(Module, Debug)]
pub struct TextExperts<B: Backend> {
    /// Gate and up projections of every expert, gate first (see [`ExpertLayout`]).
    pub gate_up_proj: Param<Tensor<B, 3>>,
    /// Down projection of every expert.
    pub down_proj: Param<Tensor<B, 3>>,
    /// The storage layout of both tensors.
    #[module(skip)]
    pub layout: ExpertLayout,
}

/// Loads a sparse block's router `{prefix}.gate.weight` `[E, H]` and experts
/// `{prefix}.experts.gate_up_proj` / `{prefix}.experts.down_proj`, in either [`ExpertLayout`].
pub fn load_sparse<B: Backend>(loader: &WeightLoader<B>, prefix: &str, experts: usize, hidden: usize, width: usize) -> Result<(HfLinear<B>, TextExperts<B>)> {
    let gate = loader.linear(&format!("{prefix}.gate"), experts, hidden, false)?;
    let (gate_up, down) = (format!("{prefix}.experts.gate_up_proj"), format!("{prefix}.experts.down_proj"));
    let out_in = ([experts, 2 * width, hidden], [experts, hidden, width]);
    let in_out = ([experts, hidden, 2 * width], [experts, width, hidden]);
    // A square `2·I = H` reads as transformers 5's layout, as transformers decides.
    let stored = loader.checkpoint().and_then(|c| c.shape(&gate_up)).map(<[usize]>::to_vec);
    let (layout, (gate_up_shape, down_shape)) = match stored {
        Some(shape) if shape != out_in.0 && shape == in_out.0 => (ExpertLayout::InOut, in_out),
        _ => (ExpertLayout::OutIn, out_in),
    };
    Ok((gate, TextExperts { gate_up_proj: loader.param(&gate_up, gate_up_shape)?, down_proj: loader.param(&down, down_shape)?, layout }))
}

/// Applies a sparse block (router, experts, `top_k` per token) to `x` `[batch, seq, H]`.
pub fn sparse_forward<B: Backend>(router: &HfLinear<B>, experts: &TextExperts<B>, top_k: usize, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [batch, seq, hidden] = x.dims();
    let tokens = x.reshape([batch * seq, hidden]);
    let logits = router.forward(tokens.clone());
    let (weights, routed) = route(logits.clone().cast(DType::F32), top_k);
    let weights = weights.cast(logits.dtype());
    let mut out = tokens.zeros_like();
    for (expert, rows) in routed.iter().enumerate().filter(|(_, rows)| !rows.is_empty()) {
        let index = Tensor::<B, 1, Int>::from_data(TensorData::new(rows.clone(), [rows.len()]), &tokens.device());
        let scale = weights.clone().select(0, index.clone()).slice([0..rows.len(), expert..expert + 1]);
        // The `[rows, 1]` scale is expanded before the multiply: burn 0.21's fusion (wgpu, and the
        // same fuser on CUDA) computed wrong values broadcasting it over the expert's matmul
        // output (`on_wgpu_the_moe_and_qwen2_5_vl_families_match_transformers` caught it: a
        // token alone with its expert was off by 150%).
        let contribution = experts.forward(expert, tokens.clone().select(0, index.clone())) * scale.expand([rows.len(), hidden]);
        out = out.select_assign(0, index, contribution, IndexingUpdateOp::Add);
    }
    out.reshape([batch, seq, hidden])
}

/// `[tokens, E]` weights (the softmax probability of each chosen expert divided by the sum over
/// the token's chosen experts, zero elsewhere) and, per expert, the tokens routed to it
/// (ascending). The choice is made on the host; the weights stay a function of the router
/// logits, so the router learns when its layer trains.
fn route<B: Backend>(logits: Tensor<B, 2>, k: usize) -> (Tensor<B, 2>, Vec<Vec<i64>>) {
    let [tokens, experts] = logits.dims();
    let probs = softmax(logits, 1);
    let host = probs.clone().into_data().into_vec::<f32>().expect("router probabilities are f32");
    let mut mask = vec![0f32; tokens * experts];
    let mut routed = vec![Vec::new(); experts];
    for (token, row) in host.chunks_exact(experts).enumerate() {
        for expert in top_k(row, k) {
            mask[token * experts + expert] = 1.0;
            routed[expert].push(token as i64);
        }
    }
    let chosen = probs.clone() * Tensor::from_data(TensorData::new(mask, [tokens, experts]), (&probs.device(), DType::F32));
    (chosen.clone() / chosen.sum_dim(1), routed)
}

impl<B: Backend> TextExperts<B> {
    /// Expert `index` applied to `x` `[n, H]`: `down(silu(gate(x)) · up(x))`.
    fn forward(&self, index: usize, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let gate_up = project(x, &self.gate_up_proj, index, self.layout);
        let width = gate_up.dims()[1] / 2;
        let n = gate_up.dims()[0];
        let hidden = silu(gate_up.clone().slice([0..n, 0..width])) * gate_up.slice([0..n, width..2 * width]);
        project(hidden, &self.down_proj, index, self.layout)
    }
}

/// `x @ W[index]ᵀ` for an `[E, out, in]` stack, `x @ W[index]` for `[E, in, out]`.
fn project<B: Backend>(x: Tensor<B, 2>, stack: &Param<Tensor<B, 3>>, index: usize, layout: ExpertLayout) -> Tensor<B, 2> {
    let [_, rows, cols] = stack.dims();
    let weight = stack.val().slice([index..index + 1, 0..rows, 0..cols]).reshape([rows, cols]);
    match layout {
        ExpertLayout::OutIn => x.matmul(weight.transpose()),
        ExpertLayout::InOut => x.matmul(weight),
    }
}

/// The indices of the `k` largest values, largest first (ties: lower index first).
fn top_k(row: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    order.truncate(k);
    order
}

#[cfg(test)]
mod tests {
    use super::top_k;

    #[test]
    fn top_k_takes_the_largest_and_breaks_ties_by_index() {
        assert_eq!(top_k(&[0.1, 0.4, 0.2, 0.3], 2), [1, 3]);
        assert_eq!(top_k(&[0.25, 0.25, 0.5, 0.0], 2), [2, 0]);
    }
}
