//! Reading the layer counts of `config.json` and writing the pruned config.

use std::path::{Path, PathBuf};

use interlace_core::{CheckpointLayout, DecoderOnlyLayout, PeriodicKindsLayout, PeriodicLayerKinds};

use crate::json::Json;
use crate::renumber::Renumbering;
use crate::SurgeryError;

/// A model directory's `config.json`, key order preserved.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// The file.
    pub path: PathBuf,
    /// Its content.
    pub json: Json,
}

impl ModelConfig {
    /// Reads `dir/config.json`.
    pub fn read(dir: &Path) -> Result<Self, SurgeryError> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(SurgeryError::io("cannot read", &path))?;
        let json = Json::parse(&text).map_err(|e| SurgeryError::Config { path: path.clone(), reason: format!("not valid JSON: {e}") })?;
        if !matches!(json, Json::Object(_)) {
            return Err(SurgeryError::Config { path, reason: "top level is not an object".into() });
        }
        Ok(Self { path, json })
    }

    /// The layout this crate can tell from the config alone: a decoder-only family (top-level
    /// `num_hidden_layers`, no `text_config` and no `vision_config`). Families with more structure
    /// bring their layout from their model crate ([`crate::DiskPruneOptions::layout`];
    /// `interlace_prune::registry` picks it from `config.json`).
    pub fn detect_layout(&self) -> Result<Box<dyn CheckpointLayout>, SurgeryError> {
        let model_type = self.json.get("model_type").and_then(Json::as_str).unwrap_or("");
        let decoder_only = self.json.get("text_config").is_none() && self.json.get("vision_config").is_none() && self.json.get("num_hidden_layers").is_some();
        if decoder_only {
            return Ok(Box::new(DecoderOnlyLayout));
        }
        Err(SurgeryError::UnknownLayout { path: self.path.clone(), model_type: model_type.to_string() })
    }

    /// Number of decoder layers: every present count field must agree.
    pub fn text_layers(&self, layout: &dyn CheckpointLayout) -> Result<usize, SurgeryError> {
        let mut found: Option<(&str, usize)> = None;
        for &field in layout.layer_count_fields() {
            let Some(value) = self.json.pointer(field) else { continue };
            let count = self.count(field, value)?;
            match found {
                Some((first, n)) if n != count => return Err(self.invalid(format!("{first} = {n} but {field} = {count}"))),
                _ => found = Some((field, count)),
            }
        }
        let (field, n) = found.ok_or_else(|| self.invalid(format!("none of {:?} is present", layout.layer_count_fields())))?;
        self.layer_count(field, n)
    }

    /// Refuses a layer or block count no real model has, before it sizes a list or a loop.
    pub fn layer_count(&self, field: &str, n: usize) -> Result<usize, SurgeryError> {
        if n > interlace_core::MAX_LAYERS {
            return Err(self.invalid(format!("{field} = {n}; at most {} layers are accepted", interlace_core::MAX_LAYERS)));
        }
        Ok(n)
    }

    /// An unsigned integer field (`what` names it in errors).
    pub fn usize_field(&self, field: &str) -> Result<usize, SurgeryError> {
        let value = self.json.pointer(field).ok_or_else(|| self.invalid(format!("{field} is missing")))?;
        self.count(field, value)
    }

    /// A list of unsigned integers, or `None` if the field is absent.
    pub fn usize_list(&self, field: &str) -> Result<Option<Vec<usize>>, SurgeryError> {
        let Some(value) = self.json.pointer(field) else { return Ok(None) };
        let Json::Array(items) = value else { return Err(self.invalid(format!("{field} is not a list"))) };
        items.iter().map(|v| self.count(field, v)).collect::<Result<_, _>>().map(Some)
    }

    /// The config after surgery: counts updated, per-layer lists filtered, taps remapped;
    /// every other field (and every key's position) unchanged.
    pub fn pruned(&self, layout: &dyn CheckpointLayout, renumbering: &Renumbering) -> Result<Json, SurgeryError> {
        let mut json = self.json.clone();
        let kept_layers = renumbering.text.complement();
        for &field in layout.layer_count_fields() {
            if let Some(value) = json.pointer_mut(field) {
                *value = Json::from_u64(kept_layers.len() as u64);
            }
        }
        for &field in layout.per_layer_list_fields() {
            if let Some(value) = json.pointer_mut(field) {
                *value = keep_entries(value, &kept_layers, renumbering.text.num_layers()).map_err(|reason| self.invalid(format!("{field}: {reason}")))?;
            }
        }
        for &field in layout.leading_layer_count_fields() {
            if json.pointer(field).is_some() {
                let old = self.usize_field(field)?;
                if let Some(value) = json.pointer_mut(field) {
                    *value = Json::from_u64(kept_layers.iter().filter(|&&layer| layer < old).count() as u64);
                }
            }
        }
        if let Some(fields) = layout.periodic_kinds() {
            self.rewrite_periodic_kinds(&mut json, fields, &kept_layers, renumbering.text.num_layers())?;
        }
        if let Some(vision) = &renumbering.vision {
            let depth = vision.blocks.num_layers() - vision.blocks.len();
            let depth_field = json.pointer_mut(vision.layout.depth_field).ok_or_else(|| self.invalid(format!("{} is missing", vision.layout.depth_field)))?;
            *depth_field = Json::from_u64(depth as u64);
            if let Some(taps) = vision.layout.taps {
                if let Some(value) = json.pointer_mut(taps.indexes_field) {
                    *value = Json::Array(vision.taps_after().into_iter().map(|b| Json::from_u64(b as u64)).collect());
                }
            }
            let renumbered = vision.blocks.renumbering();
            for &field in vision.layout.block_index_lists {
                let Some(blocks) = self.usize_list(field)? else { continue };
                if let Some(&bad) = blocks.iter().find(|&&b| b >= renumbered.len()) {
                    return Err(self.invalid(format!("{field} lists block {bad} of {}", renumbered.len())));
                }
                let kept = blocks.iter().filter_map(|&b| renumbered[b]).map(|b| Json::from_u64(b as u64)).collect();
                if let Some(value) = json.pointer_mut(field) {
                    *value = Json::Array(kept);
                }
            }
        }
        Ok(json)
    }

    /// Rewrites a sparse-layer rule so each surviving layer keeps its kind; a config without the
    /// rule's fields is left alone when no layer's kind would change (step 1, no exceptions).
    fn rewrite_periodic_kinds(&self, json: &mut Json, fields: PeriodicKindsLayout, kept: &[usize], num_layers: usize) -> Result<(), SurgeryError> {
        let step = if json.pointer(fields.step_field).is_some() { self.usize_field(fields.step_field)? } else { 1 };
        if step == 0 {
            return Err(self.invalid(format!("{} is 0", fields.step_field)));
        }
        let exceptions = self.usize_list(fields.exceptions_field)?.unwrap_or_default();
        if let Some(&layer) = exceptions.iter().find(|&&l| l >= num_layers) {
            return Err(self.invalid(format!("{} lists layer {layer}, but the model has {num_layers} layers", fields.exceptions_field)));
        }
        let after = PeriodicLayerKinds { step, exceptions }.keeping(kept);
        if let Some(value) = json.pointer_mut(fields.step_field) {
            *value = Json::from_u64(after.step as u64);
        }
        let list = Json::Array(after.exceptions.iter().map(|&l| Json::from_u64(l as u64)).collect());
        match json.pointer_mut(fields.exceptions_field) {
            Some(value) => *value = list,
            None if after.exceptions.is_empty() => {}
            None => {
                // The pruned model needs the list the source config left to its default.
                let (parent, key) = fields.exceptions_field.rsplit_once('/').unwrap_or(("", fields.exceptions_field));
                let owner = if parent.is_empty() { Some(&mut *json) } else { json.pointer_mut(parent) };
                owner.ok_or_else(|| self.invalid(format!("{parent} is missing")))?.set(key, list);
            }
        }
        Ok(())
    }

    fn count(&self, field: &str, value: &Json) -> Result<usize, SurgeryError> {
        value.as_u64().and_then(|n| usize::try_from(n).ok()).ok_or_else(|| self.invalid(format!("{field} is not a non-negative integer")))
    }

    fn invalid(&self, reason: String) -> SurgeryError {
        SurgeryError::Config { path: self.path.clone(), reason }
    }
}

/// Keeps the entries `kept` of a per-layer list that must have `num_layers` entries.
fn keep_entries(value: &Json, kept: &[usize], num_layers: usize) -> Result<Json, String> {
    match value {
        Json::Array(items) if items.len() == num_layers => Ok(Json::Array(kept.iter().map(|&i| items[i].clone()).collect())),
        Json::Array(items) => Err(format!("has {} entries but the model has {num_layers} layers", items.len())),
        _ => Err("is not a list".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use interlace_qwen3vl::layout::Qwen3VlMoeLayout;

    #[test]
    fn a_huge_layer_count_is_refused_before_it_sizes_anything() {
        let config = ModelConfig { path: "config.json".into(), json: Json::parse(r#"{"num_hidden_layers": 1000000000000000000}"#).unwrap() };
        let err = config.text_layers(&DecoderOnlyLayout).unwrap_err().to_string();
        assert!(err.contains("at most 65536 layers"), "{err}");
        let fine = ModelConfig { path: "config.json".into(), json: Json::parse(r#"{"num_hidden_layers": 36}"#).unwrap() };
        assert_eq!(fine.text_layers(&DecoderOnlyLayout).unwrap(), 36);
    }

    fn moe_config(text: &str) -> ModelConfig {
        let json = format!(r#"{{"model_type": "qwen3_vl_moe", "text_config": {{"num_hidden_layers": 6{text}}}, "vision_config": {{"depth": 2}}}}"#);
        ModelConfig { path: "config.json".into(), json: Json::parse(&json).unwrap() }
    }

    fn pruned_text(config: &ModelConfig, drop: &[usize]) -> String {
        let layout = Qwen3VlMoeLayout;
        let renumbering = Renumbering { text: interlace_core::LayerSet::new(drop.iter().copied(), 6).unwrap(), vision: None };
        let text = config.pruned(&layout, &renumbering).unwrap().pointer("/text_config").unwrap().to_pretty_string();
        text.split_whitespace().collect::<Vec<_>>().join(" ").replace("[ ", "[").replace(" ]", "]")
    }

    #[test]
    fn moe_sparse_layer_rules_are_rewritten_so_every_survivor_keeps_its_kind() {
        // step 1: the dense layer 3 becomes 1 after dropping 1 and 2; 0 is dropped from the list
        let step1 = moe_config(r#", "decoder_sparse_step": 1, "mlp_only_layers": [0, 3]"#);
        assert!(pruned_text(&step1, &[0, 1, 2]).contains(r#""mlp_only_layers": [0]"#), "{}", pruned_text(&step1, &[0, 1, 2]));
        // step 2 (sparse 1, 3, 5; 3 excepted): dropping 0 would make transformers rebuild layer 1 as
        // sparse-at-index-0; the rewrite switches to step 1 with explicit dense layers
        let step2 = moe_config(r#", "decoder_sparse_step": 2, "mlp_only_layers": [3]"#);
        let text = pruned_text(&step2, &[0]);
        assert!(text.contains(r#""decoder_sparse_step": 1"#) && text.contains(r#""mlp_only_layers": [1, 2, 3]"#), "{text}");
        // a config that leaves the list to its default gets one when the survivors need it
        let implicit = moe_config(r#", "decoder_sparse_step": 2"#);
        assert!(pruned_text(&implicit, &[0]).contains(r#""mlp_only_layers": [1, 3]"#), "{}", pruned_text(&implicit, &[0]));
        let bad = moe_config(r#", "mlp_only_layers": [7]"#);
        let renumbering = Renumbering { text: interlace_core::LayerSet::new([0], 6).unwrap(), vision: None };
        assert!(bad.pruned(&Qwen3VlMoeLayout, &renumbering).unwrap_err().to_string().contains("lists layer 7"));
    }
}
