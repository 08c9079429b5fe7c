//! How a model family lays out its decoder layers in a Hugging Face checkpoint.
//!
//! On-disk surgery never loads a model: it renames tensors and edits `config.json`. What it needs
//! to know about a family is therefore purely textual (which tensor-name prefix holds layer `i`,
//! which config fields count layers) and is captured by [`CheckpointLayout`]. Each model crate
//! implements it for its families (e.g. `interlace_qwen3vl::layout`); the one generic layout
//! here is [`DecoderOnlyLayout`].

use crate::kinds::PeriodicKindsLayout;

/// Where a family keeps an optional stack of vision-encoder blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisionLayout {
    /// Tensor-name prefix of vision block `b`, followed by `{b}.` (e.g. `model.visual.blocks.`).
    pub block_prefix: &'static str,
    /// JSON pointer (RFC 6901) of the config field holding the number of blocks.
    pub depth_field: &'static str,
    /// Optional multi-level feature taps: a config list of block indices whose outputs are read,
    /// and one module per list position that consumes them.
    pub taps: Option<TapLayout>,
    /// Config lists of block indices that give the listed blocks a property (e.g. full instead
    /// of window attention): on removal, indices are renumbered and dropped blocks leave the list.
    pub block_index_lists: &'static [&'static str],
}

/// Feature taps on the vision stack (Qwen3-VL calls them deepstack).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapLayout {
    /// JSON pointer of the list of tapped block indices.
    pub indexes_field: &'static str,
    /// Tensor-name prefix of the module of tap position `j`, followed by `{j}.`.
    pub module_prefix: &'static str,
}

/// How a decoder family names its per-layer tensors and which `config.json` fields depend on
/// the number of layers.
///
/// Fields are JSON pointers (RFC 6901, e.g. `/text_config/num_hidden_layers`); a field that is
/// absent from a given config is skipped, so one layout covers configs with and without
/// optional keys.
pub trait CheckpointLayout {
    /// Short name of the layout, recorded in provenance files.
    fn name(&self) -> &'static str;

    /// Tensor-name prefix of decoder layer `i`, followed by `{i}.`.
    fn text_layer_prefix(&self) -> &'static str;

    /// Config fields holding the number of decoder layers (all updated on removal).
    fn layer_count_fields(&self) -> &'static [&'static str];

    /// Config fields holding one entry per decoder layer (filtered on removal).
    fn per_layer_list_fields(&self) -> &'static [&'static str];

    /// Config fields counting a leading run of layers (Qwen2's `max_window_layers`: layers below
    /// it use full attention); on removal each becomes the number of kept layers below its old
    /// value, so every surviving layer keeps its side of the boundary.
    fn leading_layer_count_fields(&self) -> &'static [&'static str] {
        &[]
    }

    /// The vision encoder's block stack, if the family has one.
    fn vision(&self) -> Option<VisionLayout> {
        None
    }

    /// A rule in the config that gives layers one of two kinds by index (sparse MoE layers),
    /// rewritten on removal so every surviving layer keeps its kind.
    fn periodic_kinds(&self) -> Option<PeriodicKindsLayout> {
        None
    }
}

/// Decoder-only families with layers under `model.layers.{i}.` and a top-level
/// `num_hidden_layers` (Llama, Mistral, Qwen2, Qwen3, ...); `layer_types` and Qwen2/Qwen3's
/// `max_window_layers` follow the kept layers.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecoderOnlyLayout;

impl CheckpointLayout for DecoderOnlyLayout {
    fn name(&self) -> &'static str {
        "decoder_only"
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

/// Splits `name` into the index and the rest when it is `{prefix}{index}.{rest}`.
///
/// ```
/// use interlace_core::indexed_tensor;
/// assert_eq!(indexed_tensor("model.layers.12.mlp.up_proj.weight", "model.layers."), Some((12, "mlp.up_proj.weight")));
/// assert_eq!(indexed_tensor("model.layers_x.1.w", "model.layers."), None);
/// assert_eq!(indexed_tensor("model.norm.weight", "model.layers."), None);
/// ```
pub fn indexed_tensor<'a>(name: &'a str, prefix: &str) -> Option<(usize, &'a str)> {
    let tail = name.strip_prefix(prefix)?;
    let (digits, rest) = tail.split_once('.')?;
    // Reject "+1", "01" and the like so that renaming round-trips exactly.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    Some((digits.parse().ok()?, rest))
}
