//! Layer surgery: remove decoder layers from checkpoints on disk or models in memory.
#![deny(missing_docs)]
