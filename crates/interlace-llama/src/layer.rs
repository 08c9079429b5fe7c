//! One pre-norm decoder layer (`model.layers.{i}`): attention and MLP, each behind an RMSNorm and
//! added to the residual stream.

use burn::module::Module;
use burn::prelude::{Backend, Tensor};
use burn::tensor::DType;
use interlace_qwen3vl::cache::LayerCache;
use interlace_qwen3vl::loader::WeightLoader;
use interlace_qwen3vl::norm::RmsNorm;

use crate::attention::Attention;
use crate::config::{LayerAttention, LlamaConfig};
use crate::mlp::Mlp;
use crate::Result;
use crate::Rope;

/// `model.layers.{i}`.
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    /// Attention.
    pub self_attn: Attention<B>,
    /// MLP.
    pub mlp: Mlp<B>,
    /// Norm before attention.
    pub input_layernorm: RmsNorm<B>,
    /// Norm before the MLP.
    pub post_attention_layernorm: RmsNorm<B>,
}

impl<B: Backend> DecoderLayer<B> {
    /// Loads `{prefix}.*`, layer `index` of the decoder (its index picks its attention kind).
    pub fn load(loader: &WeightLoader<B>, prefix: &str, index: usize, c: &LlamaConfig) -> Result<Self> {
        let (h, d, eps) = (c.hidden_size, c.head_dim, c.rms_norm_eps);
        let linear = |name: &str, out: usize, inp: usize, bias: bool| loader.linear(&format!("{prefix}.{name}"), out, inp, bias);
        let head_norm = |name: &str| loader.rms_norm(&format!("{prefix}.self_attn.{name}"), d, eps);
        Ok(Self {
            self_attn: Attention {
                q_proj: linear("self_attn.q_proj", c.num_attention_heads * d, h, c.qkv_bias)?,
                k_proj: linear("self_attn.k_proj", c.num_key_value_heads * d, h, c.qkv_bias)?,
                v_proj: linear("self_attn.v_proj", c.num_key_value_heads * d, h, c.qkv_bias)?,
                o_proj: linear("self_attn.o_proj", h, c.num_attention_heads * d, c.o_bias)?,
                q_norm: if c.qk_norm { Some(head_norm("q_norm")?) } else { None },
                k_norm: if c.qk_norm { Some(head_norm("k_norm")?) } else { None },
                num_heads: c.num_attention_heads,
                num_kv_heads: c.num_key_value_heads,
                head_dim: d,
                window: match c.layer_attention[index] {
                    LayerAttention::Full => 0,
                    LayerAttention::Sliding { window } => window,
                },
            },
            mlp: Mlp {
                gate_proj: linear("mlp.gate_proj", c.intermediate_size, h, c.mlp_bias)?,
                up_proj: linear("mlp.up_proj", c.intermediate_size, h, c.mlp_bias)?,
                down_proj: linear("mlp.down_proj", h, c.intermediate_size, c.mlp_bias)?,
            },
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
    pub fn forward(&self, x: Tensor<B, 3>, rope: &Rope<B>, cache: Option<&mut LayerCache<B>>) -> Tensor<B, 3> {
        let stream_dtype = x.dtype();
        let x = x.cast(self.dtype());
        let h = x.clone() + self.self_attn.forward(self.input_layernorm.forward(x), rope, cache);
        let normed = self.post_attention_layernorm.forward(h.clone());
        (h + self.mlp.forward(normed)).cast(stream_dtype)
    }

    /// The dtype of the layer's weights.
    pub fn dtype(&self) -> DType {
        self.input_layernorm.weight.val().dtype()
    }
}
