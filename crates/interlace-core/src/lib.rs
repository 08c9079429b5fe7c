//! Shared vocabulary of the interlace crates.
//!
//! INTERLACE works on any stack of decoder layers: it measures how much each layer changes the
//! hidden state, drops some layers and fine-tunes a few others. This crate holds the traits that
//! let the analysis, surgery and training crates do that without knowing a model family:
//!
//! - [`DecoderStack`]: a model made of `L` decoder layers that can be counted, removed and frozen.
//! - [`HiddenStateObserver`]: receives the hidden states `h_0 … h_L` one at a time during a forward
//!   pass, so statistics are computed while the pass runs and no state is kept.
//! - [`ObservedForward`]: a stack that runs one input of its own kind with an observer attached.
//! - [`LayerwiseForward`]: the same pass taken apart layer by layer (activation checkpointing).
//! - [`SkipLayersForward`]: the pass with some layers left out, as if removed (loss-based
//!   selection such as SLEB).
//! - [`LayerSet`]: a validated, sorted set of layer indices.
//! - [`Plan`]: which layers to drop, fine-tune and freeze (`plan.json`).
//! - [`CheckpointLayout`]: how a family names per-layer tensors and config fields on disk.
//! - [`CastParams`], [`RequireGrad`]: module mappers that prepare a stack for training.
//! - [`linear_kernel`]: the `x · Wᵀ` of linear layers, with a faster kernel per backend.
//! - [`attention_kernel`]: scaled dot-product attention, with a faster kernel per backend.
#![deny(missing_docs)]

pub mod attention_kernel;
mod decode;
mod error;
mod kernel_registry;
mod kinds;
mod layers;
mod layerwise;
mod layout;
pub mod linear_kernel;
mod mappers;
mod observer;
mod plan;
mod skip;
mod stack;

pub use decode::IncrementalDecoder;
pub use error::CoreError;
pub use kinds::{PeriodicKindsLayout, PeriodicLayerKinds};
pub use layers::LayerSet;
pub use layerwise::{has_trainable_params, LayerwiseForward};
pub use layout::{indexed_tensor, CheckpointLayout, DecoderOnlyLayout, TapLayout, VisionLayout};
pub use mappers::{CastParams, RequireGrad};
pub use observer::{CollectHiddenStates, HiddenStateObserver, NoObserver, TapPoint};
pub use plan::{Plan, PlanError, MAX_LAYERS};
pub use skip::SkipLayersForward;
pub use stack::{DecoderStack, ObservedForward};
