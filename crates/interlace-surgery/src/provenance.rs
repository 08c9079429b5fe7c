//! `interlace.json`: where a pruned checkpoint came from and how to verify it.

use std::path::PathBuf;

use interlace_core::Plan;
use serde::Serialize;

use crate::writer::WrittenShard;

/// File name of the provenance record in the output directory.
pub const PROVENANCE_FILE: &str = "interlace.json";

/// The provenance record written next to the pruned weights.
#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    /// Always `interlace`.
    pub tool: &'static str,
    /// Version of the tool that wrote the checkpoint.
    pub version: &'static str,
    /// The source model directory (absolute).
    pub source: PathBuf,
    /// Checkpoint layout used (`qwen3_vl`, `decoder_only`).
    pub layout: &'static str,
    /// The plan, in the numbering of the source model.
    pub plan: Plan,
    /// Layers to fine-tune, renumbered to the pruned model.
    pub finetune_after_pruning: Vec<usize>,
    /// Layers to keep frozen, renumbered to the pruned model.
    pub freeze_after_pruning: Vec<usize>,
    /// Vision surgery, when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vision: Option<VisionProvenance>,
    /// Stored parameters before surgery.
    pub params_before: usize,
    /// Stored parameters after surgery.
    pub params_after: usize,
    /// Every weight file written, with its SHA-256.
    pub shards: Vec<WrittenShard>,
}

/// What vision-block surgery did.
#[derive(Debug, Clone, Serialize)]
pub struct VisionProvenance {
    /// Dropped blocks (source numbering).
    pub drop: Vec<usize>,
    /// Blocks before surgery.
    pub depth_before: usize,
    /// Blocks after surgery.
    pub depth_after: usize,
    /// Tapped blocks before surgery.
    pub taps_before: Vec<usize>,
    /// Tapped blocks after surgery (renumbered).
    pub taps_after: Vec<usize>,
    /// Tap positions removed with their blocks.
    pub removed_taps: Vec<usize>,
}
