use thiserror::Error;

/// Errors of the adaptation trainer.
#[derive(Debug, Error)]
pub enum TrainError {
    /// Tensor shapes or labels do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A batch has no supervised (assistant) token, so it has no loss.
    #[error("the batch has no supervised tokens (no assistant turn survived truncation?)")]
    NoSupervisedTokens,
    /// The loss or gradient norm is NaN or infinite.
    #[error("non-finite {what} at step {step}: {value}")]
    NonFinite {
        /// `loss` or `gradient norm`.
        what: &'static str,
        /// Optimizer step.
        step: usize,
        /// The value seen.
        value: f64,
    },
    /// The model failed.
    #[error(transparent)]
    Model(#[from] interlace_qwen3vl::Qwen3VlError),
    /// A layer set or plan is invalid.
    #[error(transparent)]
    Core(#[from] interlace_core::CoreError),
}
