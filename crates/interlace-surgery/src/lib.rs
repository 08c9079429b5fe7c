//! Layer surgery: remove decoder layers from checkpoints on disk or models in memory.
//!
//! - In memory: [`prune_stack`] / [`prune_stack_with_plan`] remove layers from any
//!   [`interlace_core::DecoderStack`] and report layer and parameter counts before and after.
//! - On disk: [`prune_checkpoint`] streams a Hugging Face model directory (single or sharded
//!   safetensors) into a new directory without the dropped layers. It never loads the model:
//!   kept tensors are copied byte for byte from memory-mapped shards, one chunk at a time, and
//!   renamed according to the family's [`interlace_core::CheckpointLayout`]. Optional vision-block
//!   pruning remaps feature taps (Qwen3-VL deepstack).
#![deny(missing_docs)]

mod disk;
mod error;
mod extra_files;
mod header;
mod json;
mod memory;
mod model_config;
mod packing;
mod progress;
mod provenance;
mod renumber;
mod source;
mod staging;
mod writer;

pub use disk::{detect_layout, prune_checkpoint, DiskPruneOptions, DiskPruneReport, DropSpec};
pub use error::SurgeryError;
pub use memory::{prune_stack, prune_stack_with_plan, PruneReport, StackCounts};
pub use progress::{NoProgress, Progress};
pub use provenance::{recorded_plan, Provenance, VisionProvenance, PROVENANCE_FILE};
pub use writer::WrittenShard;
