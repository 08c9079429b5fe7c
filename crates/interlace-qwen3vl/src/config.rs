//! `config.json` of a Qwen3-VL or Qwen3-VL-MoE checkpoint, in both layouts found in the wild.
//!
//! Hub files (written by transformers 4.57) carry `rope_theta` + `rope_scaling`; files written by
//! transformers 5 carry a single `rope_parameters`. Both are read; absent RoPE keys take the
//! transformers 5.17 defaults (`rope_theta = 500000`, `mrope_section = [24, 20, 20]`).

use std::path::{Path, PathBuf};

use interlace_core::PeriodicLayerKinds;
use serde_json::Value;

use crate::{Qwen3VlError, Result};

/// Text decoder settings (`text_config`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TextConfig {
    /// Rows of the embedding table and of `lm_head`.
    pub vocab_size: usize,
    /// Width of the residual stream `H`.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Number of decoder layers `N`.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (GQA).
    pub num_key_value_heads: usize,
    /// Per-head width (explicit in the config; not `hidden_size / heads`).
    pub head_dim: usize,
    /// Epsilon of every RMSNorm.
    pub rms_norm_eps: f64,
    /// RoPE base.
    pub rope_theta: f64,
    /// M-RoPE section sizes for the (t, h, w) axes.
    pub mrope_section: [usize; 3],
    /// Whether the M-RoPE frequencies cycle t, h, w (Qwen3-VL) or come in three consecutive
    /// sections (Qwen2-VL, Qwen2.5-VL).
    pub mrope_interleaved: bool,
    /// Whether `q_proj`, `k_proj` and `v_proj` carry biases (Qwen2-VL, Qwen2.5-VL; `o_proj` never does).
    pub qkv_bias: bool,
    /// Whether attention normalises each query and key head (`q_norm`, `k_norm`: Qwen3-VL).
    pub qk_norm: bool,
    /// Sparse mixture-of-experts settings (Qwen3-VL-MoE); `None` for the dense family.
    pub moe: Option<MoeConfig>,
}

/// The sparse MLP blocks of Qwen3-VL-MoE (`Qwen3VLMoeTextSparseMoeBlock`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MoeConfig {
    /// Experts per sparse layer (`num_experts`, stored by transformers 5 as `num_local_experts`).
    pub num_experts: usize,
    /// Experts each token is routed to.
    pub num_experts_per_tok: usize,
    /// Width of one expert's SwiGLU MLP.
    pub moe_intermediate_size: usize,
    /// Layer `i` is sparse when `(i + 1) % decoder_sparse_step == 0` (and not in `mlp_only_layers`).
    pub decoder_sparse_step: usize,
    /// Layers that keep a dense MLP regardless of the step.
    pub mlp_only_layers: Vec<usize>,
}

impl MoeConfig {
    /// transformers' rule (`Qwen3VLMoeTextDecoderLayer.__init__`) as a [`PeriodicLayerKinds`]:
    /// sparse when `(i + 1) % decoder_sparse_step == 0` and `i` is not in `mlp_only_layers`.
    pub fn kinds(&self) -> PeriodicLayerKinds {
        PeriodicLayerKinds { step: self.decoder_sparse_step, exceptions: self.mlp_only_layers.clone() }
    }

    /// Whether layer `index` has a sparse MoE block.
    pub fn is_sparse(&self, index: usize) -> bool {
        self.num_experts > 0 && self.kinds().is_periodic(index)
    }

    /// The settings after keeping only the layers `kept` (ascending, old indices): every
    /// surviving layer keeps its kind (see [`PeriodicLayerKinds::keeping`]).
    pub fn keeping(&self, kept: &[usize]) -> Self {
        let kinds = self.kinds().keeping(kept);
        Self { decoder_sparse_step: kinds.step, mlp_only_layers: kinds.exceptions, ..self.clone() }
    }
}

impl TextConfig {
    /// Whether decoder layer `index` has a sparse MoE block.
    pub fn is_sparse_layer(&self, index: usize) -> bool {
        self.moe.as_ref().is_some_and(|moe| moe.is_sparse(index))
    }
}

/// The model families this crate loads, told apart by `config.json`'s `model_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Family {
    /// `Qwen2VLForConditionalGeneration` (`model_type = "qwen2_vl"`).
    Qwen2Vl,
    /// `Qwen2_5_VLForConditionalGeneration` (`model_type = "qwen2_5_vl"`).
    Qwen25Vl,
    /// `Qwen3VLForConditionalGeneration` (`model_type = "qwen3_vl"`).
    Qwen3Vl,
    /// `Qwen3VLMoeForConditionalGeneration` (`model_type = "qwen3_vl_moe"`), e.g. Qwen3-VL-30B-A3B.
    Qwen3VlMoe,
}

impl Family {
    /// Every supported family.
    pub const ALL: [Family; 4] = [Family::Qwen2Vl, Family::Qwen25Vl, Family::Qwen3Vl, Family::Qwen3VlMoe];

    /// The `model_type` of `config.json`.
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Qwen2Vl => "qwen2_vl",
            Family::Qwen25Vl => "qwen2_5_vl",
            Family::Qwen3Vl => "qwen3_vl",
            Family::Qwen3VlMoe => "qwen3_vl_moe",
        }
    }

    /// The transformers class in `architectures`.
    pub fn architecture(self) -> &'static str {
        match self {
            Family::Qwen2Vl => "Qwen2VLForConditionalGeneration",
            Family::Qwen25Vl => "Qwen2_5_VLForConditionalGeneration",
            Family::Qwen3Vl => "Qwen3VLForConditionalGeneration",
            Family::Qwen3VlMoe => "Qwen3VLMoeForConditionalGeneration",
        }
    }

    /// Whether this is one of the Qwen2 generation (Qwen2-VL, Qwen2.5-VL): Qwen2 text layers
    /// (biased QKV, no QK-norm, sectioned M-RoPE), a patch-14 vision tower without learned
    /// positions or deepstack, and hub checkpoints with the older flat config and tensor names.
    pub fn is_qwen2_generation(self) -> bool {
        matches!(self, Family::Qwen2Vl | Family::Qwen25Vl)
    }

    /// The architecture of the family's vision tower.
    pub fn vision_kind(self) -> VisionKind {
        match self {
            Family::Qwen2Vl => VisionKind::Qwen2Vl,
            Family::Qwen25Vl => VisionKind::Qwen25Vl,
            Family::Qwen3Vl | Family::Qwen3VlMoe => VisionKind::Qwen3Vl,
        }
    }

    /// The family named by a `model_type` or an `architectures` entry.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.model_type() == name || f.architecture() == name)
    }

    /// The family a parsed `config.json` names: by `model_type` when it has one, else by the first
    /// `architectures` entry this crate knows; `None` when it names no supported family.
    pub fn named_in(config: &Value) -> Option<Self> {
        if let Some(model_type) = config.get("model_type").filter(|v| !v.is_null()) {
            return model_type.as_str().and_then(Self::from_name);
        }
        config.get("architectures")?.as_array()?.iter().filter_map(Value::as_str).find_map(Self::from_name)
    }

    /// `"qwen3_vl (Qwen3VLForConditionalGeneration), ..."`, for error messages.
    pub fn supported() -> String {
        Self::ALL.iter().map(|f| format!("{} ({})", f.model_type(), f.architecture())).collect::<Vec<_>>().join(", ")
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.model_type())
    }
}

/// The three vision towers of the Qwen-VL families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum VisionKind {
    /// LayerNorm blocks with a QuickGELU MLP (`mlp.fc1`, `mlp.fc2`), full attention per image,
    /// merger `ln_q` + `mlp.0` / `mlp.2`; unbiased patch embedding.
    Qwen2Vl,
    /// RMSNorm blocks with a biased SwiGLU MLP (`gate_proj`, `up_proj`, `down_proj`), window
    /// attention except in `fullatt_block_indexes`, RMSNorm merger `ln_q`; unbiased patch embedding.
    Qwen25Vl,
    /// LayerNorm blocks with a tanh-GELU MLP (`linear_fc1`, `linear_fc2`), learned interpolated
    /// positions, deepstack taps, merger `norm` + `linear_fc1` / `linear_fc2`; biased patch embedding.
    Qwen3Vl,
}

/// Vision tower settings (`vision_config`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VisionConfig {
    /// Which of the three towers.
    pub kind: VisionKind,
    /// Number of vision blocks.
    pub depth: usize,
    /// Width `C` of the vision stream.
    pub hidden_size: usize,
    /// Width of the vision MLP.
    pub intermediate_size: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Image channels (3).
    pub in_channels: usize,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// Side of the square of patches merged into one LLM token.
    pub spatial_merge_size: usize,
    /// Frames per temporal patch.
    pub temporal_patch_size: usize,
    /// Output width of the mergers (= text hidden size).
    pub out_hidden_size: usize,
    /// Rows of the learned position table (a perfect square; 0 without one).
    pub num_position_embeddings: usize,
    /// Vision blocks whose output feeds a deepstack merger, in config order.
    pub deepstack_visual_indexes: Vec<usize>,
    /// Base of the 2-D vision rotary embedding.
    pub rope_theta: f64,
    /// Side in pixels of the attention windows (Qwen2.5-VL; 0 without windows).
    pub window_size: usize,
    /// Blocks that attend over the whole image instead of windows (Qwen2.5-VL).
    pub fullatt_block_indexes: Vec<usize>,
}

impl VisionConfig {
    /// Per-head width of vision attention.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }

    /// Values per patch row of `pixel_values`: `in_channels * temporal_patch_size * patch_size²`.
    pub fn patch_dim(&self) -> usize {
        self.in_channels * self.temporal_patch_size * self.patch_size * self.patch_size
    }

    /// Side, in merged tokens, of an attention window (`window_size / merge / patch`; 0
    /// without windows).
    pub fn merged_window_side(&self) -> usize {
        self.window_size / self.spatial_merge_size / self.patch_size
    }

    /// Whether block `b` attends within windows rather than over the whole image.
    pub fn is_windowed_block(&self, b: usize) -> bool {
        self.kind == VisionKind::Qwen25Vl && !self.fullatt_block_indexes.contains(&b)
    }

    /// Side of the learned position grid.
    pub fn position_grid_side(&self) -> usize {
        (self.num_position_embeddings as f64).sqrt().round() as usize
    }

    /// Width after concatenating the `merge²` patches of one LLM token.
    pub fn merged_width(&self) -> usize {
        self.hidden_size * self.spatial_merge_size * self.spatial_merge_size
    }
}

/// The whole `config.json` of `Qwen3VLForConditionalGeneration` or
/// `Qwen3VLMoeForConditionalGeneration`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Qwen3VlConfig {
    /// Which family the file describes.
    pub family: Family,
    /// Text decoder settings.
    pub text: TextConfig,
    /// Vision tower settings.
    pub vision: VisionConfig,
    /// Id of `<|image_pad|>`.
    pub image_token_id: u32,
    /// Id of `<|video_pad|>`.
    pub video_token_id: u32,
    /// Id of `<|vision_start|>`.
    pub vision_start_token_id: u32,
    /// Id of `<|vision_end|>`.
    pub vision_end_token_id: u32,
    /// Whether `lm_head` shares the embedding matrix (top-level flag, as transformers decides).
    pub tie_word_embeddings: bool,
}

/// The largest value any integer field of `config.json` may have (2^20: vocabularies, widths
/// and token ids of real checkpoints are far below it). Layer and block counts are further
/// limited to [`interlace_core::MAX_LAYERS`].
pub const MAX_CONFIG_VALUE: usize = 1 << 20;

/// Reads typed fields out of a JSON object and names the dotted field path in every error.
struct Fields<'a> {
    path: &'a Path,
    prefix: String,
    object: &'a Value,
}

impl<'a> Fields<'a> {
    fn error(&self, key: &str, reason: impl Into<String>) -> Qwen3VlError {
        let field = if self.prefix.is_empty() { key.to_string() } else { format!("{}.{key}", self.prefix) };
        Qwen3VlError::Config { path: self.path.to_path_buf(), field, reason: reason.into() }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.object.get(key).filter(|v| !v.is_null())
    }

    fn usize(&self, key: &str) -> Result<usize> {
        let value = self.get(key).ok_or_else(|| self.error(key, "missing"))?;
        self.size(key, value)
    }

    /// A non-negative integer no larger than [`MAX_CONFIG_VALUE`], so products of a few of
    /// them (tensor shapes, patch widths) cannot overflow.
    fn size(&self, key: &str, value: &Value) -> Result<usize> {
        let n = value.as_u64().ok_or_else(|| self.error(key, format!("expected a non-negative integer, found {value}")))?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= MAX_CONFIG_VALUE)
            .ok_or_else(|| self.error(key, format!("{n} is larger than {MAX_CONFIG_VALUE}, which no Qwen3-VL size reaches")))
    }

    fn token_id(&self, key: &str, default: u32) -> Result<u32> {
        let id = self.usize_or(key, default as usize)?;
        u32::try_from(id).map_err(|_| self.error(key, format!("{id} is not a token id")))
    }

    fn usize_or(&self, key: &str, default: usize) -> Result<usize> {
        if self.get(key).is_some() {
            self.usize(key)
        } else {
            Ok(default)
        }
    }

    fn positive(&self, key: &str) -> Result<usize> {
        let value = self.usize(key)?;
        if value == 0 {
            return Err(self.error(key, "must be positive"));
        }
        Ok(value)
    }

    fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => value.as_f64().ok_or_else(|| self.error(key, format!("expected a number, found {value}"))),
        }
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => value.as_bool().ok_or_else(|| self.error(key, format!("expected true or false, found {value}"))),
        }
    }

    fn usize_list(&self, key: &str) -> Result<Option<Vec<usize>>> {
        let Some(value) = self.get(key) else { return Ok(None) };
        let items = value.as_array().ok_or_else(|| self.error(key, format!("expected a list of integers, found {value}")))?;
        items.iter().map(|v| self.size(key, v)).collect::<Result<Vec<_>>>().map(Some)
    }

    fn str_or(&self, key: &str, default: &'a str) -> Result<&'a str> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => value.as_str().ok_or_else(|| self.error(key, format!("expected a string, found {value}"))),
        }
    }

    fn object(&self, key: &str, prefix: &str) -> Result<Fields<'a>> {
        let object = self.get(key).ok_or_else(|| self.error(key, "missing"))?;
        if !object.is_object() {
            return Err(self.error(key, "expected an object"));
        }
        Ok(Fields { path: self.path, prefix: prefix.to_string(), object })
    }
}

impl Qwen3VlConfig {
    /// Reads `dir/config.json`.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        Self::from_file(dir.as_ref().join("config.json"))
    }

    /// Reads and validates a `config.json` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Qwen3VlError::Io { path: path.to_path_buf(), source })?;
        Self::from_json_str(&text, path)
    }

    /// Parses and validates the JSON text of a `config.json`; `path` is only used in errors.
    pub fn from_json_str(text: &str, path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let root: Value = serde_json::from_str(text).map_err(|e| Qwen3VlError::Config {
            path: path.clone(),
            field: "<document>".into(),
            reason: format!("not valid JSON: {e}"),
        })?;
        let top = Fields { path: &path, prefix: String::new(), object: &root };
        if !root.is_object() {
            return Err(top.error("<document>", "expected a JSON object"));
        }
        let family = parse_family(&top)?;
        // Hub files of the Qwen2 generation keep the text fields at the top level.
        let text_fields = if top.get("text_config").is_some() {
            top.object("text_config", "text_config")?
        } else {
            Fields { path: &path, prefix: String::new(), object: &root }
        };
        let text = parse_text(&text_fields, family)?;
        let vision = parse_vision(&top.object("vision_config", "vision_config")?, text.hidden_size, family)?;
        let config = Self {
            family,
            text,
            vision,
            image_token_id: top.token_id("image_token_id", 151655)?,
            video_token_id: top.token_id("video_token_id", 151656)?,
            vision_start_token_id: top.token_id("vision_start_token_id", 151652)?,
            vision_end_token_id: top.token_id("vision_end_token_id", 151653)?,
            tie_word_embeddings: top.bool_or("tie_word_embeddings", false)?,
        };
        for (field, id) in [("image_token_id", config.image_token_id), ("video_token_id", config.video_token_id)] {
            if id as usize >= config.text.vocab_size {
                return Err(top.error(field, format!("{id} is outside the vocabulary of {}", config.text.vocab_size)));
            }
        }
        Ok(config)
    }
}

/// The family from `model_type`, else from `architectures`; a config naming neither (written by
/// hand) is read as Qwen3-VL. Any other name is refused with the list of supported ones.
fn parse_family(f: &Fields) -> Result<Family> {
    let unknown = |key: &str, found: &str| f.error(key, format!("`{found}` is not a supported model family; supported: {}", Family::supported()));
    if let Some(model_type) = f.get("model_type") {
        let name = model_type.as_str().ok_or_else(|| f.error("model_type", format!("expected a string, found {model_type}")))?;
        return Family::from_name(name).ok_or_else(|| unknown("model_type", name));
    }
    let Some(architectures) = f.get("architectures").and_then(Value::as_array) else { return Ok(Family::Qwen3Vl) };
    let names: Vec<&str> = architectures.iter().filter_map(Value::as_str).collect();
    names.iter().find_map(|n| Family::from_name(n)).ok_or_else(|| unknown("architectures", &names.join(", ")))
}

/// The MoE fields of a Qwen3-VL-MoE `text_config`.
fn parse_moe(f: &Fields, num_layers: usize) -> Result<MoeConfig> {
    let num_experts = if f.get("num_experts").is_some() { f.positive("num_experts")? } else { f.positive("num_local_experts")? };
    let moe = MoeConfig {
        num_experts,
        num_experts_per_tok: f.positive("num_experts_per_tok")?,
        moe_intermediate_size: f.positive("moe_intermediate_size")?,
        decoder_sparse_step: f.usize_or("decoder_sparse_step", 1)?,
        mlp_only_layers: f.usize_list("mlp_only_layers")?.unwrap_or_default(),
    };
    if moe.decoder_sparse_step == 0 {
        return Err(f.error("decoder_sparse_step", "must be positive"));
    }
    if moe.num_experts_per_tok > moe.num_experts {
        return Err(f.error("num_experts_per_tok", format!("{} is more than the {} experts", moe.num_experts_per_tok, moe.num_experts)));
    }
    if let Some(&layer) = moe.mlp_only_layers.iter().find(|&&l| l >= num_layers) {
        return Err(f.error("mlp_only_layers", format!("layer {layer} does not exist ({num_layers} layers)")));
    }
    Ok(moe)
}

fn parse_text(f: &Fields, family: Family) -> Result<TextConfig> {
    let activation = f.str_or("hidden_act", "silu")?;
    if activation != "silu" {
        return Err(f.error("hidden_act", format!("`{activation}` is not supported (every Qwen-VL family uses silu)")));
    }
    let qwen2 = family.is_qwen2_generation();
    if !qwen2 && f.bool_or("attention_bias", false)? {
        return Err(f.error("attention_bias", "biased attention projections are not supported (Qwen3-VL has none)"));
    }
    if qwen2 && f.bool_or("use_sliding_window", false)? {
        return Err(f.error("use_sliding_window", "sliding-window attention is not supported (no published Qwen2-VL or Qwen2.5-VL uses it)"));
    }
    let (rope_theta, mrope_section) = parse_text_rope(f, family)?;
    let hidden_size = f.positive("hidden_size")?;
    let num_attention_heads = f.positive("num_attention_heads")?;
    // Qwen2 attention derives the head width (`hidden_size // num_heads`); Qwen3 states it.
    let head_dim = if qwen2 {
        if !hidden_size.is_multiple_of(num_attention_heads) {
            return Err(f.error("num_attention_heads", format!("{num_attention_heads} does not divide hidden_size = {hidden_size}")));
        }
        hidden_size / num_attention_heads
    } else {
        f.positive("head_dim")?
    };
    let config = TextConfig {
        vocab_size: f.positive("vocab_size")?,
        hidden_size,
        intermediate_size: f.positive("intermediate_size")?,
        num_hidden_layers: f.positive("num_hidden_layers")?,
        num_attention_heads,
        num_key_value_heads: f.positive("num_key_value_heads")?,
        head_dim,
        rms_norm_eps: f.f64_or("rms_norm_eps", 1e-6)?,
        rope_theta,
        mrope_section,
        mrope_interleaved: !qwen2,
        qkv_bias: qwen2,
        qk_norm: !qwen2,
        moe: None,
    };
    if config.num_hidden_layers > interlace_core::MAX_LAYERS {
        return Err(f.error("num_hidden_layers", format!("{} layers; at most {} are accepted", config.num_hidden_layers, interlace_core::MAX_LAYERS)));
    }
    let config = TextConfig { moe: if family == Family::Qwen3VlMoe { Some(parse_moe(f, config.num_hidden_layers)?) } else { None }, ..config };
    if !config.num_attention_heads.is_multiple_of(config.num_key_value_heads) {
        return Err(
            f.error("num_key_value_heads", format!("{} does not divide num_attention_heads = {}", config.num_key_value_heads, config.num_attention_heads))
        );
    }
    if !config.head_dim.is_multiple_of(2) {
        return Err(f.error("head_dim", format!("{} must be even for rotary embeddings", config.head_dim)));
    }
    // Sectioned M-RoPE splits the head into exactly these sections (interleaved tolerates any).
    if qwen2 && config.mrope_section.iter().sum::<usize>() * 2 != config.head_dim {
        let prefix = if f.get("rope_parameters").is_some() { "rope_parameters" } else { "rope_scaling" };
        return Err(f.error(&format!("{prefix}.mrope_section"), format!("{:?} must add up to head_dim / 2 = {}", config.mrope_section, config.head_dim / 2)));
    }
    Ok(config)
}

/// RoPE base and M-RoPE sections from `rope_parameters` (transformers 5) or
/// `rope_theta` + `rope_scaling` (hub files).
fn parse_text_rope(f: &Fields, family: Family) -> Result<(f64, [usize; 3])> {
    // transformers' class defaults: Qwen2-VL θ = 10^6 with [16, 24, 24]; Qwen3-VL 500000 with [24, 20, 20].
    let (default_theta, default_section) = if family.is_qwen2_generation() { (1_000_000.0, [16, 24, 24]) } else { (500_000.0, [24, 20, 20]) };
    let nested = |key: &str| if f.prefix.is_empty() { key.to_string() } else { format!("{}.{key}", f.prefix) };
    let (params_prefix, scaling_prefix) = (nested("rope_parameters"), nested("rope_scaling"));
    let (theta, section) = if f.get("rope_parameters").is_some() {
        let params = f.object("rope_parameters", &params_prefix)?;
        (params.f64_or("rope_theta", default_theta)?, params.usize_list("mrope_section")?)
    } else {
        let section = if f.get("rope_scaling").is_some() { f.object("rope_scaling", &scaling_prefix)?.usize_list("mrope_section")? } else { None };
        (f.f64_or("rope_theta", default_theta)?, section)
    };
    let section = section.unwrap_or_else(|| default_section.to_vec());
    let section: [usize; 3] = section.as_slice().try_into().map_err(|_| f.error("mrope_section", format!("expected 3 values (t, h, w), found {section:?}")))?;
    if theta <= 0.0 {
        return Err(f.error("rope_theta", format!("must be positive, found {theta}")));
    }
    Ok((theta, section))
}

fn parse_vision(f: &Fields, text_hidden: usize, family: Family) -> Result<VisionConfig> {
    let kind = family.vision_kind();
    let expected_activation = match kind {
        VisionKind::Qwen2Vl => "quick_gelu",
        VisionKind::Qwen25Vl => "silu",
        VisionKind::Qwen3Vl => "gelu_pytorch_tanh",
    };
    let activation = f.str_or("hidden_act", expected_activation)?;
    if activation != expected_activation {
        return Err(f.error("hidden_act", format!("`{activation}` is not supported ({family} vision blocks use {expected_activation})")));
    }
    let rope_theta = match f.get("rope_parameters") {
        Some(_) => f.object("rope_parameters", "vision_config.rope_parameters")?.f64_or("rope_theta", 10_000.0)?,
        None => f.f64_or("rope_theta", 10_000.0)?,
    };
    // Hub files of the Qwen2 generation spell the channel count `in_chans`.
    let in_channels = if f.get("in_channels").is_some() { f.usize("in_channels")? } else { f.usize_or("in_chans", 3)? };
    let (hidden_size, intermediate_size, out_hidden_size) = match kind {
        // Qwen2-VL: `embed_dim` is the tower's width, `hidden_size` the merger's output and the
        // MLP is `mlp_ratio` times as wide (transformers: `int(embed_dim * mlp_ratio)`).
        VisionKind::Qwen2Vl => {
            let width = f.positive("embed_dim")?;
            let ratio = f.f64_or("mlp_ratio", 4.0)?;
            if !(ratio > 0.0 && ratio <= 64.0) {
                return Err(f.error("mlp_ratio", format!("{ratio} is not a usable MLP ratio")));
            }
            (width, (width as f64 * ratio) as usize, f.usize_or("hidden_size", text_hidden)?)
        }
        VisionKind::Qwen25Vl | VisionKind::Qwen3Vl => {
            (f.positive("hidden_size")?, f.positive("intermediate_size")?, f.usize_or("out_hidden_size", text_hidden)?)
        }
    };
    let qwen3 = kind == VisionKind::Qwen3Vl;
    let config = VisionConfig {
        kind,
        depth: f.positive("depth")?,
        hidden_size,
        intermediate_size,
        num_heads: f.positive("num_heads")?,
        in_channels,
        patch_size: f.usize_or("patch_size", if qwen3 { 16 } else { 14 })?,
        spatial_merge_size: f.usize_or("spatial_merge_size", 2)?,
        temporal_patch_size: f.usize_or("temporal_patch_size", 2)?,
        out_hidden_size,
        num_position_embeddings: if qwen3 { f.usize_or("num_position_embeddings", 2304)? } else { 0 },
        deepstack_visual_indexes: if qwen3 { f.usize_list("deepstack_visual_indexes")?.unwrap_or_else(|| vec![8, 16, 24]) } else { Vec::new() },
        rope_theta,
        window_size: if kind == VisionKind::Qwen25Vl { f.usize_or("window_size", 112)? } else { 0 },
        fullatt_block_indexes: if kind == VisionKind::Qwen25Vl {
            f.usize_list("fullatt_block_indexes")?.unwrap_or_else(|| vec![7, 15, 23, 31])
        } else {
            Vec::new()
        },
    };
    validate_vision(f, &config, text_hidden)?;
    Ok(config)
}

fn validate_vision(f: &Fields, c: &VisionConfig, text_hidden: usize) -> Result<()> {
    if !c.hidden_size.is_multiple_of(c.num_heads) || !c.head_dim().is_multiple_of(4) {
        return Err(f.error("num_heads", format!("hidden_size {} / num_heads {} must give a head width divisible by 4", c.hidden_size, c.num_heads)));
    }
    if c.out_hidden_size != text_hidden {
        return Err(f.error("out_hidden_size", format!("{} differs from text hidden_size {text_hidden}", c.out_hidden_size)));
    }
    if c.depth > interlace_core::MAX_LAYERS {
        return Err(f.error("depth", format!("{} blocks; at most {} are accepted", c.depth, interlace_core::MAX_LAYERS)));
    }
    let side = c.position_grid_side();
    if c.kind == VisionKind::Qwen3Vl && (c.num_position_embeddings == 0 || side.checked_mul(side) != Some(c.num_position_embeddings)) {
        return Err(f.error("num_position_embeddings", format!("{} is not a perfect square", c.num_position_embeddings)));
    }
    let mut seen = std::collections::HashSet::new();
    for &index in &c.deepstack_visual_indexes {
        if index >= c.depth {
            return Err(f.error("deepstack_visual_indexes", format!("block {index} does not exist (depth {})", c.depth)));
        }
        if !seen.insert(index) {
            return Err(f.error("deepstack_visual_indexes", format!("block {index} is listed twice")));
        }
    }
    if let Some(&index) = c.fullatt_block_indexes.iter().find(|&&b| b >= c.depth) {
        return Err(f.error("fullatt_block_indexes", format!("block {index} does not exist (depth {})", c.depth)));
    }
    for (key, value) in [
        ("patch_size", c.patch_size),
        ("spatial_merge_size", c.spatial_merge_size),
        ("temporal_patch_size", c.temporal_patch_size),
        ("in_channels", c.in_channels),
    ] {
        if value == 0 {
            return Err(f.error(key, "must be positive"));
        }
    }
    if c.kind == VisionKind::Qwen25Vl && c.merged_window_side() == 0 {
        return Err(f.error(
            "window_size",
            format!("{} is smaller than one merged token (spatial_merge_size × patch_size = {})", c.window_size, c.spatial_merge_size * c.patch_size),
        ));
    }
    // Widths the model computes from these fields: they must fit a usize (and a tensor).
    let product = |values: &[usize]| values.iter().try_fold(1usize, |p, &v| p.checked_mul(v)).filter(|&p| p <= 1 << 40);
    if product(&[c.in_channels, c.temporal_patch_size, c.patch_size, c.patch_size]).is_none() {
        return Err(f.error("patch_size", "in_channels × temporal_patch_size × patch_size² is too large"));
    }
    if product(&[c.hidden_size, c.spatial_merge_size, c.spatial_merge_size]).is_none() {
        return Err(f.error("spatial_merge_size", "hidden_size × spatial_merge_size² is too large"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUB_STYLE: &str = r#"{
        "tie_word_embeddings": true, "image_token_id": 10, "video_token_id": 11,
        "text_config": {"vocab_size": 64, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "rope_theta": 5000000,
            "rope_scaling": {"rope_type": "default", "mrope_section": [2, 1, 1], "mrope_interleaved": true}},
        "vision_config": {"depth": 2, "hidden_size": 16, "intermediate_size": 24, "num_heads": 2, "out_hidden_size": 32,
            "num_position_embeddings": 16, "deepstack_visual_indexes": [1, 0]}
    }"#;

    #[test]
    fn reads_hub_rope_layout() {
        let c = Qwen3VlConfig::from_json_str(HUB_STYLE, "config.json").unwrap();
        assert_eq!(c.text.rope_theta, 5_000_000.0);
        assert_eq!(c.text.mrope_section, [2, 1, 1]);
        assert!(c.tie_word_embeddings);
        assert_eq!(c.vision.deepstack_visual_indexes, vec![1, 0]);
        assert_eq!(c.vision.rope_theta, 10_000.0);
    }

    #[test]
    fn reads_transformers5_rope_layout_and_defaults() {
        let text = HUB_STYLE.replace(
            r#""rope_theta": 5000000,
            "rope_scaling": {"rope_type": "default", "mrope_section": [2, 1, 1], "mrope_interleaved": true}"#,
            r#""rope_parameters": {"rope_type": "default", "rope_theta": 1000.0, "mrope_section": [1, 2, 1]}"#,
        );
        let c = Qwen3VlConfig::from_json_str(&text, "config.json").unwrap();
        assert_eq!((c.text.rope_theta, c.text.mrope_section), (1000.0, [1, 2, 1]));
        let bare = HUB_STYLE.replace(
            r#""rope_theta": 5000000,
            "rope_scaling": {"rope_type": "default", "mrope_section": [2, 1, 1], "mrope_interleaved": true}"#,
            r#""rms_norm_eps": 1e-6"#,
        );
        let c = Qwen3VlConfig::from_json_str(&bare, "config.json").unwrap();
        assert_eq!((c.text.rope_theta, c.text.mrope_section), (500_000.0, [24, 20, 20]));
    }

    fn field_of(text: &str) -> String {
        match Qwen3VlConfig::from_json_str(text, "cfg.json").unwrap_err() {
            Qwen3VlError::Config { field, path, .. } => {
                assert_eq!(path, PathBuf::from("cfg.json"));
                field
            }
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn invalid_configs_name_the_field() {
        assert_eq!(field_of("{"), "<document>");
        assert_eq!(field_of(&HUB_STYLE.replace(r#""num_key_value_heads": 2"#, r#""num_key_value_heads": 3"#)), "text_config.num_key_value_heads");
        assert_eq!(field_of(&HUB_STYLE.replace(r#""hidden_size": 32,"#, "")), "text_config.hidden_size");
        assert_eq!(field_of(&HUB_STYLE.replace("[1, 0]", "[1, 5]")), "vision_config.deepstack_visual_indexes");
        assert_eq!(
            field_of(&HUB_STYLE.replace(r#""num_position_embeddings": 16"#, r#""num_position_embeddings": 15"#)),
            "vision_config.num_position_embeddings"
        );
        assert_eq!(field_of(&HUB_STYLE.replace("[2, 1, 1]", "[2, 1]")), "text_config.mrope_section");
        assert_eq!(field_of(&HUB_STYLE.replace(r#""vocab_size": 64"#, r#""vocab_size": "x""#)), "text_config.vocab_size");
        assert_eq!(field_of(&HUB_STYLE.replace(r#""image_token_id": 10"#, r#""image_token_id": 99"#)), "image_token_id");
    }

    #[test]
    fn values_that_once_overflowed_or_truncated_are_refused() {
        // A token id past u32 used to wrap (2^32 + 10 read as 10, inside the vocabulary).
        assert_eq!(field_of(&HUB_STYLE.replace(r#""image_token_id": 10"#, r#""image_token_id": 4294967306"#)), "image_token_id");
        // side × side of the position grid overflowed for a huge num_position_embeddings.
        let huge = HUB_STYLE.replace(r#""num_position_embeddings": 16"#, r#""num_position_embeddings": 18446744073709551615"#);
        assert_eq!(field_of(&huge), "vision_config.num_position_embeddings");
        // A layer count that would size a list (`interlace inspect`) or a loop.
        assert_eq!(field_of(&HUB_STYLE.replace(r#""num_hidden_layers": 2"#, r#""num_hidden_layers": 1000000000000000000"#)), "text_config.num_hidden_layers");
        assert_eq!(field_of(&HUB_STYLE.replace(r#""num_hidden_layers": 2"#, r#""num_hidden_layers": 70000"#)), "text_config.num_hidden_layers");
        // M-RoPE sections are multiplied by 3 when a position is built.
        assert_eq!(field_of(&HUB_STYLE.replace("[2, 1, 1]", "[2, 18446744073709551615, 1]")), "text_config.rope_scaling.mrope_section");
    }

    fn moe(extra: &str) -> String {
        HUB_STYLE.replacen('{', r#"{"model_type": "qwen3_vl_moe", "#, 1).replace(r#""vocab_size": 64,"#, &format!(r#""vocab_size": 64, {extra}"#))
    }

    #[test]
    fn the_family_comes_from_model_type_or_architectures_and_an_unknown_one_is_named() {
        assert_eq!(Qwen3VlConfig::from_json_str(HUB_STYLE, "c").unwrap().family, Family::Qwen3Vl);
        let by_arch = HUB_STYLE.replacen('{', r#"{"architectures": ["Qwen3VLMoeForConditionalGeneration"], "#, 1);
        let err = Qwen3VlConfig::from_json_str(&by_arch, "c").unwrap_err().to_string();
        assert!(err.contains("num_local_experts"), "the MoE family needs its expert count: {err}");
        let llava = HUB_STYLE.replacen('{', r#"{"model_type": "llava_next", "#, 1);
        let err = Qwen3VlConfig::from_json_str(&llava, "c").unwrap_err().to_string();
        assert!(err.contains("`llava_next` is not a supported model family") && err.contains("qwen3_vl_moe (Qwen3VLMoeForConditionalGeneration)"), "{err}");
        let arch = HUB_STYLE.replacen('{', r#"{"architectures": ["MllamaForConditionalGeneration"], "#, 1);
        assert!(Qwen3VlConfig::from_json_str(&arch, "c").unwrap_err().to_string().contains("`MllamaForConditionalGeneration`"));
    }

    #[test]
    fn moe_fields_read_both_spellings_and_are_checked() {
        let hub = moe(r#""num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 8, "mlp_only_layers": [1],"#);
        let c = Qwen3VlConfig::from_json_str(&hub, "c").unwrap();
        assert_eq!(c.family, Family::Qwen3VlMoe);
        let m = c.text.moe.clone().unwrap();
        assert_eq!((m.num_experts, m.num_experts_per_tok, m.moe_intermediate_size, m.decoder_sparse_step), (4, 2, 8, 1));
        assert!(c.text.is_sparse_layer(0) && !c.text.is_sparse_layer(1));
        let saved = moe(r#""num_local_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 8,"#);
        assert_eq!(Qwen3VlConfig::from_json_str(&saved, "c").unwrap().text.moe.unwrap().num_experts, 4);
        assert_eq!(field_of(&moe(r#""num_experts": 4, "num_experts_per_tok": 5, "moe_intermediate_size": 8,"#)), "text_config.num_experts_per_tok");
        assert_eq!(
            field_of(&moe(r#""num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 8, "mlp_only_layers": [2],"#)),
            "text_config.mlp_only_layers"
        );
        assert_eq!(
            field_of(&moe(r#""num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 8, "decoder_sparse_step": 0,"#)),
            "text_config.decoder_sparse_step"
        );
    }

    #[test]
    fn keeping_layers_preserves_each_survivors_kind_as_transformers_rebuilds_it() {
        // step 2: layers 1, 3, 5 sparse, except 3 (mlp_only); layers 0..6
        let m = MoeConfig { num_experts: 4, num_experts_per_tok: 1, moe_intermediate_size: 8, decoder_sparse_step: 2, mlp_only_layers: vec![3] };
        let kinds = |m: &MoeConfig, n: usize| (0..n).map(|i| m.is_sparse(i)).collect::<Vec<_>>();
        assert_eq!(kinds(&m, 6), [false, true, false, false, false, true]);
        let kept = [0, 1, 3, 5];
        let after = m.keeping(&kept);
        assert_eq!(kinds(&after, 4), kept.iter().map(|&i| m.is_sparse(i)).collect::<Vec<_>>());
        assert_eq!((after.decoder_sparse_step, after.mlp_only_layers.as_slice()), (1, &[0, 2][..]));
    }
}

/// Published architectures, for benchmarks with random weights (values from the official
/// `config.json` files; see the Qwen3-VL spec §1.2).
impl Qwen3VlConfig {
    /// The architecture of `Qwen/Qwen3-VL-{size}-Instruct` for `size` in `2B`, `4B`, `8B` and
    /// `30B-A3B` (the MoE family: 128 experts of width 768, 8 per token, kv heads 4).
    pub fn preset(size: &str) -> Option<Self> {
        // (hidden, intermediate, layers, heads, vision depth, vision hidden, vision mlp, taps, tie)
        let size = size.to_ascii_uppercase();
        let (h, i, n, q, depth, c, iv, taps, tie) = match size.as_str() {
            "2B" => (2048, 6144, 28, 16, 24, 1024, 4096, [5, 11, 17], true),
            "4B" => (2560, 9728, 36, 32, 24, 1024, 4096, [5, 11, 17], true),
            "8B" => (4096, 12288, 36, 32, 27, 1152, 4304, [8, 16, 24], false),
            "30B-A3B" => (2048, 6144, 48, 32, 27, 1152, 4304, [8, 16, 24], false),
            _ => return None,
        };
        let moe = (size == "30B-A3B").then(|| MoeConfig {
            num_experts: 128,
            num_experts_per_tok: 8,
            moe_intermediate_size: 768,
            decoder_sparse_step: 1,
            mlp_only_layers: Vec::new(),
        });
        Some(Self {
            family: if moe.is_some() { Family::Qwen3VlMoe } else { Family::Qwen3Vl },
            text: TextConfig {
                vocab_size: 151_936,
                hidden_size: h,
                intermediate_size: i,
                num_hidden_layers: n,
                num_attention_heads: q,
                num_key_value_heads: if moe.is_some() { 4 } else { 8 },
                head_dim: 128,
                rms_norm_eps: 1e-6,
                rope_theta: 5_000_000.0,
                mrope_section: [24, 20, 20],
                mrope_interleaved: true,
                qkv_bias: false,
                qk_norm: true,
                moe,
            },
            vision: VisionConfig {
                kind: VisionKind::Qwen3Vl,
                depth,
                hidden_size: c,
                intermediate_size: iv,
                num_heads: 16,
                in_channels: 3,
                patch_size: 16,
                spatial_merge_size: 2,
                temporal_patch_size: 2,
                out_hidden_size: h,
                num_position_embeddings: 2304,
                deepstack_visual_indexes: taps.to_vec(),
                rope_theta: 10_000.0,
                window_size: 0,
                fullatt_block_indexes: Vec::new(),
            },
            image_token_id: 151_655,
            video_token_id: 151_656,
            vision_start_token_id: 151_652,
            vision_end_token_id: 151_653,
            tie_word_embeddings: tie,
        })
    }
}

#[cfg(test)]
mod preset_tests {
    use super::*;

    #[test]
    fn eight_b_preset_has_the_published_shapes() {
        let c = Qwen3VlConfig::preset("8b").unwrap();
        assert_eq!((c.text.num_hidden_layers, c.text.hidden_size, c.vision.depth), (36, 4096, 27));
        assert_eq!(c.vision.merged_width(), 4608);
        assert!(Qwen3VlConfig::preset("9B").is_none());
    }
}
