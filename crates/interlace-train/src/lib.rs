//! INTERLACE adaptation: after pruning, recover quality by training only the plan's fine-tune
//! layers while every other weight stays frozen.
//!
//! Building blocks, each usable alone:
//! - [`assistant_labels`]: assistant-only supervision of a rendered conversation;
//! - [`causal_lm_loss`]: transformers' masked causal-LM loss;
//! - [`example_gradients`]: one example's gradients, optionally with activation
//!   checkpointing (layers recomputed during the backward pass);
//! - [`clip_grad_norm`]: PyTorch-style global gradient-norm clipping;
//! - [`CosineWithWarmup`]: the learning-rate schedule;
//! - [`train`] / [`train_data_parallel`]: the whole loop, on one device or data-parallel on
//!   several through `burn::collective`;
//! - AdamW is burn's (`burn::optim::AdamWConfig`), configured like PyTorch's by
//!   [`pytorch_adamw`].
#![deny(missing_docs)]

pub mod checkpoint;
mod clip;
pub mod data;
mod error;
pub mod export;
mod gradients;
mod loss;
pub mod params;
pub mod plot;
mod replica;
mod schedule;
mod trainer;

pub use clip::{clip_grad_norm, global_grad_norm};
pub use data::{ConversationDataset, ConversationRecord, ExampleSource, Skipped, TrainingExample};
pub use error::TrainError;
pub use gradients::{example_gradients, Backward};
pub use interlace_chat::labels::{assistant_labels, supervised_tokens, TurnMarkers, IGNORE_INDEX};
pub use loss::{causal_lm_loss, token_losses, SupervisedTargets};
pub use schedule::CosineWithWarmup;
pub use trainer::{train, train_data_parallel, LossNormalization, StepLog, TrainConfig, TrainReport};

/// burn's AdamW with PyTorch's defaults (betas 0.9/0.999, eps 1e-8) and the given weight decay;
/// burn's own defaults (eps 1e-5, weight decay 1e-4) would silently change the training.
pub fn pytorch_adamw(weight_decay: f32) -> burn::optim::AdamWConfig {
    burn::optim::AdamWConfig::new().with_beta_1(0.9).with_beta_2(0.999).with_epsilon(1e-8).with_weight_decay(weight_decay)
}
