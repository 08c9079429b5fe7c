//! The Qwen3 text decoder: QK-normed GQA attention with interleaved M-RoPE and a SwiGLU MLP
//! (spec §4), or in the sparse layers of Qwen3-VL-MoE a mixture of SwiGLU experts.

use std::sync::Mutex;

use burn::module::Module;
use burn::prelude::{Backend, Tensor};
use burn::tensor::DType;

use crate::activation::silu;
use crate::attention::causal_attention;
use crate::cache::LayerCache;
use crate::config::TextConfig;
use crate::linear::HfLinear;
use crate::loader::WeightLoader;
use crate::moe::{load_sparse, sparse_forward, TextExperts};
use crate::norm::RmsNorm;
use crate::rope::{apply_rotary, repeat_along};
use crate::Result;

/// Cosine and sine tables `[1, 1, seq, head_dim]` in the model dtype, shared by all layers of
/// one forward pass.
#[derive(Debug)]
pub struct TextRope<B: Backend> {
    /// Cosines.
    pub cos: Tensor<B, 4>,
    /// Sines.
    pub sin: Tensor<B, 4>,
    /// The tables laid out as `[1, seq, heads, head_dim]`, built once per head count and dtype
    /// for all layers ([`TextRope::rotate`]).
    per_heads: Mutex<Vec<HeadTables<B>>>,
}

/// Head count and dtype, with the cosine and sine tables laid out for them.
type HeadTables<B> = (usize, DType, Tensor<B, 4>, Tensor<B, 4>);

impl<B: Backend> Clone for TextRope<B> {
    fn clone(&self) -> Self {
        Self::new(self.cos.clone(), self.sin.clone())
    }
}

impl<B: Backend> TextRope<B> {
    /// Wraps cosine and sine tables `[1, 1, seq, head_dim]`.
    pub fn new(cos: Tensor<B, 4>, sin: Tensor<B, 4>) -> Self {
        Self { cos, sin, per_heads: Mutex::new(Vec::new()) }
    }

    /// Rotates `x` `[batch, seq, heads, head_dim]` (heads not yet moved to axis 1), which is
    /// [`apply_rotary`] with the tables broadcast over batch and heads.
    ///
    /// The tables are repeated over the heads once per pass ([`repeat_along`] says why) and the
    /// rotation runs before the heads move to axis 1, so every product sees equal contiguous
    /// shapes; the values are those of the broadcast formula.
    pub fn rotate(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let heads = x.dims()[2];
        let dtype = x.dtype();
        let (cos, sin) = self.tables_for(heads, dtype);
        apply_rotary(x, cos, sin)
    }

    /// The `[1, seq, heads, head_dim]` tables in `dtype`, from the cache or built now.
    fn tables_for(&self, heads: usize, dtype: DType) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let mut cache = self.per_heads.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, _, cos, sin)) = cache.iter().find(|(h, d, _, _)| *h == heads && *d == dtype) {
            return (cos.clone(), sin.clone());
        }
        let layout = |t: &Tensor<B, 4>| repeat_along(t.clone().cast(dtype).swap_dims(1, 2), 2, heads);
        let (cos, sin) = (layout(&self.cos), layout(&self.sin));
        cache.push((heads, dtype, cos.clone(), sin.clone()));
        (cos, sin)
    }
}

/// Self-attention with grouped key/value heads; Qwen3 normalises each query and key head
/// (`q_norm`, `k_norm`), Qwen2 adds biases to the q, k and v projections instead.
#[derive(Module, Debug)]
pub struct TextAttention<B: Backend> {
    /// `[nq·D, H]`.
    pub q_proj: HfLinear<B>,
    /// `[nkv·D, H]`.
    pub k_proj: HfLinear<B>,
    /// `[nkv·D, H]`.
    pub v_proj: HfLinear<B>,
    /// `[H, nq·D]`.
    pub o_proj: HfLinear<B>,
    /// Per-head query norm `[D]` (Qwen3).
    pub q_norm: Option<RmsNorm<B>>,
    /// Per-head key norm `[D]` (Qwen3).
    pub k_norm: Option<RmsNorm<B>>,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Per-head width.
    pub head_dim: usize,
}

/// A layer's MLP (`mlp`): the dense SwiGLU `down(silu(gate(x)) · up(x))`, or in a sparse layer of
/// Qwen3-VL-MoE a router and [`TextExperts`].
///
/// Exactly one of the two is present. They share this one struct (rather than an enum) so that
/// module paths stay the checkpoint's tensor names (`mlp.up_proj.weight`, `mlp.gate.weight`,
/// `mlp.experts.gate_up_proj`): burn names enum variants in paths, `Option`s it does not.
#[derive(Module, Debug)]
pub struct TextMlp<B: Backend> {
    /// Dense gate projection `[I, H]`.
    pub gate_proj: Option<HfLinear<B>>,
    /// Dense up projection `[I, H]`.
    pub up_proj: Option<HfLinear<B>>,
    /// Dense down projection `[H, I]`.
    pub down_proj: Option<HfLinear<B>>,
    /// Router `[E, H]` of a sparse layer.
    pub gate: Option<HfLinear<B>>,
    /// Experts of a sparse layer.
    pub experts: Option<TextExperts<B>>,
    /// Experts per token in a sparse layer.
    #[module(skip)]
    pub top_k: usize,
}

/// One pre-norm decoder layer (`model.language_model.layers.{i}`).
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    /// Attention.
    pub self_attn: TextAttention<B>,
    /// MLP.
    pub mlp: TextMlp<B>,
    /// Norm before attention.
    pub input_layernorm: RmsNorm<B>,
    /// Norm before the MLP.
    pub post_attention_layernorm: RmsNorm<B>,
}

impl<B: Backend> DecoderLayer<B> {
    /// Loads `{prefix}.*`, layer `index` of the decoder (its index decides dense or sparse).
    pub fn load(loader: &WeightLoader<B>, prefix: &str, index: usize, c: &TextConfig) -> Result<Self> {
        let (h, d) = (c.hidden_size, c.head_dim);
        let eps = c.rms_norm_eps;
        Ok(Self {
            self_attn: TextAttention {
                q_proj: loader.linear(&format!("{prefix}.self_attn.q_proj"), c.num_attention_heads * d, h, c.qkv_bias)?,
                k_proj: loader.linear(&format!("{prefix}.self_attn.k_proj"), c.num_key_value_heads * d, h, c.qkv_bias)?,
                v_proj: loader.linear(&format!("{prefix}.self_attn.v_proj"), c.num_key_value_heads * d, h, c.qkv_bias)?,
                o_proj: loader.linear(&format!("{prefix}.self_attn.o_proj"), h, c.num_attention_heads * d, false)?,
                q_norm: if c.qk_norm { Some(loader.rms_norm(&format!("{prefix}.self_attn.q_norm"), d, eps)?) } else { None },
                k_norm: if c.qk_norm { Some(loader.rms_norm(&format!("{prefix}.self_attn.k_norm"), d, eps)?) } else { None },
                num_heads: c.num_attention_heads,
                num_kv_heads: c.num_key_value_heads,
                head_dim: d,
            },
            mlp: TextMlp::load(loader, &format!("{prefix}.mlp"), index, c)?,
            input_layernorm: loader.rms_norm(&format!("{prefix}.input_layernorm"), h, eps)?,
            post_attention_layernorm: loader.rms_norm(&format!("{prefix}.post_attention_layernorm"), h, eps)?,
        })
    }

    /// Applies the layer to `x` `[batch, seq, H]`; with a cache, appends this step's keys and
    /// values and attends over everything cached.
    ///
    /// The layer computes in the dtype of its own weights: a layer kept in f32 inside a bf16
    /// model (a trainable layer with f32 master weights) upcasts its input and rounds its output
    /// back to the stream's dtype.
    pub fn forward(&self, x: Tensor<B, 3>, rope: &TextRope<B>, cache: Option<&mut LayerCache<B>>) -> Tensor<B, 3> {
        let stream_dtype = x.dtype();
        let x = x.cast(self.dtype());
        let h = x.clone() + self.self_attn.forward(self.input_layernorm.forward(x), rope, cache);
        let normed = self.post_attention_layernorm.forward(h.clone());
        (h + self.mlp.forward(normed)).cast(stream_dtype)
    }

    /// The dtype of the layer's weights.
    pub fn dtype(&self) -> burn::tensor::DType {
        self.input_layernorm.weight.val().dtype()
    }
}

impl<B: Backend> TextMlp<B> {
    /// Loads the MLP of layer `index` at `prefix`: sparse when the config says so.
    pub fn load(loader: &WeightLoader<B>, prefix: &str, index: usize, c: &TextConfig) -> Result<Self> {
        let h = c.hidden_size;
        match c.moe.as_ref().filter(|moe| moe.is_sparse(index)) {
            Some(moe) => {
                let (router, experts) = load_sparse(loader, prefix, moe.num_experts, h, moe.moe_intermediate_size)?;
                Ok(Self { gate_proj: None, up_proj: None, down_proj: None, gate: Some(router), experts: Some(experts), top_k: moe.num_experts_per_tok })
            }
            None => Ok(Self {
                gate_proj: Some(loader.linear(&format!("{prefix}.gate_proj"), c.intermediate_size, h, false)?),
                up_proj: Some(loader.linear(&format!("{prefix}.up_proj"), c.intermediate_size, h, false)?),
                down_proj: Some(loader.linear(&format!("{prefix}.down_proj"), h, c.intermediate_size, false)?),
                gate: None,
                experts: None,
                top_k: 0,
            }),
        }
    }

    /// Whether this is a sparse MoE block.
    pub fn is_sparse(&self) -> bool {
        self.experts.is_some()
    }

    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        match (&self.gate_proj, &self.up_proj, &self.down_proj, &self.gate, &self.experts) {
            (Some(gate), Some(up), Some(down), None, None) => down.forward(silu(gate.forward(x.clone())) * up.forward(x)),
            (None, None, None, Some(router), Some(experts)) => sparse_forward(router, experts, self.top_k, x),
            _ => unreachable!("TextMlp holds either the dense projections or a router with experts"),
        }
    }
}

impl<B: Backend> TextAttention<B> {
    fn forward(&self, x: Tensor<B, 3>, rope: &TextRope<B>, cache: Option<&mut LayerCache<B>>) -> Tensor<B, 3> {
        let [batch, seq, _] = x.dims();
        let split_heads = |t: Tensor<B, 3>, heads: usize| t.reshape([batch, seq, heads, self.head_dim]);
        // QK-norm per head (Qwen3) before RoPE; heads move to axis 1 for attention after RoPE.
        let norm = |t: Tensor<B, 4>, norm: &Option<RmsNorm<B>>| match norm {
            Some(norm) => norm.forward(t),
            None => t,
        };
        let q = rope.rotate(norm(split_heads(self.q_proj.forward(x.clone()), self.num_heads), &self.q_norm)).swap_dims(1, 2);
        let k = rope.rotate(norm(split_heads(self.k_proj.forward(x.clone()), self.num_kv_heads), &self.k_norm)).swap_dims(1, 2);
        let v = split_heads(self.v_proj.forward(x), self.num_kv_heads).swap_dims(1, 2);
        let (k, v) = match cache {
            Some(cache) => cache.append(k, v),
            None => (k, v),
        };
        let out = causal_attention(q, k, v);
        self.o_proj.forward(out.swap_dims(1, 2).reshape([batch, seq, self.num_heads * self.head_dim]))
    }
}

/// Repeats each key/value head `n_rep` times so kv head `g` serves query heads
/// `g·n_rep .. (g+1)·n_rep`.
pub fn repeat_kv<B: Backend>(x: Tensor<B, 4>, n_rep: usize) -> Tensor<B, 4> {
    if n_rep == 1 {
        return x;
    }
    let [batch, heads, seq, dim] = x.dims();
    x.unsqueeze_dim::<5>(2).expand([batch, heads, n_rep, seq, dim]).reshape([batch, heads * n_rep, seq, dim])
}
