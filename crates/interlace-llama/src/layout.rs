//! Where the Llama family keeps its layers in a checkpoint, for on-disk surgery.

use interlace_core::CheckpointLayout;

/// `model.layers.{i}.*`, with the config fields that follow the number of layers: the count,
/// the per-layer `layer_types` (Qwen2/Qwen3 sliding layers), and Qwen2/Qwen3's
/// `max_window_layers` (the leading run of full-attention layers).
#[derive(Debug, Clone, Copy, Default)]
pub struct LlamaLayout;

impl CheckpointLayout for LlamaLayout {
    fn name(&self) -> &'static str {
        "llama"
    }

    fn text_layer_prefix(&self) -> &'static str {
        "model.layers."
    }

    fn layer_count_fields(&self) -> &'static [&'static str] {
        &["/num_hidden_layers"]
    }

    fn per_layer_list_fields(&self) -> &'static [&'static str] {
        &["/layer_types"]
    }

    fn leading_layer_count_fields(&self) -> &'static [&'static str] {
        &["/max_window_layers"]
    }
}
