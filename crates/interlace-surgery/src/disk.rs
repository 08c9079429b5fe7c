//! Pruning a Hugging Face checkpoint directory on disk, one tensor at a time.
//!
//! Order of work: validate everything (config, drop sets, every shard and the index) → plan
//! the output (names, shards, headers, config) → write into a temporary directory → rename into
//! place. Any failure before the rename removes the temporary directory.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use interlace_core::{indexed_tensor, CheckpointLayout, LayerSet, Plan};
use serde::Serialize;

use crate::json::Json;
use crate::model_config::ModelConfig;
use crate::packing::{name_shards, pack, OutShard, OutTensor};
use crate::progress::Progress;
use crate::provenance::{Provenance, VisionProvenance, PROVENANCE_FILE};
use crate::renumber::{Renumbering, VisionRenumbering};
use crate::source::{SourceCheckpoint, INDEX_FILE};
use crate::staging::Staging;
use crate::writer::{write_shard, CopyTracker, WrittenShard};
use crate::SurgeryError;

/// Which text layers to drop.
#[derive(Debug, Clone)]
pub enum DropSpec {
    /// Explicit layer indices (recorded as a `manual` plan that freezes the rest).
    Layers(Vec<usize>),
    /// A full plan (`plan.json`); its `drop` list is applied.
    Plan(Plan),
}

/// Options of [`prune_checkpoint`].
pub struct DiskPruneOptions {
    /// Vision blocks to drop (empty: vision untouched).
    pub drop_vision: Vec<usize>,
    /// Allow dropping a vision block that a feature tap reads (the tap is removed too).
    pub allow_deepstack: bool,
    /// Replace an existing non-empty output directory.
    pub force: bool,
    /// fsync every written file before the final rename (on by default).
    pub sync: bool,
    /// Layout to use instead of detecting it from `config.json`.
    pub layout: Option<Box<dyn CheckpointLayout>>,
}

impl Default for DiskPruneOptions {
    fn default() -> Self {
        Self { drop_vision: Vec::new(), allow_deepstack: false, force: false, sync: true, layout: None }
    }
}

/// What [`prune_checkpoint`] did.
#[derive(Debug, Clone, Serialize)]
pub struct DiskPruneReport {
    /// The output directory.
    pub out: PathBuf,
    /// Text layers before surgery.
    pub layers_before: usize,
    /// Text layers after surgery.
    pub layers_after: usize,
    /// Stored parameters before surgery.
    pub params_before: usize,
    /// Stored parameters after surgery.
    pub params_after: usize,
    /// Vision surgery, when any.
    pub vision: Option<VisionProvenance>,
    /// Weight files written.
    pub shards: Vec<WrittenShard>,
    /// Tensor bytes copied.
    pub bytes_copied: u64,
    /// Other entries copied unchanged (top level).
    pub copied_files: Vec<String>,
    /// Entries not copied because they hold weights in another format (they would be unpruned).
    pub skipped_files: Vec<String>,
}

/// Writes a copy of the checkpoint in `source` to `out` without the dropped layers.
///
/// Kept tensors are byte-identical to the source; remaining layers are renumbered
/// consecutively; `config.json` and the index are updated; every other file is copied; an
/// `interlace.json` provenance record is added. Nothing is written before every input is
/// validated, the source is never written, and `out` appears only once complete.
pub fn prune_checkpoint(
    source: &Path,
    out: &Path,
    drop: &DropSpec,
    options: &DiskPruneOptions,
    progress: &mut dyn Progress,
) -> Result<DiskPruneReport, SurgeryError> {
    let config = ModelConfig::read(source)?;
    let detected;
    let layout: &dyn CheckpointLayout = match &options.layout {
        Some(layout) => layout.as_ref(),
        None => {
            detected = config.detect_layout()?;
            detected.as_ref()
        }
    };
    let num_layers = config.text_layers(layout)?;
    let plan = plan_for(drop, num_layers, source)?;
    let text = plan.drop_set().map_err(|source| SurgeryError::InvalidDrop { what: "text layers", source })?;
    let vision = vision_renumbering(&config, layout, options)?;
    let renumbering = Renumbering { text, vision };
    let checkpoint = SourceCheckpoint::open(source)?;
    check_indices(&checkpoint, layout, &renumbering)?;

    let shards = plan_shards(&checkpoint, layout, &renumbering);
    let new_config = config.pruned(layout, &renumbering)?;
    let staging = Staging::create(source, out, options.force)?;
    let total: u64 = shards.iter().map(|s| s.data_bytes).sum();
    let mut tracker = CopyTracker::new(progress, total);
    let mut written = Vec::with_capacity(shards.len());
    let mut files = Vec::with_capacity(shards.len());
    for shard in &shards {
        let (shard_written, file) = write_shard(&staging.path, shard, &mut tracker)?;
        written.push(shard_written);
        files.push(file);
    }
    if options.sync {
        // Durable before the rename makes the output visible.
        for (file, shard) in files.iter().zip(&written) {
            file.sync_all().map_err(SurgeryError::io("cannot sync", staging.path.join(&shard.file)))?;
        }
    }
    std::mem::drop(files);
    tracker.finish();
    let params_after: usize = shards.iter().flat_map(|s| &s.tensors).map(|t| t.tensor.numel()).sum();
    if let Some(index) = &checkpoint.index {
        write_text(&staging.path.join(INDEX_FILE), &new_index(index, &shards, params_after).to_pretty_string(), options.sync)?;
    }
    write_text(&staging.path.join("config.json"), &new_config.to_pretty_string(), options.sync)?;
    let (skip, skipped_files) = not_copied(source, &checkpoint)?;
    let copied_files = crate::extra_files::copy_extra_files(source, &staging.path, &skip)?;

    let vision = renumbering.vision.as_ref().map(vision_provenance);
    let provenance = Provenance {
        tool: "interlace",
        version: env!("CARGO_PKG_VERSION"),
        source: source.canonicalize().map_err(SurgeryError::io("cannot resolve", source))?,
        layout: layout.name(),
        finetune_after_pruning: plan.finetune_after_pruning(),
        freeze_after_pruning: plan.freeze_after_pruning(),
        plan: plan.clone(),
        vision: vision.clone(),
        params_before: checkpoint.param_count(),
        params_after,
        shards: written.clone(),
    };
    let provenance_text = serde_json::to_string_pretty(&provenance).unwrap_or_default() + "\n";
    write_text(&staging.path.join(PROVENANCE_FILE), &provenance_text, options.sync)?;
    let out = staging.commit()?;
    Ok(DiskPruneReport {
        out,
        layers_before: num_layers,
        layers_after: num_layers - plan.drop.len(),
        params_before: provenance.params_before,
        params_after,
        vision,
        shards: written,
        bytes_copied: tracker.copied,
        copied_files,
        skipped_files,
    })
}

/// The layout surgery finds in `dir/config.json` by itself: a decoder-only model's (top-level
/// `num_hidden_layers`, no `text_config` or `vision_config`). Other families bring theirs from
/// their model crate ([`DiskPruneOptions::layout`]).
pub fn detect_layout(dir: &Path) -> Result<Box<dyn CheckpointLayout>, SurgeryError> {
    ModelConfig::read(dir)?.detect_layout()
}

/// The plan to record: the given one (checked against the model) or a manual plan.
fn plan_for(drop: &DropSpec, num_layers: usize, source: &Path) -> Result<Plan, SurgeryError> {
    match drop {
        DropSpec::Plan(plan) => {
            plan.validate()?;
            if plan.n_layers != num_layers {
                return Err(SurgeryError::PlanMismatch { plan_layers: plan.n_layers, model_layers: num_layers, model: source.display().to_string() });
            }
            Ok(plan.clone())
        }
        DropSpec::Layers(layers) => {
            let set = LayerSet::for_removal(layers.iter().copied(), num_layers).map_err(|source| SurgeryError::InvalidDrop { what: "text layers", source })?;
            let ratio = set.len() as f64 / num_layers as f64;
            Ok(Plan::new(num_layers, "manual", ratio, set.as_slice().to_vec(), Vec::new(), set.complement())?)
        }
    }
}

fn vision_renumbering(config: &ModelConfig, layout: &dyn CheckpointLayout, options: &DiskPruneOptions) -> Result<Option<VisionRenumbering>, SurgeryError> {
    if options.drop_vision.is_empty() {
        return Ok(None);
    }
    let vision = layout.vision().ok_or(SurgeryError::NoVision { layout: layout.name() })?;
    let depth = config.layer_count(vision.depth_field, config.usize_field(vision.depth_field)?)?;
    let blocks =
        LayerSet::for_removal(options.drop_vision.iter().copied(), depth).map_err(|source| SurgeryError::InvalidDrop { what: "vision blocks", source })?;
    let taps = match vision.taps {
        Some(t) => config.usize_list(t.indexes_field)?.unwrap_or_default(),
        None => Vec::new(),
    };
    if let Some(&bad) = taps.iter().find(|&&b| b >= depth) {
        return Err(SurgeryError::Config { path: config.path.clone(), reason: format!("tap block {bad} is out of range for depth {depth}") });
    }
    VisionRenumbering::new(vision, blocks, taps, options.allow_deepstack).map(Some)
}

/// Every indexed tensor refers to a layer/block/tap the config declares, and every layer has
/// tensors: renaming relies on both.
fn check_indices(checkpoint: &SourceCheckpoint, layout: &dyn CheckpointLayout, renumbering: &Renumbering) -> Result<(), SurgeryError> {
    let num_layers = renumbering.text.num_layers();
    let mut seen = vec![false; num_layers];
    let mut families: Vec<(&str, usize, &str)> = Vec::new();
    if let Some(v) = &renumbering.vision {
        families.push((v.layout.block_prefix, v.blocks.num_layers(), "vision blocks"));
        if let Some(t) = v.layout.taps {
            families.push((t.module_prefix, v.taps_before.len(), "taps"));
        }
    }
    for (shard, tensor) in checkpoint.tensors() {
        let bad = |reason: String| SurgeryError::LayerTensors { tensor: tensor.name.clone(), path: shard.path.clone(), reason };
        if let Some((i, _)) = indexed_tensor(&tensor.name, layout.text_layer_prefix()) {
            *seen.get_mut(i).ok_or_else(|| bad(format!("belongs to layer {i} but the config declares {num_layers} layers")))? = true;
        }
        for (prefix, count, what) in &families {
            if let Some((i, _)) = indexed_tensor(&tensor.name, prefix) {
                if i >= *count {
                    return Err(bad(format!("has index {i} but the config declares {count} {what}")));
                }
            }
        }
    }
    match seen.iter().position(|s| !s) {
        Some(i) => Err(SurgeryError::Config {
            path: checkpoint.dir.join("config.json"),
            reason: format!("declares {num_layers} layers but the checkpoint has no tensor under {}{i}.", layout.text_layer_prefix()),
        }),
        None => Ok(()),
    }
}

fn plan_shards<'a>(checkpoint: &'a SourceCheckpoint, layout: &dyn CheckpointLayout, renumbering: &Renumbering) -> Vec<OutShard<'a>> {
    let kept: Vec<OutTensor<'a>> = checkpoint
        .tensors()
        .filter_map(|(shard, tensor)| renumbering.tensor_name(layout, &tensor.name).map(|name| OutTensor { name, shard, tensor }))
        .collect();
    // Never exceed the largest source shard, so any loader that handled the source handles us.
    let limit = checkpoint.is_sharded().then(|| checkpoint.largest_shard_bytes());
    name_shards(pack(kept, limit), checkpoint.is_sharded())
}

/// The source index with `weight_map` and sizes replaced (other metadata kept in place).
fn new_index(source: &Json, shards: &[OutShard], params: usize) -> Json {
    let mut index = source.clone();
    let total_size: u64 = shards.iter().map(|s| s.data_bytes).sum();
    let mut metadata = index.get("metadata").cloned().unwrap_or(Json::Object(Vec::new()));
    metadata.set("total_size", Json::from_u64(total_size));
    if metadata.get("total_parameters").is_some() {
        metadata.set("total_parameters", Json::from_u64(params as u64));
    }
    index.set("metadata", metadata);
    let map: BTreeMap<&str, &str> = shards.iter().flat_map(|s| s.tensors.iter().map(|t| (t.name.as_str(), s.file_name.as_str()))).collect();
    index.set("weight_map", Json::Object(map.into_iter().map(|(k, v)| (k.to_string(), Json::String(v.to_string()))).collect()));
    index
}

/// Entries not to copy: what surgery rewrites, plus weight files in any format (they hold
/// the unpruned model) and hidden entries (download caches describing the source files).
fn not_copied(source: &Path, checkpoint: &SourceCheckpoint) -> Result<(HashSet<String>, Vec<String>), SurgeryError> {
    const WEIGHT_SUFFIXES: [&str; 9] = [".safetensors", ".safetensors.index.json", ".bin", ".bin.index.json", ".pt", ".pth", ".gguf", ".h5", ".msgpack"];
    let mut skip: HashSet<String> = checkpoint.shards.iter().map(|s| s.file_name.clone()).collect();
    skip.extend([INDEX_FILE, "config.json", PROVENANCE_FILE].map(String::from));
    let mut skipped = Vec::new();
    for entry in std::fs::read_dir(source).map_err(SurgeryError::io("cannot list", source))? {
        let name = entry.map_err(SurgeryError::io("cannot list", source))?.file_name().to_string_lossy().into_owned();
        if !skip.contains(&name) && (name.starts_with('.') || WEIGHT_SUFFIXES.iter().any(|s| name.ends_with(s))) {
            skipped.push(name.clone());
            skip.insert(name);
        }
    }
    skipped.sort();
    Ok((skip, skipped))
}

fn vision_provenance(v: &VisionRenumbering) -> VisionProvenance {
    VisionProvenance {
        drop: v.blocks.as_slice().to_vec(),
        depth_before: v.blocks.num_layers(),
        depth_after: v.blocks.num_layers() - v.blocks.len(),
        taps_before: v.taps_before.clone(),
        taps_after: v.taps_after(),
        removed_taps: v.removed_taps(),
    }
}

fn write_text(path: &Path, text: &str, sync: bool) -> Result<(), SurgeryError> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(SurgeryError::io("cannot create", path))?;
    file.write_all(text.as_bytes()).map_err(SurgeryError::io("cannot write", path))?;
    if sync {
        file.sync_all().map_err(SurgeryError::io("cannot sync", path))?;
    }
    Ok(())
}
