//! Qwen3-VL and Qwen3-VL-MoE on [burn](https://burn.dev), computing what Hugging Face
//! transformers computes.
//!
//! - [`Qwen3VlForConditionalGeneration::from_pretrained`] loads a Hugging Face model directory
//!   (single or sharded safetensors, bf16/f16/f32) in the float dtype you choose.
//! - [`processor::Qwen3VlProcessor`] renders the chat template, tokenizes and preprocesses images
//!   exactly as `AutoProcessor` does.
//! - [`generate()`] decodes with a KV cache, greedily or with seeded sampling.
//! - The model implements [`interlace_core::DecoderStack`] and
//!   [`interlace_core::ObservedForward`], so the INTERLACE analysis, surgery and training crates
//!   work on it without knowing it is Qwen.
//!
//! Correctness is checked against fixtures produced by transformers (see `fixtures/` in the
//! repository and `docs/parity.md`).
#![deny(missing_docs)]

mod activation;
pub mod attention;
pub mod cache;
mod chat_processor;
pub mod checkpoint;
pub mod config;
mod error;
pub mod generate;
mod input;
pub mod layout;
pub mod linear;
pub mod loader;
pub mod model;
pub mod moe;
pub mod norm;
pub mod processor;
pub mod rope;
pub mod text;
pub mod vision;

pub use cache::KvCache;
pub use config::{Family, MoeConfig, Qwen3VlConfig, TextConfig, VisionConfig, VisionKind};
pub use error::{Qwen3VlError, Result};
pub use generate::{generate, GenerationConfig, GenerationOutput, Sampling};
pub use input::Qwen3VlInput;
/// LLaVA / FineVision conversation files (moved to `interlace-chat`, re-exported here).
pub use interlace_chat::llava;
pub use model::{LayerContext, LogitsFor, Qwen3Vl, Qwen3VlForConditionalGeneration};
