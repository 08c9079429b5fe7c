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
    #[error("model: {0}")]
    Model(Box<dyn std::error::Error + Send + Sync>),
    /// Training data could not be read or turned into examples.
    #[error("data: {0}")]
    Data(String),
    /// Invalid training settings.
    #[error("invalid training settings: {0}")]
    Config(String),
    /// The trained model could not be written.
    #[error("export: {0}")]
    Export(String),
    /// A checkpoint could not be written or read.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// `resume` was asked with settings other than those the checkpoint was made with: the
    /// result would be neither the old run nor a new one.
    #[error(
        "cannot resume from {checkpoint}: it was made with other settings ({}); resume with the checkpoint's settings, or start afresh without --resume (or in another run directory)",
        .differences.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    ResumeMismatch {
        /// The checkpoint directory.
        checkpoint: std::path::PathBuf,
        /// Every differing setting, old and new.
        differences: Vec<crate::checkpoint::SettingDifference>,
    },
    /// A data-parallel replica could not agree with its peers (`burn::collective` failed, or
    /// another replica stopped).
    #[error("data-parallel training: {0}")]
    Collective(String),
    /// A layer set or plan is invalid.
    #[error(transparent)]
    Core(#[from] interlace_core::CoreError),
}
