//! Where the Qwen-VL families keep their layers in a checkpoint ([`CheckpointLayout`]), for
//! on-disk surgery, which renames tensors and edits `config.json` without loading a model.

use interlace_core::{CheckpointLayout, PeriodicKindsLayout, TapLayout, VisionLayout};

use crate::Family;

impl Family {
    /// The checkpoint layout of the family.
    pub fn checkpoint_layout(self) -> Box<dyn CheckpointLayout> {
        match self {
            Family::Qwen2Vl | Family::Qwen25Vl => Box::new(Qwen2VlLayout),
            Family::Qwen3Vl => Box::new(Qwen3VlLayout),
            Family::Qwen3VlMoe => Box::new(Qwen3VlMoeLayout),
        }
    }
}

/// Qwen3-VL (`Qwen3VLForConditionalGeneration`): text layers under
/// `model.language_model.layers.{i}.`, vision blocks under `model.visual.blocks.{b}.`, deepstack
/// taps in `vision_config.deepstack_visual_indexes` read by `model.visual.deepstack_merger_list.{j}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Qwen3VlLayout;

impl CheckpointLayout for Qwen3VlLayout {
    fn name(&self) -> &'static str {
        "qwen3_vl"
    }

    fn text_layer_prefix(&self) -> &'static str {
        "model.language_model.layers."
    }

    fn layer_count_fields(&self) -> &'static [&'static str] {
        &["/text_config/num_hidden_layers", "/num_hidden_layers"]
    }

    fn per_layer_list_fields(&self) -> &'static [&'static str] {
        &["/text_config/layer_types", "/layer_types"]
    }

    fn vision(&self) -> Option<VisionLayout> {
        Some(VisionLayout {
            block_prefix: "model.visual.blocks.",
            depth_field: "/vision_config/depth",
            taps: Some(TapLayout { indexes_field: "/vision_config/deepstack_visual_indexes", module_prefix: "model.visual.deepstack_merger_list." }),
            block_index_lists: &[],
        })
    }
}

/// Qwen3-VL-MoE (`Qwen3VLMoeForConditionalGeneration`): the Qwen3-VL layout, with sparse MoE
/// layers chosen by `text_config.decoder_sparse_step` and `text_config.mlp_only_layers`. The
/// experts' fused tensors (`mlp.experts.gate_up_proj`) are per layer, so they move with it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Qwen3VlMoeLayout;

impl CheckpointLayout for Qwen3VlMoeLayout {
    fn name(&self) -> &'static str {
        "qwen3_vl_moe"
    }

    fn text_layer_prefix(&self) -> &'static str {
        Qwen3VlLayout.text_layer_prefix()
    }

    fn layer_count_fields(&self) -> &'static [&'static str] {
        Qwen3VlLayout.layer_count_fields()
    }

    fn per_layer_list_fields(&self) -> &'static [&'static str] {
        Qwen3VlLayout.per_layer_list_fields()
    }

    fn vision(&self) -> Option<VisionLayout> {
        Qwen3VlLayout.vision()
    }

    fn periodic_kinds(&self) -> Option<PeriodicKindsLayout> {
        Some(PeriodicKindsLayout { step_field: "/text_config/decoder_sparse_step", exceptions_field: "/text_config/mlp_only_layers" })
    }
}

/// Qwen2-VL (`Qwen2VLForConditionalGeneration`) and Qwen2.5-VL
/// (`Qwen2_5_VLForConditionalGeneration`) as their checkpoints name tensors: the hub files and
/// what transformers 5 saves both use `model.layers.{i}.` and `visual.blocks.{b}.` (transformers
/// renames them to `model.language_model.*` / `model.visual.*` only in memory). The config is
/// flat (hub) or nested under `text_config` (transformers 5). Qwen2.5-VL's full-attention blocks
/// (`vision_config.fullatt_block_indexes`) follow their blocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Qwen2VlLayout;

impl CheckpointLayout for Qwen2VlLayout {
    fn name(&self) -> &'static str {
        "qwen2_vl"
    }

    fn text_layer_prefix(&self) -> &'static str {
        "model.layers."
    }

    fn layer_count_fields(&self) -> &'static [&'static str] {
        Qwen3VlLayout.layer_count_fields()
    }

    fn per_layer_list_fields(&self) -> &'static [&'static str] {
        Qwen3VlLayout.per_layer_list_fields()
    }

    fn leading_layer_count_fields(&self) -> &'static [&'static str] {
        &["/text_config/max_window_layers", "/max_window_layers"]
    }

    fn vision(&self) -> Option<VisionLayout> {
        Some(VisionLayout {
            block_prefix: "visual.blocks.",
            depth_field: "/vision_config/depth",
            taps: None,
            block_index_lists: &["/vision_config/fullatt_block_indexes"],
        })
    }
}
