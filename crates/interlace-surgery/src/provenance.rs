//! `interlace.json`: where a pruned checkpoint came from and how to verify it.

use std::path::{Path, PathBuf};

use interlace_core::Plan;
use serde::Serialize;

use crate::writer::WrittenShard;
use crate::SurgeryError;

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

/// The plan recorded in `dir/interlace.json` (the plan the directory was pruned with), or `None`
/// when the directory has no `interlace.json` (a checkpoint pruned by other tools, or not
/// pruned at all).
///
/// A file that exists but is not a JSON object with a valid `plan` is an error, not a `None`:
/// a record that cannot be read cannot vouch for the checkpoint.
pub fn recorded_plan(dir: &Path) -> Result<Option<Plan>, SurgeryError> {
    let path = dir.join(PROVENANCE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SurgeryError::Io { action: "cannot read", path, source: e }),
    };
    let invalid = |reason: String| SurgeryError::Provenance { path: path.clone(), reason };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| invalid(format!("not valid JSON: {e}")))?;
    let object = value.as_object().ok_or_else(|| invalid("expected a JSON object".into()))?;
    let plan = object.get("plan").ok_or_else(|| invalid("records no `plan`".into()))?;
    let plan: Plan = serde_json::from_value(plan.clone()).map_err(|e| invalid(format!("`plan` is not a plan: {e}")))?;
    plan.validate().map_err(|e| invalid(format!("`plan` is invalid: {e}")))?;
    Ok(Some(plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(text: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        if let Some(text) = text {
            std::fs::write(dir.path().join(PROVENANCE_FILE), text).unwrap();
        }
        dir
    }

    #[test]
    fn recorded_plan_is_read_or_refused() {
        assert!(recorded_plan(dir_with(None).path()).unwrap().is_none());
        let plan = r#"{"n_layers": 3, "strategy": "manual", "ratio": 0.3, "drop": [1], "finetune": [], "freeze": [0, 2]}"#;
        let found = recorded_plan(dir_with(Some(&format!(r#"{{"tool": "interlace", "plan": {plan}}}"#))).path()).unwrap().unwrap();
        assert_eq!(found.drop, vec![1]);
        for bad in [
            "[1, 2]",
            "7",
            "null",
            "{",
            r#"{"tool": "x"}"#,
            r#"{"plan": [1]}"#,
            r#"{"plan": {"n_layers": 1000000000000000000, "strategy": "x", "ratio": 0.1, "drop": [0], "finetune": [], "freeze": []}}"#,
        ] {
            let result = recorded_plan(dir_with(Some(bad)).path());
            assert!(matches!(result, Err(SurgeryError::Provenance { .. })), "{bad}: {result:?}");
        }
    }
}
