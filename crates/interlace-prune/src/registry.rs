//! The registry of model families: which model crate handles a checkpoint, chosen from its
//! `config.json`. The analysis, surgery, trainer and evaluation crates never name a family;
//! adding one means a model crate and an entry here.

use std::path::Path;

use interlace_core::CheckpointLayout;
use interlace_llama::Architecture;
use interlace_qwen3vl::Family;
use interlace_surgery::DiskPruneOptions;

use crate::PipelineError;

fn config_json(dir: &Path) -> Result<serde_json::Value, PipelineError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|source| PipelineError::Io { path: path.clone(), source })?;
    serde_json::from_str(&text).map_err(|e| PipelineError::Invalid(format!("{}: not valid JSON: {e}", path.display())))
}

/// The model crate's family of the checkpoint in `dir`, from `config.json`'s `model_type`, else
/// its `architectures`; `None` when the config names no vision-language family a model crate
/// here loads.
pub fn family(dir: &Path) -> Result<Option<Family>, PipelineError> {
    Ok(Family::named_in(&config_json(dir)?))
}

/// The text-decoder architecture of the checkpoint in `dir` (Llama, Mistral, Qwen2, Qwen3),
/// chosen the same way; `None` for any other config.
pub fn text_architecture(dir: &Path) -> Result<Option<Architecture>, PipelineError> {
    Ok(Architecture::named_in(&config_json(dir)?))
}

/// The number of decoder (text) layers of the checkpoint in `dir`, read by its family's config
/// reader.
pub fn num_layers(dir: &Path) -> Result<usize, PipelineError> {
    Ok(match text_architecture(dir)? {
        Some(_) => interlace_llama::LlamaConfig::from_dir(dir)?.num_hidden_layers,
        None => interlace_qwen3vl::Qwen3VlConfig::from_dir(dir)?.text.num_hidden_layers,
    })
}

/// Where the checkpoint in `dir` keeps its layers: its family's layout, or for a plain
/// decoder-only config (top-level `num_hidden_layers`) the generic one. Any other config is
/// refused with the families that are supported.
pub fn checkpoint_layout(dir: &Path) -> Result<Box<dyn CheckpointLayout>, PipelineError> {
    if let Some(family) = family(dir)? {
        return Ok(family.checkpoint_layout());
    }
    interlace_surgery::detect_layout(dir).map_err(|error| {
        PipelineError::Invalid(format!("{error}. Families with a layout: {}, {}, and decoder-only models", Family::supported(), Architecture::supported()))
    })
}

/// [`DiskPruneOptions`] with the layout of the checkpoint in `dir` ([`checkpoint_layout`]).
pub fn prune_options(dir: &Path) -> Result<DiskPruneOptions, PipelineError> {
    Ok(DiskPruneOptions { layout: Some(checkpoint_layout(dir)?), ..DiskPruneOptions::default() })
}
