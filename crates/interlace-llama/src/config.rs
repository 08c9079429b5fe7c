//! `config.json` of the decoder-only families, read with transformers' defaults and rules.
//!
//! One [`LlamaConfig`] describes all four classes; [`Architecture`] records which one, since
//! the classes differ in details the config does not spell out (Qwen2 always has q/k/v biases,
//! Qwen3 always normalises query and key heads, Mistral slides its window over every layer).

use std::path::Path;

use serde_json::Value;

use crate::{LlamaError, Result};

/// The transformers class a checkpoint is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Architecture {
    /// `LlamaForCausalLM` (`model_type = "llama"`): Llama 2, 3, 3.1, 3.2, 3.3 and their kin.
    Llama,
    /// `MistralForCausalLM` (`model_type = "mistral"`).
    Mistral,
    /// `Qwen2ForCausalLM` (`model_type = "qwen2"`): Qwen2 and Qwen2.5.
    Qwen2,
    /// `Qwen3ForCausalLM` (`model_type = "qwen3"`): the dense Qwen3 models.
    Qwen3,
}

impl Architecture {
    /// Every supported architecture.
    pub const ALL: [Architecture; 4] = [Architecture::Llama, Architecture::Mistral, Architecture::Qwen2, Architecture::Qwen3];

    /// The config's `model_type`.
    pub fn model_type(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Mistral => "mistral",
            Architecture::Qwen2 => "qwen2",
            Architecture::Qwen3 => "qwen3",
        }
    }

    /// The transformers class (`architectures[0]` of a saved config).
    pub fn class_name(self) -> &'static str {
        match self {
            Architecture::Llama => "LlamaForCausalLM",
            Architecture::Mistral => "MistralForCausalLM",
            Architecture::Qwen2 => "Qwen2ForCausalLM",
            Architecture::Qwen3 => "Qwen3ForCausalLM",
        }
    }

    /// The architecture a `model_type` or class name stands for.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.model_type() == name || a.class_name() == name)
    }

    /// The architecture a config names: its `model_type`, else its `architectures`.
    pub fn named_in(config: &Value) -> Option<Self> {
        if let Some(model_type) = config.get("model_type").and_then(Value::as_str) {
            return Self::from_name(model_type);
        }
        config.get("architectures")?.as_array()?.iter().filter_map(Value::as_str).find_map(Self::from_name)
    }

    /// `"llama (LlamaForCausalLM), ..."`, for error messages.
    pub fn supported() -> String {
        Self::ALL.iter().map(|a| format!("{} ({})", a.model_type(), a.class_name())).collect::<Vec<_>>().join(", ")
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.model_type())
    }
}

/// How rotary frequencies are derived from `rope_theta` (transformers' `rope_type`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    /// `default`: `θ^(-2j/d)`.
    Default,
    /// `linear`: the default frequencies divided by `factor`.
    Linear {
        /// The divisor.
        factor: f64,
    },
    /// `llama3` (Llama 3.1 and later): long wavelengths divided by `factor`, short ones kept,
    /// the band between interpolated.
    Llama3 {
        /// Divisor of the low frequencies.
        factor: f64,
        /// `original_max_position_embeddings / low_freq_factor` is the long-wavelength bound.
        low_freq_factor: f64,
        /// `original_max_position_embeddings / high_freq_factor` is the short-wavelength bound.
        high_freq_factor: f64,
        /// The context length of pre-training.
        original_max_position_embeddings: f64,
    },
}

/// Rotary position embedding parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RopeConfig {
    /// The base wavelength.
    pub theta: f64,
    /// The frequency rule.
    pub scaling: RopeScaling,
}

/// Which keys a layer's queries see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerAttention {
    /// Every earlier position.
    Full,
    /// The last `window` positions, the query's own included (transformers' `sliding_window`).
    Sliding {
        /// The window length.
        window: usize,
    },
}

/// The parameters of a decoder-only checkpoint, as transformers reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// The class.
    pub architecture: Architecture,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (GQA when fewer than query heads).
    pub num_key_value_heads: usize,
    /// Per-head width.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Rotary embedding.
    pub rope: RopeConfig,
    /// Whether the output head is the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Biases on q_proj, k_proj and v_proj.
    pub qkv_bias: bool,
    /// Bias on o_proj.
    pub o_bias: bool,
    /// Biases on gate_proj, up_proj and down_proj (Llama's `mlp_bias`).
    pub mlp_bias: bool,
    /// Per-head RMSNorm of queries and keys before RoPE (Qwen3).
    pub qk_norm: bool,
    /// What each layer attends to, one entry per layer.
    pub layer_attention: Vec<LayerAttention>,
}

impl LlamaConfig {
    /// Reads `dir/config.json`.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let path = dir.as_ref().join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|source| LlamaError::Io { path: path.clone(), source })?;
        let json: Value = serde_json::from_str(&text).map_err(|e| config_error(&path, "(file)", format!("not valid JSON: {e}")))?;
        Self::from_json(&json, &path)
    }

    /// Reads a parsed config; `path` is only used in error messages.
    pub fn from_json(json: &Value, path: &Path) -> Result<Self> {
        let reader = Reader { json, path };
        let architecture = Architecture::named_in(json).ok_or_else(|| {
            let found = json.get("model_type").map(Value::to_string).unwrap_or_else(|| "nothing".into());
            config_error(path, "model_type", format!("found {found}; supported: {}", Architecture::supported()))
        })?;
        let hidden_act = reader.string_or("hidden_act", "silu")?;
        if hidden_act != "silu" {
            return Err(config_error(path, "hidden_act", format!("`{hidden_act}` is not supported (only silu)")));
        }
        let hidden_size = reader.usize("hidden_size")?;
        let num_attention_heads = reader.usize("num_attention_heads")?;
        let num_key_value_heads = reader.optional_usize("num_key_value_heads")?.unwrap_or(num_attention_heads);
        let head_dim = match architecture {
            Architecture::Qwen3 => reader.optional_usize("head_dim")?.unwrap_or(128),
            _ => reader.optional_usize("head_dim")?.unwrap_or(hidden_size / num_attention_heads.max(1)),
        };
        let num_hidden_layers = reader.usize("num_hidden_layers")?;
        let attention_bias = reader.bool_or("attention_bias", false)?;
        let config = Self {
            architecture,
            vocab_size: reader.usize("vocab_size")?,
            hidden_size,
            intermediate_size: reader.usize("intermediate_size")?,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps: reader.f64_or("rms_norm_eps", 1e-6)?,
            rope: reader.rope()?,
            tie_word_embeddings: reader.bool_or("tie_word_embeddings", false)?,
            qkv_bias: match architecture {
                Architecture::Qwen2 => true,
                Architecture::Mistral => false,
                Architecture::Llama | Architecture::Qwen3 => attention_bias,
            },
            o_bias: matches!(architecture, Architecture::Llama | Architecture::Qwen3) && attention_bias,
            mlp_bias: architecture == Architecture::Llama && reader.bool_or("mlp_bias", false)?,
            qk_norm: architecture == Architecture::Qwen3,
            layer_attention: reader.layer_attention(architecture, num_hidden_layers)?,
        };
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(config_error(path, field, "must be positive".into()));
        }
        if !self.num_attention_heads.is_multiple_of(self.num_key_value_heads) {
            let reason = format!("{} query heads cannot share {} key/value heads evenly", self.num_attention_heads, self.num_key_value_heads);
            return Err(config_error(path, "num_key_value_heads", reason));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(config_error(path, "head_dim", format!("{} is odd; rotary embeddings rotate pairs", self.head_dim)));
        }
        Ok(())
    }

    /// Number of query heads sharing one key/value head.
    pub fn kv_groups(&self) -> usize {
        self.num_attention_heads / self.num_key_value_heads
    }
}

fn config_error(path: &Path, field: &str, reason: String) -> LlamaError {
    LlamaError::Config { path: path.to_path_buf(), field: field.to_string(), reason }
}

/// Typed field access with transformers' defaults and messages naming the field.
struct Reader<'a> {
    json: &'a Value,
    path: &'a Path,
}

impl Reader<'_> {
    fn field(&self, name: &str) -> Option<&Value> {
        self.json.get(name).filter(|v| !v.is_null())
    }

    fn error(&self, field: &str, reason: impl Into<String>) -> LlamaError {
        config_error(self.path, field, reason.into())
    }

    fn optional_usize(&self, name: &str) -> Result<Option<usize>> {
        self.field(name)
            .map(|v| v.as_u64().map(|n| n as usize).ok_or_else(|| self.error(name, format!("expected a non-negative integer, found {v}"))))
            .transpose()
    }

    fn usize(&self, name: &str) -> Result<usize> {
        self.optional_usize(name)?.ok_or_else(|| self.error(name, "missing"))
    }

    fn f64_or(&self, name: &str, default: f64) -> Result<f64> {
        self.field(name).map_or(Ok(default), |v| v.as_f64().ok_or_else(|| self.error(name, format!("expected a number, found {v}"))))
    }

    fn bool_or(&self, name: &str, default: bool) -> Result<bool> {
        self.field(name).map_or(Ok(default), |v| v.as_bool().ok_or_else(|| self.error(name, format!("expected true or false, found {v}"))))
    }

    fn string_or(&self, name: &str, default: &str) -> Result<String> {
        self.field(name)
            .map_or(Ok(default.to_string()), |v| v.as_str().map(str::to_string).ok_or_else(|| self.error(name, format!("expected a string, found {v}"))))
    }

    /// `rope_parameters` (transformers 5), else the older top-level `rope_theta` with an optional
    /// `rope_scaling` (whose type key is `rope_type` or `type`).
    fn rope(&self) -> Result<RopeConfig> {
        let (params, field) = match self.field("rope_parameters") {
            Some(p) => (Some(p), "rope_parameters"),
            None => (self.field("rope_scaling"), "rope_scaling"),
        };
        let number = |key: &str| -> Result<Option<f64>> {
            match params.and_then(|p| p.get(key)).filter(|v| !v.is_null()) {
                None => Ok(None),
                Some(v) => v.as_f64().map(Some).ok_or_else(|| self.error(&format!("{field}.{key}"), format!("expected a number, found {v}"))),
            }
        };
        let theta = match number("rope_theta")? {
            Some(theta) => theta,
            None => self.f64_or("rope_theta", 10_000.0)?,
        };
        let rope_type = params.and_then(|p| p.get("rope_type").or_else(|| p.get("type"))).and_then(Value::as_str).unwrap_or("default");
        if number("partial_rotary_factor")?.is_some_and(|f| f != 1.0) {
            return Err(self.error(&format!("{field}.partial_rotary_factor"), "partial rotary embeddings are not supported"));
        }
        let required = |key: &str| -> Result<f64> {
            number(key)?.ok_or_else(|| self.error(&format!("{field}.{key}"), format!("missing (needed by rope_type {rope_type})")))
        };
        let scaling = match rope_type {
            "default" => RopeScaling::Default,
            "linear" => RopeScaling::Linear { factor: required("factor")? },
            "llama3" => RopeScaling::Llama3 {
                factor: required("factor")?,
                low_freq_factor: required("low_freq_factor")?,
                high_freq_factor: required("high_freq_factor")?,
                original_max_position_embeddings: match number("original_max_position_embeddings")? {
                    Some(n) => n,
                    None => self.usize("max_position_embeddings")? as f64,
                },
            },
            other => return Err(self.error(&format!("{field}.rope_type"), format!("`{other}` is not supported (default, linear, llama3)"))),
        };
        Ok(RopeConfig { theta, scaling })
    }

    /// Mistral slides its window over every layer when `sliding_window` is set. Qwen2 and Qwen3
    /// use a window only with `use_sliding_window`, on the layers `layer_types` marks
    /// `sliding_attention` (by default those at or above `max_window_layers`). Llama has none.
    fn layer_attention(&self, architecture: Architecture, layers: usize) -> Result<Vec<LayerAttention>> {
        let window = match architecture {
            Architecture::Llama => None,
            Architecture::Mistral => self.optional_usize("sliding_window")?,
            Architecture::Qwen2 | Architecture::Qwen3 => {
                if self.bool_or("use_sliding_window", false)? {
                    self.optional_usize("sliding_window")?
                } else {
                    None
                }
            }
        };
        let Some(window) = window else { return Ok(vec![LayerAttention::Full; layers]) };
        if window == 0 {
            return Err(self.error("sliding_window", "must be positive"));
        }
        let sliding = LayerAttention::Sliding { window };
        if architecture == Architecture::Mistral {
            return Ok(vec![sliding; layers]);
        }
        match self.field("layer_types") {
            Some(types) => {
                let types = types.as_array().ok_or_else(|| self.error("layer_types", "expected a list"))?;
                if types.len() != layers {
                    return Err(self.error("layer_types", format!("has {} entries for {layers} layers", types.len())));
                }
                types
                    .iter()
                    .map(|t| match t.as_str() {
                        Some("full_attention") => Ok(LayerAttention::Full),
                        Some("sliding_attention") => Ok(sliding),
                        _ => Err(self.error("layer_types", format!("unknown layer type {t}"))),
                    })
                    .collect()
            }
            None => {
                let max_window_layers = self.optional_usize("max_window_layers")?.unwrap_or(28);
                Ok((0..layers).map(|i| if i >= max_window_layers { sliding } else { LayerAttention::Full }).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(json: Value) -> Result<LlamaConfig> {
        LlamaConfig::from_json(&json, Path::new("config.json"))
    }

    fn base(model_type: &str) -> Value {
        json!({"model_type": model_type, "vocab_size": 32, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 4,
               "num_attention_heads": 4, "num_key_value_heads": 2})
    }

    #[test]
    fn legacy_rope_scaling_of_a_hub_llama_3_1_config() {
        let mut json = base("llama");
        json["rope_theta"] = json!(500000.0);
        json["rope_scaling"] =
            json!({"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"});
        let config = parse(json).unwrap();
        assert_eq!(
            config.rope,
            RopeConfig {
                theta: 500000.0,
                scaling: RopeScaling::Llama3 { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192.0 }
            }
        );
        assert_eq!(config.head_dim, 4);
        assert!(!config.qkv_bias && !config.qk_norm);
    }

    #[test]
    fn qwen2_windows_follow_max_window_layers_only_with_use_sliding_window() {
        let mut json = base("qwen2");
        json["sliding_window"] = json!(8);
        json["max_window_layers"] = json!(3);
        assert_eq!(parse(json.clone()).unwrap().layer_attention, vec![LayerAttention::Full; 4]);
        json["use_sliding_window"] = json!(true);
        let config = parse(json).unwrap();
        let sliding = LayerAttention::Sliding { window: 8 };
        assert_eq!(config.layer_attention, vec![LayerAttention::Full, LayerAttention::Full, LayerAttention::Full, sliding]);
        assert!(config.qkv_bias && !config.o_bias);
    }

    #[test]
    fn qwen3_head_dim_defaults_to_128_and_mistral_slides_everywhere() {
        let config = parse(base("qwen3")).unwrap();
        assert_eq!(config.head_dim, 128);
        assert!(config.qk_norm);
        let mut json = base("mistral");
        json["sliding_window"] = json!(4096);
        assert_eq!(parse(json).unwrap().layer_attention, vec![LayerAttention::Sliding { window: 4096 }; 4]);
    }

    #[test]
    fn unsupported_settings_are_named() {
        let mut json = base("llama");
        json["rope_scaling"] = json!({"type": "yarn", "factor": 4.0});
        assert!(parse(json).unwrap_err().to_string().contains("rope_scaling.rope_type"));
        let mut json = base("llama");
        json["hidden_act"] = json!("gelu");
        assert!(parse(json).unwrap_err().to_string().contains("hidden_act"));
        let err = parse(base("gpt2")).unwrap_err().to_string();
        assert!(err.contains("model_type") && err.contains("LlamaForCausalLM"), "{err}");
        let mut json = base("llama");
        json["num_key_value_heads"] = json!(3);
        assert!(parse(json).unwrap_err().to_string().contains("num_key_value_heads"));
    }
}
