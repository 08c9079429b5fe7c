//! Which tensors survive a drop and what they are called afterwards.

use interlace_core::{indexed_tensor, CheckpointLayout, LayerSet, TapLayout, VisionLayout};

use crate::SurgeryError;

/// Drop sets of one surgery, validated against the source, and the renaming they imply.
#[derive(Debug, Clone)]
pub struct Renumbering {
    /// Text layers to drop.
    pub text: LayerSet,
    /// Vision blocks to drop, with the taps that follow them (absent: vision untouched).
    pub vision: Option<VisionRenumbering>,
}

/// Vision blocks to drop and what happens to the feature taps.
#[derive(Debug, Clone)]
pub struct VisionRenumbering {
    /// Where the family keeps its vision blocks.
    pub layout: VisionLayout,
    /// Blocks to drop.
    pub blocks: LayerSet,
    /// Tapped block of each tap position before surgery (empty without taps).
    pub taps_before: Vec<usize>,
    /// Tap positions that survive, in order (their modules are renumbered `0..`).
    pub kept_taps: Vec<usize>,
}

impl VisionRenumbering {
    /// Validates a vision drop: a dropped block that a tap reads is refused unless
    /// `allow_tap_removal`, in which case the tap and its module go too.
    pub fn new(layout: VisionLayout, blocks: LayerSet, taps_before: Vec<usize>, allow_tap_removal: bool) -> Result<Self, SurgeryError> {
        let mut kept_taps = Vec::with_capacity(taps_before.len());
        for (position, &block) in taps_before.iter().enumerate() {
            if !blocks.contains(block) {
                kept_taps.push(position);
            } else if !allow_tap_removal {
                let field = layout.taps.map(|t| t.indexes_field).unwrap_or("taps");
                return Err(SurgeryError::TapDropped { block, position, field });
            }
        }
        Ok(Self { layout, blocks, taps_before, kept_taps })
    }

    /// The tap list after surgery: surviving taps, pointing at renumbered blocks.
    pub fn taps_after(&self) -> Vec<usize> {
        let renumbered = self.blocks.renumbering();
        // A kept tap reads a kept block, so its renumbered index exists.
        self.kept_taps.iter().filter_map(|&p| renumbered[self.taps_before[p]]).collect()
    }

    /// Tap positions removed with their blocks.
    pub fn removed_taps(&self) -> Vec<usize> {
        (0..self.taps_before.len()).filter(|p| !self.kept_taps.contains(p)).collect()
    }

    fn rename(&self, name: &str) -> Option<Option<String>> {
        if let Some(renamed) = rename_indexed(name, self.layout.block_prefix, &self.blocks.renumbering()) {
            return Some(renamed);
        }
        let taps: &TapLayout = self.layout.taps.as_ref()?;
        let (position, rest) = indexed_tensor(name, taps.module_prefix)?;
        let new = self.kept_taps.iter().position(|&p| p == position);
        Some(new.map(|j| format!("{}{j}.{rest}", taps.module_prefix)))
    }
}

impl Renumbering {
    /// The name of `name` after surgery, or `None` if the tensor is dropped.
    pub fn tensor_name(&self, layout: &dyn CheckpointLayout, name: &str) -> Option<String> {
        if let Some(renamed) = rename_indexed(name, layout.text_layer_prefix(), &self.text.renumbering()) {
            return renamed;
        }
        if let Some(renamed) = self.vision.as_ref().and_then(|v| v.rename(name)) {
            return renamed;
        }
        Some(name.to_string())
    }
}

/// For `{prefix}{i}.{rest}`: `Some(None)` when `i` is dropped, `Some(Some(new name))` otherwise;
/// `None` when `name` is not under `prefix` (or `i` is beyond the table, which the caller
/// has ruled out by validating tensors against the config).
fn rename_indexed(name: &str, prefix: &str, renumbering: &[Option<usize>]) -> Option<Option<String>> {
    let (index, rest) = indexed_tensor(name, prefix)?;
    let new = renumbering.get(index)?;
    Some(new.map(|n| format!("{prefix}{n}.{rest}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use interlace_qwen3vl::layout::Qwen3VlLayout;

    fn vision(drop: &[usize], allow: bool) -> Result<VisionRenumbering, SurgeryError> {
        let layout = Qwen3VlLayout.vision().unwrap();
        VisionRenumbering::new(layout, LayerSet::for_removal(drop.iter().copied(), 27).unwrap(), vec![8, 16, 24], allow)
    }

    #[test]
    fn text_layers_are_renamed_consecutively() {
        let r = Renumbering { text: LayerSet::for_removal([1, 3], 6).unwrap(), vision: None };
        let l = Qwen3VlLayout;
        assert_eq!(r.tensor_name(&l, "model.language_model.layers.1.mlp.up_proj.weight"), None);
        assert_eq!(r.tensor_name(&l, "model.language_model.layers.4.mlp.up_proj.weight").as_deref(), Some("model.language_model.layers.2.mlp.up_proj.weight"));
        assert_eq!(r.tensor_name(&l, "model.visual.blocks.3.norm1.weight").as_deref(), Some("model.visual.blocks.3.norm1.weight"));
        assert_eq!(r.tensor_name(&l, "lm_head.weight").as_deref(), Some("lm_head.weight"));
    }

    #[test]
    fn taps_shift_with_dropped_blocks_and_are_protected() {
        assert_eq!(vision(&[3, 20], false).unwrap().taps_after(), vec![7, 15, 22]);
        assert!(matches!(vision(&[16], false), Err(SurgeryError::TapDropped { block: 16, position: 1, .. })));
        let v = vision(&[16], true).unwrap();
        assert_eq!(v.taps_after(), vec![8, 23]);
        assert_eq!(v.removed_taps(), vec![1]);
        let r = Renumbering { text: LayerSet::for_removal([], 6).unwrap(), vision: Some(v) };
        let l = Qwen3VlLayout;
        assert_eq!(r.tensor_name(&l, "model.visual.deepstack_merger_list.1.norm.weight"), None);
        assert_eq!(r.tensor_name(&l, "model.visual.deepstack_merger_list.2.norm.weight").as_deref(), Some("model.visual.deepstack_merger_list.1.norm.weight"));
        assert_eq!(r.tensor_name(&l, "model.visual.blocks.17.norm1.weight").as_deref(), Some("model.visual.blocks.16.norm1.weight"));
    }
}
