//! `interlace inspect`: architecture and parameter counts read from the checkpoint header only.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::PathBuf;

use clap::Args;
use interlace_llama::{LayerAttention, LlamaConfig};
use interlace_qwen3vl::checkpoint::Checkpoint;
use interlace_qwen3vl::Qwen3VlConfig;

/// Arguments of `interlace inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Hugging Face model directory or Hub id (owner/name[@revision]).
    #[arg(long)]
    model: PathBuf,
    /// Print a JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// Parameter counts grouped the way pruning thinks about a model.
#[derive(Debug, Default, serde::Serialize)]
struct ParamCounts {
    total: usize,
    vision: usize,
    embeddings: usize,
    lm_head: usize,
    final_norm: usize,
    text_layers: Vec<usize>,
}

fn count(checkpoint: &Checkpoint, num_layers: usize) -> ParamCounts {
    let mut counts = ParamCounts { text_layers: vec![0; num_layers], ..Default::default() };
    let layer_prefix = "model.language_model.layers.";
    let mut other: BTreeMap<String, usize> = BTreeMap::new();
    // Names as interlace calls them, whichever naming the files use (hub Qwen2.5-VL: `model.layers.*`).
    for name in checkpoint.canonical_names() {
        let name = name.as_str();
        let n: usize = checkpoint.shape(name).map_or(0, |s| s.iter().product());
        counts.total += n;
        if name.starts_with("model.visual.") {
            counts.vision += n;
        } else if let Some(rest) = name.strip_prefix(layer_prefix) {
            let index = rest.split('.').next().and_then(|i| i.parse::<usize>().ok());
            match index.and_then(|i| counts.text_layers.get_mut(i)) {
                Some(slot) => *slot += n,
                None => *other.entry(name.to_string()).or_default() += n,
            }
        } else if name == "model.language_model.embed_tokens.weight" {
            counts.embeddings += n;
        } else if name == "lm_head.weight" {
            counts.lm_head += n;
        } else if name == "model.language_model.norm.weight" {
            counts.final_norm += n;
        }
    }
    counts
}

/// Prints the summary.
pub fn run(mut args: InspectArgs) -> Result<(), Box<dyn Error>> {
    args.model = crate::hub::model_dir(&args.model)?;
    if interlace_prune::registry::text_architecture(&args.model)?.is_some() {
        return inspect_text(&args);
    }
    let config = Qwen3VlConfig::from_dir(&args.model)?;
    let checkpoint = Checkpoint::open(&args.model)?;
    let counts = count(&checkpoint, config.text.num_hidden_layers);
    if args.json {
        println!("{}", serde_json::json!({"config": config, "params": counts}));
        return Ok(());
    }
    let t = &config.text;
    let v = &config.vision;
    println!("{} model ({}) at {}", config.family.architecture(), config.family, args.model.display());
    println!(
        "text:   {} layers, hidden {}, mlp {}, heads {} (kv {}), head_dim {}, vocab {}, rope_theta {}, mrope {:?}, lm_head {}",
        t.num_hidden_layers,
        t.hidden_size,
        t.intermediate_size,
        t.num_attention_heads,
        t.num_key_value_heads,
        t.head_dim,
        t.vocab_size,
        t.rope_theta,
        t.mrope_section,
        if config.tie_word_embeddings { "tied" } else { "separate" }
    );
    if let Some(moe) = &t.moe {
        let sparse = (0..t.num_hidden_layers).filter(|&i| t.is_sparse_layer(i)).count();
        println!(
            "moe:    {sparse} sparse layers of {} experts (width {}, {} per token); dense layers {:?}",
            moe.num_experts,
            moe.moe_intermediate_size,
            moe.num_experts_per_tok,
            (0..t.num_hidden_layers).filter(|&i| !t.is_sparse_layer(i)).collect::<Vec<_>>()
        );
    }
    println!(
        "vision: {} blocks, hidden {}, mlp {}, heads {}, patch {}, merge {}, deepstack taps {:?}{}",
        v.depth,
        v.hidden_size,
        v.intermediate_size,
        v.num_heads,
        v.patch_size,
        v.spatial_merge_size,
        v.deepstack_visual_indexes,
        if v.window_size > 0 { format!(", windows of {} px, full attention in blocks {:?}", v.window_size, v.fullatt_block_indexes) } else { String::new() }
    );
    println!("parameters: {} total", group_digits(counts.total));
    println!("  vision tower      {:>16}", group_digits(counts.vision));
    println!("  embeddings        {:>16}", group_digits(counts.embeddings));
    println!("  lm_head           {:>16}", if config.tie_word_embeddings { "tied".to_string() } else { group_digits(counts.lm_head) });
    println!("  text layers       {:>16}", group_digits(counts.text_layers.iter().sum()));
    for (i, n) in counts.text_layers.iter().enumerate() {
        let kind = if t.is_sparse_layer(i) { "  (sparse)" } else { "" };
        println!("    layer {i:>3}       {:>16}{kind}", group_digits(*n));
    }
    Ok(())
}

/// `interlace inspect` on a text LLM: its class, shapes, per-layer attention and parameters.
fn inspect_text(args: &InspectArgs) -> Result<(), Box<dyn Error>> {
    let c = LlamaConfig::from_dir(&args.model)?;
    let checkpoint = Checkpoint::open(&args.model)?;
    let counts = count(&checkpoint, c.num_hidden_layers);
    let attention: Vec<String> = c
        .layer_attention
        .iter()
        .map(|a| match a {
            LayerAttention::Full => "full".to_string(),
            LayerAttention::Sliding { window } => format!("sliding {window}"),
        })
        .collect();
    if args.json {
        let config = serde_json::json!({
            "architecture": c.architecture.class_name(), "model_type": c.architecture.model_type(),
            "num_hidden_layers": c.num_hidden_layers, "hidden_size": c.hidden_size, "intermediate_size": c.intermediate_size,
            "num_attention_heads": c.num_attention_heads, "num_key_value_heads": c.num_key_value_heads, "head_dim": c.head_dim,
            "vocab_size": c.vocab_size, "rope": format!("{:?}", c.rope), "tie_word_embeddings": c.tie_word_embeddings,
            "layer_attention": attention,
        });
        println!("{}", serde_json::json!({"config": config, "params": counts}));
        return Ok(());
    }
    println!("{} model ({}) at {}", c.architecture.class_name(), c.architecture, args.model.display());
    println!(
        "text:   {} layers, hidden {}, mlp {}, heads {} (kv {}), head_dim {}, vocab {}, rope theta {} ({:?}), lm_head {}",
        c.num_hidden_layers,
        c.hidden_size,
        c.intermediate_size,
        c.num_attention_heads,
        c.num_key_value_heads,
        c.head_dim,
        c.vocab_size,
        c.rope.theta,
        c.rope.scaling,
        if c.tie_word_embeddings { "tied" } else { "separate" }
    );
    println!("parameters: {} total", group_digits(counts.total));
    println!("  embeddings        {:>16}", group_digits(counts.embeddings));
    println!("  lm_head           {:>16}", if c.tie_word_embeddings { "tied".to_string() } else { group_digits(counts.lm_head) });
    println!("  text layers       {:>16}", group_digits(counts.text_layers.iter().sum()));
    for (i, n) in counts.text_layers.iter().enumerate() {
        println!("    layer {i:>3}       {:>16}  ({} attention)", group_digits(*n), attention[i]);
    }
    Ok(())
}

fn group_digits(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('_');
        }
        out.push(ch);
    }
    out
}
