//! `interlace generate`.

use std::error::Error;
use std::path::PathBuf;

use clap::Args;
use interlace_qwen3vl::processor::{ChatMessage, ContentPart, Qwen3VlProcessor};
use interlace_qwen3vl::{generate, GenerationConfig, Qwen3VlForConditionalGeneration, Qwen3VlInput, Sampling};

use interlace_chat::ChatProcessor;
use interlace_eval::{EvalModel, Sampling as EvalSampling};
use interlace_llama::{LlamaForCausalLM, TextProcessor};
use interlace_prune::with_backend;
use interlace_prune::{BackendKind, FloatKind};

/// Arguments of `interlace generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Hugging Face model directory (config.json, safetensors, tokenizer.json, chat template) or
    /// Hub id (owner/name[@revision], downloaded into the Hugging Face cache).
    #[arg(long)]
    model: PathBuf,
    /// Image to place before the prompt text; repeat for several images.
    #[arg(long = "image")]
    images: Vec<PathBuf>,
    /// The user's message.
    #[arg(long)]
    prompt: String,
    /// Upper bound on generated tokens.
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendKind::Cpu)]
    backend: BackendKind,
    /// Float dtype of weights and activations.
    #[arg(long, value_enum, default_value_t = FloatKind::F32)]
    dtype: FloatKind,
    /// Sample instead of greedy decoding (with --temperature, --top-p, --top-k, --seed).
    #[arg(long)]
    sample: bool,
    /// Softmax temperature when sampling.
    #[arg(long, default_value_t = 0.7, requires = "sample")]
    temperature: f64,
    /// Nucleus mass when sampling.
    #[arg(long, default_value_t = 0.8, requires = "sample")]
    top_p: f64,
    /// Keep only the k most likely tokens when sampling.
    #[arg(long, default_value_t = 20, requires = "sample")]
    top_k: usize,
    /// Seed of the sampler: the same seed gives the same tokens.
    #[arg(long, default_value_t = 0, requires = "sample")]
    seed: u64,
    /// Print one JSON object `{"prompt_tokens", "new_tokens", "text"}` instead of the text.
    #[arg(long)]
    json: bool,
}

/// Generates a reply to one user turn (greedy unless `--sample`).
pub fn run(mut args: GenerateArgs) -> Result<(), Box<dyn Error>> {
    args.model = crate::hub::model_dir(&args.model)?;
    if interlace_prune::registry::text_architecture(&args.model)?.is_some() {
        return generate_text(&args);
    }
    let processor = Qwen3VlProcessor::from_dir(&args.model)?;
    let mut content: Vec<ContentPart> = args.images.iter().map(|p| ContentPart::image_path(p.clone())).collect();
    content.push(ContentPart::Text(args.prompt.clone()));
    let messages = [ChatMessage::user(content)];
    let input: Qwen3VlInput = processor.process(&messages, true)?.into();
    let mut config = GenerationConfig::from_dir(&args.model, args.max_new_tokens)?;
    if args.sample {
        config.sampling = Sampling::Sample { temperature: args.temperature, top_p: args.top_p, top_k: Some(args.top_k), seed: args.seed };
    }
    let output = with_backend!(args.backend, |B, device| {
        let model = Qwen3VlForConditionalGeneration::<B>::from_pretrained(&args.model, &device, args.dtype.dtype())?;
        generate(&model, &input, &config, |_| {}).map_err(Box::<dyn Error>::from)
    })?;
    let text = processor.decode(&output.new_tokens, true)?;
    if args.json {
        let json = serde_json::json!({"prompt_tokens": output.prompt_tokens, "new_tokens": output.new_tokens, "text": text});
        println!("{json}");
    } else {
        println!("{text}");
    }
    Ok(())
}

/// `interlace generate` on a text LLM: the prompt as one user turn of the checkpoint's chat
/// template, decoded until an `eos_token_id` of `generation_config.json` or the length limit.
fn generate_text(args: &GenerateArgs) -> Result<(), Box<dyn Error>> {
    if !args.images.is_empty() {
        return Err(format!("{} is a text model; it cannot take --image", args.model.display()).into());
    }
    let processor = TextProcessor::from_dir(&args.model)?;
    let input = processor.chat_input(&[ChatMessage::user(vec![ContentPart::Text(args.prompt.clone())])], true)?;
    let eos = GenerationConfig::from_dir(&args.model, args.max_new_tokens)?.eos_token_ids;
    let sampling = if args.sample {
        EvalSampling { temperature: args.temperature as f32, top_p: args.top_p as f32, top_k: args.top_k, presence_penalty: 0.0, seed: args.seed }
    } else {
        EvalSampling::greedy()
    };
    let new_tokens = with_backend!(args.backend, |B, device| {
        let model = LlamaForCausalLM::<B>::from_pretrained(&args.model, &device, args.dtype.dtype())?;
        model.generate(&input, args.max_new_tokens, &eos, &sampling, 0).map_err(Box::<dyn Error>::from)
    })?;
    let text = processor.decode_tokens(&new_tokens, true)?;
    if args.json {
        println!("{}", serde_json::json!({"prompt_tokens": input.input_ids.len(), "new_tokens": new_tokens, "text": text}));
    } else {
        println!("{text}");
    }
    Ok(())
}
