use thiserror::Error;

/// Errors shared by every decoder stack: invalid layer sets and observers that give up.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// A layer index is not smaller than the number of layers.
    #[error("layer index {index} is out of range: the stack has {num_layers} layers (valid: 0..{num_layers})")]
    LayerOutOfRange {
        /// The offending index.
        index: usize,
        /// Number of layers in the stack.
        num_layers: usize,
    },
    /// The same layer index appears more than once.
    #[error("layer index {index} is listed more than once")]
    DuplicateLayer {
        /// The repeated index.
        index: usize,
    },
    /// Removing the set would leave no layer at all.
    #[error("cannot remove all {num_layers} layers: at least one must remain")]
    RemovesEveryLayer {
        /// Number of layers in the stack.
        num_layers: usize,
    },
    /// An observer asked to stop the forward pass.
    #[error("hidden-state observer failed at index {index}: {reason}")]
    Observer {
        /// Hidden-state index at which the observer failed.
        index: usize,
        /// The observer's explanation.
        reason: String,
    },
}
