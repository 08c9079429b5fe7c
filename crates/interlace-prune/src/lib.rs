//! INTERLACE for burn: shrink a vision-language model by dropping decoder layers, then recover
//! its quality by fine-tuning the layers next to them.
//!
//! This crate is the one to add (`cargo add interlace-prune`). It re-exports the toolkit and
//! offers [`Pipeline`], whose steps each also work alone:
//!
//! | step | here | underlying crate |
//! |---|---|---|
//! | load | [`qwen3vl::Qwen3VlForConditionalGeneration::from_pretrained`] | `interlace-qwen3vl` |
//! | calibrate | [`Pipeline::calibrate`] | `interlace-similarity` |
//! | select | [`Pipeline::select`] | `interlace-similarity` |
//! | prune | [`Pipeline::prune`] (on disk, streaming) or [`core::DecoderStack::remove_layers`] | `interlace-surgery` |
//! | adapt | [`Pipeline::adapt`] | `interlace-train` |
//! | evaluate | [`evaluate_dir`], [`eval`] | `interlace-eval` |
//!
//! Everything is generic over burn backends; the [`with_backend!`] macro picks one at run time
//! among those compiled in (features `ndarray` (default), `wgpu`, `cuda`).
//!
//! Any decoder stack works with the analysis, surgery and trainer: implement
//! [`core::DecoderStack`] and [`core::ObservedForward`] (see `tests/any_decoder.rs` for a plain
//! text decoder going through calibrate → select → prune).
#![deny(missing_docs)]

mod allocator;
mod backend;
mod evaluate;
mod pipeline;
pub mod registry;

pub use allocator::keep_freed_memory;
pub use backend::{devices_at, not_compiled, BackendKind, DeviceIndex, FloatKind};
pub use evaluate::{compare_prefill_dirs, evaluate_dir, DirEvalOptions, DirEvaluation};
#[cfg(feature = "flex")]
pub use interlace_openblas::{use_openblas, OpenBlasError, OPENBLAS_ENV};

/// The burn version interlace is built on (re-exported so users get exactly the same one).
pub use burn;
pub use pipeline::{adapt_dir, check_plan_matches, sha256_file, AdaptOptions, CalibrationOptions, Pipeline, PipelineError};

pub use interlace_chat as chat;
pub use interlace_core as core;
pub use interlace_data as data;
pub use interlace_eval as eval;
pub use interlace_hub as hub;
pub use interlace_llama as llama;
pub use interlace_qwen3vl as qwen3vl;
pub use interlace_similarity as similarity;
pub use interlace_surgery as surgery;
pub use interlace_train as train;

/// The types most programs need.
pub mod prelude {
    pub use crate::core::{DecoderStack, LayerSet, ObservedForward, Plan, TapPoint};
    pub use crate::qwen3vl::{Qwen3VlForConditionalGeneration, Qwen3VlInput};
    pub use crate::similarity::Strategy;
    pub use crate::train::TrainConfig;
    pub use crate::{AdaptOptions, BackendKind, CalibrationOptions, FloatKind, Pipeline};
}
