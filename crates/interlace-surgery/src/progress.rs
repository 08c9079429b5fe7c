//! Progress reporting and cancellation of the on-disk copy.

use std::ops::ControlFlow;

/// Receives the progress of the on-disk copy and may cancel it.
///
/// Returning [`ControlFlow::Break`] from [`Progress::advance`] stops the copy: the temporary
/// output is removed and the run fails with [`crate::SurgeryError::Cancelled`].
pub trait Progress {
    /// Called once before copying, with the number of tensor bytes to copy.
    fn start(&mut self, _total_bytes: u64) {}
    /// Called after each chunk with the number of bytes just written.
    fn advance(&mut self, _bytes: u64) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// Called once when every shard is written.
    fn finish(&mut self) {}
}

/// Ignores progress and never cancels.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
