//! Grouped-query self-attention of the Llama family: optional q/k/v/o biases (Qwen2, Llama's
//! `attention_bias`), optional per-head query/key RMSNorm (Qwen3), RoPE, and a causal mask that
//! may be limited to a sliding window (Mistral, Qwen2/Qwen3 `sliding_attention` layers).

use burn::module::Module;
use burn::prelude::{Backend, Bool, Int, Tensor};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use interlace_qwen3vl::attention::causal_attention;
use interlace_qwen3vl::cache::LayerCache;
use interlace_qwen3vl::linear::HfLinear;
use interlace_qwen3vl::norm::RmsNorm;
use interlace_qwen3vl::text::{repeat_kv, TextRope as Rope};

use crate::config::LayerAttention;

/// `self_attn` of one decoder layer.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
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
    /// Sliding window length; 0 for full causal attention (a plain number keeps the module
    /// derive simple).
    pub window: usize,
}

impl<B: Backend> Attention<B> {
    /// What this layer's queries see.
    pub fn kind(&self) -> LayerAttention {
        match self.window {
            0 => LayerAttention::Full,
            window => LayerAttention::Sliding { window },
        }
    }

    /// Attends `x` `[batch, seq, H]` to itself (and, with a cache, to everything cached before
    /// it; this step's keys and values are appended).
    pub fn forward(&self, x: Tensor<B, 3>, rope: &Rope<B>, cache: Option<&mut LayerCache<B>>) -> Tensor<B, 3> {
        let [batch, seq, _] = x.dims();
        let split_heads = |t: Tensor<B, 3>, heads: usize| t.reshape([batch, seq, heads, self.head_dim]);
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
        let n_rep = self.num_heads / self.num_kv_heads;
        let mask = self.window_mask(batch, seq, k.dims()[2], &k.device());
        let out = match mask {
            None => causal_attention(q, k, v),
            Some(mask) => {
                let options = AttentionModuleOptions { scale: None, softcap: None, is_causal: true };
                attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), Some(mask), None, options)
            }
        };
        self.o_proj.forward(out.swap_dims(1, 2).reshape([batch, seq, self.num_heads * self.head_dim]))
    }

    /// The keys outside the window, `true` where masked, `[batch, heads, queries, keys]`; `None`
    /// when the window hides nothing (full attention, or no query reaches past it). Queries are
    /// the last `queries` of the `keys` positions (the causal part is burn's `is_causal`).
    fn window_mask(&self, batch: usize, queries: usize, keys: usize, device: &B::Device) -> Option<Tensor<B, 4, Bool>> {
        if self.window == 0 || keys <= self.window {
            return None;
        }
        let offset = (keys - queries) as i64;
        let query_positions = Tensor::<B, 1, Int>::arange(offset..offset + queries as i64, device).reshape([queries, 1]);
        let key_positions = Tensor::<B, 1, Int>::arange(0..keys as i64, device).reshape([1, keys]);
        // transformers keeps key k for query q when k > q - window.
        let hidden = key_positions.add_scalar(self.window as i64).lower_equal(query_positions);
        Some(hidden.unsqueeze::<4>().expand([batch, self.num_heads, queries, keys]))
    }
}
