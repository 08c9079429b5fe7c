//! Decoder-only text LLMs of the Llama family on [burn](https://burn.dev), computing what
//! Hugging Face transformers computes:
//!
//! | transformers class | `model_type` | what differs |
//! |---|---|---|
//! | `LlamaForCausalLM` | `llama` | `llama3` / `linear` RoPE scaling, optional `attention_bias`, `mlp_bias` |
//! | `MistralForCausalLM` | `mistral` | sliding-window attention on every layer when `sliding_window` is set |
//! | `Qwen2ForCausalLM` | `qwen2` | q/k/v biases; sliding windows on the `layer_types` layers with `use_sliding_window` |
//! | `Qwen3ForCausalLM` | `qwen3` | per-head q/k RMSNorm, `head_dim` set apart from the width |
//!
//! Tied and untied output heads, grouped-query attention, and single-file or sharded bf16, f16
//! and f32 checkpoints are read. [`LlamaForCausalLM`] implements the shared traits
//! ([`interlace_core::DecoderStack`], [`interlace_core::ObservedForward`],
//! [`interlace_core::LayerwiseForward`], [`interlace_core::SkipLayersForward`],
//! [`interlace_core::IncrementalDecoder`]), so the analysis, surgery, training and evaluation
//! crates work on it unchanged; on-disk surgery uses the generic
//! [`interlace_core::DecoderOnlyLayout`].
//!
//! Parity with transformers is checked against goldens written by
//! `fixtures/make_text_decoder_fixtures.py` (`tests/parity.rs`).
#![deny(missing_docs)]

mod attention;
pub mod config;
mod error;
mod layer;
mod mlp;
mod model;
mod processor;
pub mod rope;

pub use attention::Attention;
pub use config::{Architecture, LayerAttention, LlamaConfig, RopeConfig, RopeScaling};
pub use error::{LlamaError, Result};
/// Cosine and sine tables shared by the layers of one pass (the Qwen3-VL crate's type).
pub use interlace_qwen3vl::text::TextRope as Rope;
pub use layer::DecoderLayer;
pub use mlp::Mlp;
pub use model::{LayerContext, LlamaForCausalLM, LlamaModel, TextCache, TextInput};
pub use processor::TextProcessor;
