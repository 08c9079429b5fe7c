//! `Qwen3VLForConditionalGeneration`: vision tower + text decoder + LM head, with image merge,
//! deepstack injection and hidden-state observation (spec §4.1, §4.5, §8).

use std::path::Path;

use burn::module::Module;
use burn::prelude::{Backend, Int, Tensor};
use burn::tensor::{DType, TensorData};
use interlace_core::{
    has_trainable_params, CastParams, CoreError, DecoderStack, HiddenStateObserver, LayerSet, LayerwiseForward, NoObserver, ObservedForward, RequireGrad,
    SkipLayersForward, TapPoint,
};

use crate::cache::KvCache;
use crate::checkpoint::{Checkpoint, TensorNaming};
use crate::config::Qwen3VlConfig;
use crate::input::Qwen3VlInput;
use crate::linear::HfLinear;
use crate::loader::WeightLoader;
use crate::norm::RmsNorm;
use crate::processor::RopePositions;
use crate::rope::text_rope_tables;
use crate::text::{DecoderLayer, TextRope};
use crate::vision::VisionModel;
use crate::{Qwen3VlError, Result};

/// The text decoder (`model.language_model`).
#[derive(Module, Debug)]
pub struct TextModel<B: Backend> {
    /// Token embeddings `[vocab, H]`.
    pub embed_tokens: burn::nn::Embedding<B>,
    /// Decoder layers.
    pub layers: Vec<DecoderLayer<B>>,
    /// Final RMSNorm.
    pub norm: RmsNorm<B>,
}

/// Vision tower and text decoder (`model`).
#[derive(Module, Debug)]
pub struct Qwen3VlModel<B: Backend> {
    /// The vision tower.
    pub visual: VisionModel<B>,
    /// The text decoder.
    pub language_model: TextModel<B>,
}

/// Qwen3-VL with its language-model head, the type Hugging Face checkpoints describe.
///
/// Field names follow the checkpoint: `model.visual.*`, `model.language_model.*`, `lm_head`.
#[derive(Module, Debug)]
pub struct Qwen3VlForConditionalGeneration<B: Backend> {
    /// Vision tower and text decoder.
    pub model: Qwen3VlModel<B>,
    /// The output projection; `None` when tied to the embeddings.
    pub lm_head: Option<HfLinear<B>>,
    /// The configuration, kept in step with layer removal.
    #[module(skip)]
    pub config: Qwen3VlConfig,
    /// How the checkpoint it was loaded from names tensors (module paths are always the
    /// current names; [`Self::checkpoint_tensor_name`] translates back).
    #[module(skip)]
    pub tensor_naming: TensorNaming,
}

/// Short name for [`Qwen3VlForConditionalGeneration`].
pub type Qwen3Vl<B> = Qwen3VlForConditionalGeneration<B>;

/// Which positions get logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitsFor {
    /// Every position `[1, seq, vocab]`.
    All,
    /// Only the last position `[1, 1, vocab]` (generation).
    Last,
}

/// Everything the decoder needs for one prompt, after the vision tower ran.
struct Prepared<B: Backend> {
    embeds: Tensor<B, 3>,
    positions: RopePositions,
    visual_rows: Vec<usize>,
    deepstack: Vec<Tensor<B, 2>>,
}

impl<B: Backend> Qwen3VlForConditionalGeneration<B> {
    /// Loads a Hugging Face model directory (`config.json` + safetensors weights, single or
    /// sharded) onto `device`, converting every weight to `dtype` (F32, BF16 or F16).
    ///
    /// Fails with a typed error on a missing, unexpected or mis-shaped tensor.
    pub fn from_pretrained(dir: impl AsRef<Path>, device: &B::Device, dtype: DType) -> Result<Self> {
        let dir = dir.as_ref();
        let config = Qwen3VlConfig::from_dir(dir)?;
        let checkpoint = Checkpoint::open(dir)?;
        Self::load(&config, &checkpoint, device, dtype)
    }

    /// Builds the model from an opened checkpoint, checking every tensor against `config`.
    pub fn load(config: &Qwen3VlConfig, checkpoint: &Checkpoint, device: &B::Device, dtype: DType) -> Result<Self> {
        let mut model = Self::build(config, &WeightLoader::<B>::new(checkpoint, device, dtype), dtype, device)?;
        model.tensor_naming = checkpoint.naming();
        let unread: Vec<String> = checkpoint.unread().into_iter().filter(|n| !(config.tie_word_embeddings && n == "lm_head.weight")).collect();
        if !unread.is_empty() {
            checkpoint.ensure_all_read()?;
        }
        Ok(model)
    }

    /// A model of `config`'s shapes with random weights (normal(0, 0.02), unit norms), generated
    /// on the device: for speed and memory benchmarks of real-size models without a checkpoint.
    pub fn random(config: &Qwen3VlConfig, device: &B::Device, dtype: DType) -> Result<Self> {
        Self::build(config, &WeightLoader::<B>::random(device, dtype), dtype, device)
    }

    fn build(config: &Qwen3VlConfig, loader: &WeightLoader<B>, dtype: DType, device: &B::Device) -> Result<Self> {
        if !matches!(dtype, DType::F32 | DType::BF16 | DType::F16) {
            return Err(Qwen3VlError::Input(format!("model dtype must be F32, BF16 or F16, not {dtype:?}")));
        }
        if !B::supports_dtype(device, dtype) {
            return Err(Qwen3VlError::Input(format!("this backend cannot compute in {dtype:?} on {device:?}; choose another dtype or backend")));
        }
        let t = &config.text;
        let embed_tokens = burn::nn::Embedding { weight: loader.param("model.language_model.embed_tokens.weight", [t.vocab_size, t.hidden_size])? };
        let layers =
            (0..t.num_hidden_layers).map(|i| DecoderLayer::load(loader, &format!("model.language_model.layers.{i}"), i, t)).collect::<Result<Vec<_>>>()?;
        let norm = loader.rms_norm("model.language_model.norm", t.hidden_size, t.rms_norm_eps)?;
        let visual = VisionModel::load(loader, "model.visual", &config.vision, t.hidden_size)?;
        let lm_head = if config.tie_word_embeddings { None } else { Some(loader.linear("lm_head", t.vocab_size, t.hidden_size, false)?) };
        Ok(Self {
            model: Qwen3VlModel { visual, language_model: TextModel { embed_tokens, layers, norm } },
            lm_head,
            config: config.clone(),
            tensor_naming: TensorNaming::Current,
        })
    }

    /// The name in the source checkpoint of the parameter at `module_path` (a module path is
    /// the transformers 5 name, e.g. `model.language_model.layers.3.mlp.up_proj.weight`; a hub
    /// Qwen2.5-VL file calls it `model.layers.3.mlp.up_proj.weight`). Use it to write trained
    /// tensors back into the checkpoint's own files.
    pub fn checkpoint_tensor_name(&self, module_path: &str) -> String {
        self.tensor_naming.file_name(module_path)
    }

    /// The float dtype of the weights.
    pub fn dtype(&self) -> DType {
        self.model.language_model.embed_tokens.weight.val().dtype()
    }

    /// The device holding the weights.
    pub fn device(&self) -> B::Device {
        self.model.language_model.embed_tokens.weight.val().device()
    }

    /// Logits `[1, seq, vocab]` for one prompt.
    pub fn forward(&self, input: &Qwen3VlInput) -> Result<Tensor<B, 3>> {
        let prepared = self.prepare(input)?;
        self.run(prepared, TapPoint::Transformers, &mut NoObserver, None, LogitsFor::All)
    }

    /// Runs the prompt, filling `cache`, and returns the logits of its last position `[vocab]`.
    pub fn prefill(&self, input: &Qwen3VlInput, cache: &mut KvCache<B>) -> Result<Tensor<B, 1>> {
        if cache.seq_len() != 0 || cache.layers.len() != self.num_layers() {
            return Err(Qwen3VlError::Input("prefill needs a fresh cache with one entry per layer".into()));
        }
        let prepared = self.prepare(input)?;
        cache.rope_delta = prepared.positions.rope_delta;
        let logits = self.run(prepared, TapPoint::Transformers, &mut NoObserver, Some(cache), LogitsFor::Last)?;
        Ok(logits.flatten(0, 2))
    }

    /// Feeds one generated token and returns the next logits `[vocab]`.
    ///
    /// Its position is `seq_len + rope_delta` on all three M-RoPE axes; no deepstack applies.
    pub fn decode_step(&self, token: u32, cache: &mut KvCache<B>) -> Result<Tensor<B, 1>> {
        if token as usize >= self.config.text.vocab_size {
            return Err(Qwen3VlError::Input(format!("token {token} is outside the vocabulary of {}", self.config.text.vocab_size)));
        }
        let device = self.device();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![token as i64], [1, 1]), &device);
        let embeds = self.model.language_model.embed_tokens.forward(ids);
        let position = cache.seq_len() as i64 + cache.rope_delta;
        let positions = RopePositions { t: vec![position], h: vec![position], w: vec![position], rope_delta: cache.rope_delta };
        let prepared = Prepared { embeds, positions, visual_rows: vec![], deepstack: vec![] };
        let logits = self.run(prepared, TapPoint::Transformers, &mut NoObserver, Some(cache), LogitsFor::Last)?;
        Ok(logits.flatten(0, 2))
    }

    /// Embeds the prompt, runs the vision tower and merges image features (spec §4.1).
    fn prepare(&self, input: &Qwen3VlInput) -> Result<Prepared<B>> {
        let device = self.device();
        let config = &self.config;
        let seq = input.input_ids.len();
        if seq == 0 {
            return Err(Qwen3VlError::Input("input_ids is empty".into()));
        }
        if let Some(&bad) = input.input_ids.iter().find(|&&id| id as usize >= config.text.vocab_size) {
            return Err(Qwen3VlError::Input(format!("token {bad} is outside the vocabulary of {}", config.text.vocab_size)));
        }
        let ids: Vec<i64> = input.input_ids.iter().map(|&id| id as i64).collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, seq]), &device);
        let mut embeds = self.model.language_model.embed_tokens.forward(ids);
        let visual_rows: Vec<usize> = input.input_ids.iter().enumerate().filter(|(_, &id)| id == config.image_token_id).map(|(i, _)| i).collect();
        let rope = crate::processor::rope_index(&input.input_ids, &input.image_grid_thw, config.image_token_id, config.vision.spatial_merge_size)?;
        let mut deepstack = Vec::new();
        if !input.image_grid_thw.is_empty() {
            let rows = input.pixel_values.len() / self.config.vision.patch_dim().max(1);
            let pixels = Tensor::<B, 2>::from_data(TensorData::new(input.pixel_values.clone(), [rows, self.config.vision.patch_dim()]), (&device, DType::F32));
            if rows * self.config.vision.patch_dim() != input.pixel_values.len() {
                return Err(Qwen3VlError::Input(format!(
                    "pixel_values has {} values, not a multiple of {}",
                    input.pixel_values.len(),
                    self.config.vision.patch_dim()
                )));
            }
            let vision = self.model.visual.forward(pixels, &input.image_grid_thw)?;
            let features = vision.image_embeds.dims()[0];
            if features != visual_rows.len() {
                return Err(Qwen3VlError::Input(format!("the prompt has {} image tokens but the images give {features} features", visual_rows.len())));
            }
            embeds = overwrite_rows(embeds.squeeze_dim::<2>(0), &visual_rows, vision.image_embeds).unsqueeze_dim(0);
            deepstack = vision.deepstack;
        } else if !visual_rows.is_empty() {
            return Err(Qwen3VlError::Input(format!("the prompt has {} image tokens but no images", visual_rows.len())));
        }
        Ok(Prepared { embeds, positions: rope, visual_rows, deepstack })
    }

    /// Runs the decoder layers, reporting hidden states to `observer` (spec §8).
    fn run(
        &self,
        prepared: Prepared<B>,
        tap: TapPoint,
        observer: &mut dyn HiddenStateObserver<B>,
        cache: Option<&mut KvCache<B>>,
        logits_for: LogitsFor,
    ) -> Result<Tensor<B, 3>> {
        let normed = self.run_layers(prepared, tap, observer, cache, &[])?;
        let normed = match logits_for {
            LogitsFor::All => normed,
            LogitsFor::Last => {
                let seq = normed.dims()[1];
                normed.narrow(1, seq - 1, 1)
            }
        };
        Ok(self.lm_head_forward(normed))
    }

    /// The decoder layers and the final norm, without the output head: returns the normed last
    /// hidden state `[1, seq, hidden]`.
    ///
    /// The layers of `skip` (sorted) are left out as if removed: hidden states, deepstack
    /// injections and the observer's indices follow the positions of the remaining layers, as
    /// in the pruned checkpoint. The KV cache (generation) is indexed by the original layer.
    fn run_layers(
        &self,
        prepared: Prepared<B>,
        tap: TapPoint,
        observer: &mut dyn HiddenStateObserver<B>,
        mut cache: Option<&mut KvCache<B>>,
        skip: &[usize],
    ) -> Result<Tensor<B, 3>> {
        let Prepared { embeds, positions, visual_rows, deepstack, .. } = prepared;
        let text = &self.model.language_model;
        let kept = text.layers.iter().enumerate().filter(|(l, _)| skip.binary_search(l).is_err());
        let num_layers = text.layers.len() - skip.len();
        let rope = self.text_rope(&positions);
        let mut hidden = embeds;
        observer.observe(0, hidden.clone())?;
        for (position, (l, layer)) in kept.enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| &mut c.layers[l]);
            hidden = layer.forward(hidden, &rope, layer_cache);
            let is_last = position + 1 == num_layers;
            if tap == TapPoint::Transformers && !is_last {
                observer.observe(position + 1, hidden.clone())?;
            }
            hidden = add_deepstack(hidden, deepstack.get(position), &visual_rows);
            if tap == TapPoint::Residual {
                observer.observe(position + 1, hidden.clone())?;
            }
        }
        let normed = text.norm.forward(hidden);
        if tap == TapPoint::Transformers {
            observer.observe(num_layers, normed.clone())?;
        }
        Ok(normed)
    }

    fn lm_head_forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.lm_head {
            Some(head) => head.forward(x),
            // The tied head: x · Eᵀ with the embedding matrix E as the [vocab, hidden] weight.
            None => interlace_core::linear_kernel::linear(x, self.model.language_model.embed_tokens.weight.val()),
        }
    }

    fn text_rope(&self, positions: &RopePositions) -> TextRope<B> {
        let t = &self.config.text;
        let (cos, sin) = text_rope_tables::<B>(positions, t.head_dim, t.rope_theta, t.mrope_section, t.mrope_interleaved, &self.device());
        // Text RoPE rotates in the model dtype (transformers casts cos/sin down first).
        let dtype = self.dtype();
        TextRope::new(cos.cast(dtype).unsqueeze::<4>(), sin.cast(dtype).unsqueeze::<4>())
    }
}

/// Adds a deepstack feature to the image rows of the residual stream (spec §8: after the
/// first layers, the vision tower's intermediate features are injected at the image tokens).
fn add_deepstack<B: Backend>(hidden: Tensor<B, 3>, feature: Option<&Tensor<B, 2>>, visual_rows: &[usize]) -> Tensor<B, 3> {
    let Some(feature) = feature else { return hidden };
    let base = hidden.squeeze_dim::<2>(0);
    let added = base.clone().select(0, row_index::<B>(visual_rows, &base.device())) + feature.clone();
    overwrite_rows(base, visual_rows, added).unsqueeze_dim(0)
}

/// `rows` as an index tensor for `select` / `select_assign`.
pub(crate) fn row_index<B: Backend>(rows: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    Tensor::from_data(TensorData::new(rows.iter().map(|&r| r as i64).collect::<Vec<_>>(), [rows.len()]), device)
}

/// Returns `x` `[seq, H]` with row `rows[k]` replaced by `values[k]`: one gather from
/// `[x; values]`, so untouched rows are bit-identical.
fn overwrite_rows<B: Backend>(x: Tensor<B, 2>, rows: &[usize], values: Tensor<B, 2>) -> Tensor<B, 2> {
    if rows.is_empty() {
        return x;
    }
    let seq = x.dims()[0];
    let mut source: Vec<usize> = (0..seq).collect();
    for (k, &row) in rows.iter().enumerate() {
        source[row] = seq + k;
    }
    let device = x.device();
    Tensor::cat(vec![x, values], 0).select(0, row_index::<B>(&source, &device))
}

impl<B: Backend> Qwen3VlForConditionalGeneration<B> {
    /// Converts the weights of `layers` to `dtype` (e.g. f32 master weights for the trainable
    /// layers of a bf16 model); those layers then compute in `dtype`.
    pub fn cast_layers(mut self, layers: &LayerSet, dtype: DType) -> Self {
        let mut mapper = CastParams(dtype);
        let old = std::mem::take(&mut self.model.language_model.layers);
        self.model.language_model.layers =
            old.into_iter().enumerate().map(|(i, layer)| if layers.contains(i) { layer.map(&mut mapper) } else { layer }).collect();
        self
    }

    /// Makes the whole vision tower trainable (the official `tune_mm_vision`); mergers included.
    pub fn unfreeze_vision(mut self) -> Self {
        self.model.visual = self.model.visual.map(&mut RequireGrad);
        self
    }

    /// Makes the main patch merger trainable (the official `tune_mm_mlp`).
    pub fn unfreeze_merger(mut self) -> Self {
        self.model.visual.merger = self.model.visual.merger.map(&mut RequireGrad);
        self
    }

    /// Makes every text parameter trainable: all layers, embeddings, final norm and lm_head
    /// (the official `tune_mm_llm`).
    pub fn unfreeze_llm(mut self) -> Self {
        self.model.language_model = self.model.language_model.map(&mut RequireGrad);
        self.lm_head = self.lm_head.map(|head| head.map(&mut RequireGrad));
        self
    }
}

impl<B: Backend> DecoderStack for Qwen3VlForConditionalGeneration<B> {
    fn num_layers(&self) -> usize {
        self.model.language_model.layers.len()
    }

    fn layer_param_count(&self, index: usize) -> Result<usize, CoreError> {
        let layers = &self.model.language_model.layers;
        layers.get(index).map(Module::num_params).ok_or(CoreError::LayerOutOfRange { index, num_layers: layers.len() })
    }

    fn param_count(&self) -> usize {
        self.num_params()
    }

    fn remove_layers(mut self, drop: &LayerSet) -> Result<Self, CoreError> {
        let checked = LayerSet::for_removal(drop.as_slice().iter().copied(), self.num_layers())?;
        let layers = std::mem::take(&mut self.model.language_model.layers);
        self.model.language_model.layers = layers.into_iter().enumerate().filter(|(i, _)| !checked.contains(*i)).map(|(_, l)| l).collect();
        let kept = checked.complement();
        self.config.text.num_hidden_layers = kept.len();
        self.config.text.moe = self.config.text.moe.as_ref().map(|moe| moe.keeping(&kept));
        Ok(self)
    }

    fn set_trainable_layers(mut self, trainable: &LayerSet) -> Result<Self, CoreError> {
        let checked = LayerSet::new(trainable.as_slice().iter().copied(), self.num_layers())?;
        let layers = std::mem::take(&mut self.model.language_model.layers);
        let mut frozen = self.no_grad();
        frozen.model.language_model.layers =
            layers.into_iter().enumerate().map(|(i, layer)| if checked.contains(i) { layer.map(&mut RequireGrad) } else { layer.no_grad() }).collect();
        Ok(frozen)
    }
}

/// What every text layer needs for one input: rotary tables of the M-RoPE positions and the
/// deepstack features with the rows they go to ([`LayerwiseForward::Context`]).
pub struct LayerContext<B: Backend> {
    rope: TextRope<B>,
    visual_rows: Vec<usize>,
    deepstack: Vec<Tensor<B, 2>>,
}

impl<B: Backend> LayerwiseForward<B> for Qwen3VlForConditionalGeneration<B> {
    type Context = LayerContext<B>;

    fn begin(&self, input: &Qwen3VlInput) -> Result<(Tensor<B, 3>, LayerContext<B>)> {
        let Prepared { embeds, positions, visual_rows, deepstack } = self.prepare(input)?;
        Ok((embeds, LayerContext { rope: self.text_rope(&positions), visual_rows, deepstack }))
    }

    fn layer(&self, index: usize, hidden: Tensor<B, 3>, context: &LayerContext<B>) -> Tensor<B, 3> {
        let hidden = self.model.language_model.layers[index].forward(hidden, &context.rope, None);
        add_deepstack(hidden, context.deepstack.get(index), &context.visual_rows)
    }

    fn finish(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        self.lm_head_forward(self.model.language_model.norm.forward(hidden))
    }

    fn layer_is_trainable(&self, index: usize) -> bool {
        has_trainable_params(&self.model.language_model.layers[index])
    }

    fn begin_is_trainable(&self) -> bool {
        has_trainable_params(&self.model.language_model.embed_tokens) || has_trainable_params(&self.model.visual)
    }
}

impl<B: Backend> ObservedForward<B> for Qwen3VlForConditionalGeneration<B> {
    type Input = Qwen3VlInput;
    type Error = Qwen3VlError;

    fn forward_observed(&self, input: &Qwen3VlInput, tap: TapPoint, observer: &mut dyn HiddenStateObserver<B>) -> Result<Tensor<B, 3>> {
        let prepared = self.prepare(input)?;
        self.run(prepared, tap, observer, None, LogitsFor::All)
    }

    /// The layers and the final norm only: the output head (half the FLOPs of the 2B model cut
    /// to 6 layers) is not computed.
    fn observe_hidden_states(&self, input: &Qwen3VlInput, tap: TapPoint, observer: &mut dyn HiddenStateObserver<B>) -> Result<()> {
        let prepared = self.prepare(input)?;
        self.run_layers(prepared, tap, observer, None, &[]).map(drop)
    }
}

impl<B: Backend> SkipLayersForward<B> for Qwen3VlForConditionalGeneration<B> {
    fn forward_skipping(&self, input: &Qwen3VlInput, skip: &LayerSet) -> Result<Tensor<B, 3>> {
        let skip = LayerSet::for_removal(skip.as_slice().iter().copied(), self.num_layers())?;
        let prepared = self.prepare(input)?;
        let normed = self.run_layers(prepared, TapPoint::Transformers, &mut NoObserver, None, skip.as_slice())?;
        Ok(self.lm_head_forward(normed))
    }

    /// Every next token except `<|image_pad|>` placeholders, whose "prediction" is an image
    /// feature, not text.
    fn text_targets(&self, input: &Qwen3VlInput) -> Vec<Option<u32>> {
        let image = self.config.image_token_id;
        let ids = &input.input_ids;
        (0..ids.len()).map(|t| ids.get(t + 1).copied().filter(|&next| next != image)).collect()
    }
}

impl<B: Backend> interlace_core::IncrementalDecoder for Qwen3VlForConditionalGeneration<B> {
    type Input = Qwen3VlInput;
    type Cache = KvCache<B>;
    type Error = Qwen3VlError;

    fn new_cache(&self) -> KvCache<B> {
        KvCache::new(self.num_layers())
    }

    fn input_len(&self, input: &Qwen3VlInput) -> usize {
        input.input_ids.len()
    }

    fn prefill_logits(&self, input: &Qwen3VlInput, cache: &mut KvCache<B>) -> Result<Vec<f32>> {
        host_logits(self.prefill(input, cache)?)
    }

    fn decode_logits(&self, token: u32, cache: &mut KvCache<B>) -> Result<Vec<f32>> {
        host_logits(self.decode_step(token, cache)?)
    }
}

/// Logits `[vocab]` on the host in f32, whatever the model dtype.
fn host_logits<B: Backend>(logits: Tensor<B, 1>) -> Result<Vec<f32>> {
    logits.cast(DType::F32).into_data().into_vec::<f32>().map_err(|e| Qwen3VlError::Input(format!("cannot read logits back from the device: {e:?}")))
}
