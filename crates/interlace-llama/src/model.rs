//! `LlamaForCausalLM` and its siblings: token embeddings, the decoder layers, the final norm and
//! the output head, with hidden-state observation, layer skipping and cached decoding.

use std::path::Path;

use burn::module::Module;
use burn::prelude::{Backend, Int, Tensor};
use burn::tensor::{DType, TensorData};
use interlace_core::{
    has_trainable_params, CastParams, CoreError, DecoderStack, HiddenStateObserver, IncrementalDecoder, LayerSet, LayerwiseForward, NoObserver,
    ObservedForward, RequireGrad, SkipLayersForward, TapPoint,
};
use interlace_qwen3vl::cache::LayerCache;
use interlace_qwen3vl::checkpoint::Checkpoint;
use interlace_qwen3vl::linear::HfLinear;
use interlace_qwen3vl::loader::WeightLoader;
use interlace_qwen3vl::norm::RmsNorm;

use crate::config::LlamaConfig;
use crate::layer::DecoderLayer;
use crate::rope::{inverse_frequencies, rope_tables};
use crate::Rope;
use crate::{LlamaError, Result};

/// The token ids of one sequence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextInput {
    /// Token ids, special tokens included.
    pub input_ids: Vec<u32>,
}

impl From<Vec<u32>> for TextInput {
    fn from(input_ids: Vec<u32>) -> Self {
        Self { input_ids }
    }
}

/// The keys and values of one sequence, one [`LayerCache`] per decoder layer.
#[derive(Debug, Clone)]
pub struct TextCache<B: Backend> {
    /// One cache per layer.
    pub layers: Vec<LayerCache<B>>,
}

impl<B: Backend> TextCache<B> {
    /// An empty cache for `num_layers` layers.
    pub fn new(num_layers: usize) -> Self {
        Self { layers: (0..num_layers).map(|_| LayerCache::default()).collect() }
    }

    /// Number of cached positions (the position of the next token).
    pub fn seq_len(&self) -> usize {
        self.layers.first().map_or(0, LayerCache::len)
    }
}

/// `model`: embeddings, layers and final norm.
#[derive(Module, Debug)]
pub struct LlamaModel<B: Backend> {
    /// `[vocab, H]`.
    pub embed_tokens: burn::nn::Embedding<B>,
    /// The decoder layers.
    pub layers: Vec<DecoderLayer<B>>,
    /// Final RMSNorm.
    pub norm: RmsNorm<B>,
}

/// A decoder-only causal language model of the Llama family (`LlamaForCausalLM`,
/// `MistralForCausalLM`, `Qwen2ForCausalLM`, `Qwen3ForCausalLM`), module paths equal to the
/// checkpoint's tensor names.
#[derive(Module, Debug)]
pub struct LlamaForCausalLM<B: Backend> {
    /// The decoder.
    pub model: LlamaModel<B>,
    /// Output head `[vocab, H]`; `None` when tied to the embeddings.
    pub lm_head: Option<HfLinear<B>>,
    /// The configuration (kept in step with the layers by [`DecoderStack::remove_layers`]).
    #[module(skip)]
    pub config: LlamaConfig,
    /// The inverse rotary frequencies `[head_dim / 2]`.
    #[module(skip)]
    pub inverse_frequencies: Vec<f32>,
}

impl<B: Backend> LlamaForCausalLM<B> {
    /// Loads a Hugging Face model directory (`config.json` and safetensors, single or sharded,
    /// bf16/f16/f32) onto `device`, computing in `dtype`. Every tensor of the checkpoint must be
    /// used (a tied `lm_head.weight` may be present and is ignored).
    pub fn from_pretrained(dir: impl AsRef<Path>, device: &B::Device, dtype: DType) -> Result<Self> {
        let dir = dir.as_ref();
        let config = LlamaConfig::from_dir(dir)?;
        let checkpoint = Checkpoint::open(dir)?;
        Self::load(&config, &checkpoint, device, dtype)
    }

    /// Builds the model of `config` from an open checkpoint.
    pub fn load(config: &LlamaConfig, checkpoint: &Checkpoint, device: &B::Device, dtype: DType) -> Result<Self> {
        let model = Self::build(config, &WeightLoader::<B>::new(checkpoint, device, dtype), dtype, device)?;
        let unread: Vec<String> = checkpoint.unread().into_iter().filter(|n| !(config.tie_word_embeddings && n == "lm_head.weight")).collect();
        if !unread.is_empty() {
            checkpoint.ensure_all_read()?;
        }
        Ok(model)
    }

    /// A model of `config` with random weights (benchmarks, tests). Seed with `B::seed` first.
    pub fn random(config: &LlamaConfig, device: &B::Device, dtype: DType) -> Result<Self> {
        Self::build(config, &WeightLoader::<B>::random(device, dtype), dtype, device)
    }

    fn build(config: &LlamaConfig, loader: &WeightLoader<B>, dtype: DType, device: &B::Device) -> Result<Self> {
        if !matches!(dtype, DType::F32 | DType::BF16 | DType::F16) {
            return Err(LlamaError::Input(format!("model dtype must be F32, BF16 or F16, not {dtype:?}")));
        }
        if !B::supports_dtype(device, dtype) {
            return Err(LlamaError::Input(format!("this backend cannot compute in {dtype:?} on {device:?}; choose another dtype or backend")));
        }
        let (vocab, h) = (config.vocab_size, config.hidden_size);
        let embed_tokens = burn::nn::Embedding { weight: loader.param("model.embed_tokens.weight", [vocab, h])? };
        let layers = (0..config.num_hidden_layers).map(|i| DecoderLayer::load(loader, &format!("model.layers.{i}"), i, config)).collect::<Result<Vec<_>>>()?;
        let norm = loader.rms_norm("model.norm", h, config.rms_norm_eps)?;
        let lm_head = if config.tie_word_embeddings { None } else { Some(loader.linear("lm_head", vocab, h, false)?) };
        Ok(Self {
            model: LlamaModel { embed_tokens, layers, norm },
            lm_head,
            inverse_frequencies: inverse_frequencies(&config.rope, config.head_dim),
            config: config.clone(),
        })
    }

    /// The dtype of the embeddings (the stream's dtype).
    pub fn dtype(&self) -> DType {
        self.model.embed_tokens.weight.val().dtype()
    }

    /// The device holding the model.
    pub fn device(&self) -> B::Device {
        self.model.embed_tokens.weight.val().device()
    }

    /// Logits `[1, seq, vocab]` of every position of `input`.
    pub fn forward(&self, input: &TextInput) -> Result<Tensor<B, 3>> {
        let embeds = self.embed(&input.input_ids)?;
        let normed = self.run_layers(embeds, 0, TapPoint::Transformers, &mut NoObserver, None, &[])?;
        Ok(self.lm_head_forward(normed))
    }

    /// Runs the prompt into a fresh `cache`; the logits `[vocab]` of the token after it.
    pub fn prefill(&self, input: &TextInput, cache: &mut TextCache<B>) -> Result<Tensor<B, 1>> {
        if cache.seq_len() != 0 || cache.layers.len() != self.num_layers() {
            return Err(LlamaError::Input("prefill needs a fresh cache with one entry per layer".into()));
        }
        let embeds = self.embed(&input.input_ids)?;
        self.next_token_logits(embeds, cache)
    }

    /// Appends `token` to the sequence in `cache`; the logits `[vocab]` of the token after it.
    pub fn decode_step(&self, token: u32, cache: &mut TextCache<B>) -> Result<Tensor<B, 1>> {
        if cache.seq_len() == 0 {
            return Err(LlamaError::Input("decode_step needs a cache filled by prefill".into()));
        }
        let embeds = self.embed(&[token])?;
        self.next_token_logits(embeds, cache)
    }

    fn next_token_logits(&self, embeds: Tensor<B, 3>, cache: &mut TextCache<B>) -> Result<Tensor<B, 1>> {
        let start = cache.seq_len();
        let normed = self.run_layers(embeds, start, TapPoint::Transformers, &mut NoObserver, Some(cache), &[])?;
        let seq = normed.dims()[1];
        Ok(self.lm_head_forward(normed.narrow(1, seq - 1, 1)).flatten(0, 2))
    }

    /// The embeddings `[1, seq, H]` of `ids`, which must be non-empty and inside the vocabulary.
    fn embed(&self, ids: &[u32]) -> Result<Tensor<B, 3>> {
        if ids.is_empty() {
            return Err(LlamaError::Input("input_ids is empty".into()));
        }
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.config.vocab_size) {
            return Err(LlamaError::Input(format!("token {bad} is outside the vocabulary of {}", self.config.vocab_size)));
        }
        let data = TensorData::new(ids.iter().map(|&id| id as i64).collect::<Vec<_>>(), [1, ids.len()]);
        Ok(self.model.embed_tokens.forward(Tensor::<B, 2, Int>::from_data(data, &self.device())))
    }

    /// The rotary tables of positions `start..start + seq`.
    fn rope(&self, start: usize, seq: usize) -> Rope<B> {
        let (cos, sin) = rope_tables::<B>(&self.inverse_frequencies, start, seq, self.dtype(), &self.device());
        Rope::new(cos, sin)
    }

    /// Runs the layers not in `skip` (sorted) on `hidden` at positions from `start`, handing
    /// hidden states to `observer`, and returns the final norm's output.
    fn run_layers(
        &self,
        mut hidden: Tensor<B, 3>,
        start: usize,
        tap: TapPoint,
        observer: &mut dyn HiddenStateObserver<B>,
        mut cache: Option<&mut TextCache<B>>,
        skip: &[usize],
    ) -> Result<Tensor<B, 3>> {
        let rope = self.rope(start, hidden.dims()[1]);
        let kept: Vec<usize> = (0..self.num_layers()).filter(|l| skip.binary_search(l).is_err()).collect();
        observer.observe(0, hidden.clone())?;
        for (position, &l) in kept.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| &mut c.layers[l]);
            hidden = self.model.layers[l].forward(hidden, &rope, layer_cache);
            // transformers' last hidden state is the normed one; the residual tap wants every raw one.
            if tap == TapPoint::Residual || position + 1 < kept.len() {
                observer.observe(position + 1, hidden.clone())?;
            }
        }
        let normed = self.model.norm.forward(hidden);
        if tap == TapPoint::Transformers {
            observer.observe(kept.len(), normed.clone())?;
        }
        Ok(normed)
    }

    fn lm_head_forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.lm_head {
            Some(head) => head.forward(x),
            // The tied head: x · Eᵀ with the embedding matrix E as the [vocab, hidden] weight.
            None => interlace_core::linear_kernel::linear(x, self.model.embed_tokens.weight.val()),
        }
    }

    /// Casts the parameters of `layers` to `dtype` (f32 master weights of trainable layers in a
    /// bf16 model); gradient flags are kept.
    pub fn cast_layers(mut self, layers: &LayerSet, dtype: DType) -> Self {
        let mut mapper = CastParams(dtype);
        let old = std::mem::take(&mut self.model.layers);
        self.model.layers = old.into_iter().enumerate().map(|(i, layer)| if layers.contains(i) { layer.map(&mut mapper) } else { layer }).collect();
        self
    }
}

impl<B: Backend> LlamaForCausalLM<B> {
    /// Makes every parameter trainable (embeddings, layers, final norm, head): full fine-tuning.
    pub fn unfreeze_all(self) -> Self {
        self.map(&mut RequireGrad)
    }
}

impl<B: Backend> DecoderStack for LlamaForCausalLM<B> {
    fn num_layers(&self) -> usize {
        self.model.layers.len()
    }

    fn layer_param_count(&self, index: usize) -> Result<usize, CoreError> {
        let layers = &self.model.layers;
        layers.get(index).map(Module::num_params).ok_or(CoreError::LayerOutOfRange { index, num_layers: layers.len() })
    }

    fn param_count(&self) -> usize {
        self.num_params()
    }

    fn remove_layers(mut self, drop: &LayerSet) -> Result<Self, CoreError> {
        let checked = LayerSet::for_removal(drop.as_slice().iter().copied(), self.num_layers())?;
        let layers = std::mem::take(&mut self.model.layers);
        self.model.layers = layers.into_iter().enumerate().filter(|(i, _)| !checked.contains(*i)).map(|(_, l)| l).collect();
        // Every surviving layer keeps its attention kind, as the pruned config's layer_types say.
        let kinds = std::mem::take(&mut self.config.layer_attention);
        self.config.layer_attention = kinds.into_iter().enumerate().filter(|(i, _)| !checked.contains(*i)).map(|(_, k)| k).collect();
        self.config.num_hidden_layers = self.model.layers.len();
        Ok(self)
    }

    fn set_trainable_layers(mut self, trainable: &LayerSet) -> Result<Self, CoreError> {
        let checked = LayerSet::new(trainable.as_slice().iter().copied(), self.num_layers())?;
        let layers = std::mem::take(&mut self.model.layers);
        let mut frozen = self.no_grad();
        frozen.model.layers =
            layers.into_iter().enumerate().map(|(i, layer)| if checked.contains(i) { layer.map(&mut RequireGrad) } else { layer.no_grad() }).collect();
        Ok(frozen)
    }
}

impl<B: Backend> ObservedForward<B> for LlamaForCausalLM<B> {
    type Input = TextInput;
    type Error = LlamaError;

    fn forward_observed(&self, input: &TextInput, tap: TapPoint, observer: &mut dyn HiddenStateObserver<B>) -> Result<Tensor<B, 3>> {
        let embeds = self.embed(&input.input_ids)?;
        let normed = self.run_layers(embeds, 0, tap, observer, None, &[])?;
        Ok(self.lm_head_forward(normed))
    }

    fn observe_hidden_states(&self, input: &TextInput, tap: TapPoint, observer: &mut dyn HiddenStateObserver<B>) -> Result<()> {
        let embeds = self.embed(&input.input_ids)?;
        self.run_layers(embeds, 0, tap, observer, None, &[]).map(drop)
    }
}

/// What every layer needs besides the hidden state: the rotary tables of the sequence.
pub struct LayerContext<B: Backend> {
    rope: Rope<B>,
}

impl<B: Backend> LayerwiseForward<B> for LlamaForCausalLM<B> {
    type Context = LayerContext<B>;

    fn begin(&self, input: &TextInput) -> Result<(Tensor<B, 3>, LayerContext<B>)> {
        let embeds = self.embed(&input.input_ids)?;
        let rope = self.rope(0, embeds.dims()[1]);
        Ok((embeds, LayerContext { rope }))
    }

    fn layer(&self, index: usize, hidden: Tensor<B, 3>, context: &LayerContext<B>) -> Tensor<B, 3> {
        self.model.layers[index].forward(hidden, &context.rope, None)
    }

    fn finish(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        self.lm_head_forward(self.model.norm.forward(hidden))
    }

    fn layer_is_trainable(&self, index: usize) -> bool {
        has_trainable_params(&self.model.layers[index])
    }

    fn begin_is_trainable(&self) -> bool {
        has_trainable_params(&self.model.embed_tokens)
    }
}

impl<B: Backend> SkipLayersForward<B> for LlamaForCausalLM<B> {
    fn forward_skipping(&self, input: &TextInput, skip: &LayerSet) -> Result<Tensor<B, 3>> {
        let skip = LayerSet::for_removal(skip.as_slice().iter().copied(), self.num_layers())?;
        let embeds = self.embed(&input.input_ids)?;
        let normed = self.run_layers(embeds, 0, TapPoint::Transformers, &mut NoObserver, None, skip.as_slice())?;
        Ok(self.lm_head_forward(normed))
    }

    fn text_targets(&self, input: &TextInput) -> Vec<Option<u32>> {
        let ids = &input.input_ids;
        (0..ids.len()).map(|t| ids.get(t + 1).copied()).collect()
    }
}

impl<B: Backend> IncrementalDecoder for LlamaForCausalLM<B> {
    type Input = TextInput;
    type Cache = TextCache<B>;
    type Error = LlamaError;

    fn new_cache(&self) -> TextCache<B> {
        TextCache::new(self.num_layers())
    }

    fn input_len(&self, input: &TextInput) -> usize {
        input.input_ids.len()
    }

    fn prefill_logits(&self, input: &TextInput, cache: &mut TextCache<B>) -> Result<Vec<f32>> {
        host_logits(self.prefill(input, cache)?)
    }

    fn decode_logits(&self, token: u32, cache: &mut TextCache<B>) -> Result<Vec<f32>> {
        host_logits(self.decode_step(token, cache)?)
    }
}

/// Logits `[vocab]` on the host in f32, whatever the model dtype.
fn host_logits<B: Backend>(logits: Tensor<B, 1>) -> Result<Vec<f32>> {
    logits.cast(DType::F32).into_data().into_vec::<f32>().map_err(|e| LlamaError::Input(format!("cannot read logits back from the device: {e:?}")))
}
