//! Which files of a repository interlace needs: configuration and tokenizer files, and the
//! safetensors weights (the index's shards only). Model-agnostic: names, not model families.

use std::collections::BTreeSet;

use serde_json::Value;

/// Whether `name` is a top-level file a checkpoint is read with: JSON configuration
/// (`config.json`, `generation_config.json`, the tokenizer, processor and index files),
/// a chat template (`.jinja`) or a tokenizer vocabulary (`tokenizer.model`, `vocab.txt`,
/// `merges.txt`).
pub fn is_config_file(name: &str) -> bool {
    !name.contains('/') && (name.ends_with(".json") || name.ends_with(".jinja") || ["tokenizer.model", "vocab.txt", "merges.txt"].contains(&name))
}

/// The weight files to fetch among the repository's `names`: the shards the safetensors
/// index names when there is one (`index`, the parsed `model.safetensors.index.json`),
/// otherwise every top-level `.safetensors` file. Sorted, without duplicates.
pub fn weight_files<'a>(names: impl IntoIterator<Item = &'a str>, index: Option<&Value>) -> Vec<String> {
    if let Some(map) = index.and_then(|i| i["weight_map"].as_object()) {
        let shards: BTreeSet<String> = map.values().filter_map(Value::as_str).map(str::to_string).collect();
        return shards.into_iter().collect();
    }
    let files: BTreeSet<String> = names.into_iter().filter(|n| !n.contains('/') && n.ends_with(".safetensors")).map(str::to_string).collect();
    files.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_files() {
        for name in ["config.json", "tokenizer.json", "chat_template.jinja", "preprocessor_config.json", "model.safetensors.index.json", "merges.txt"] {
            assert!(is_config_file(name), "{name}");
        }
        for name in ["README.md", ".gitattributes", "model.safetensors", "pytorch_model.bin", "onnx/config.json", "images/a.png"] {
            assert!(!is_config_file(name), "{name}");
        }
    }

    #[test]
    fn the_index_decides_the_shards() {
        let names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "consolidated.safetensors", "sub/x.safetensors"];
        let index = serde_json::json!({"weight_map": {"a": "model-00002-of-00002.safetensors", "b": "model-00001-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}});
        assert_eq!(weight_files(names, Some(&index)), ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]);
        assert_eq!(weight_files(names, None), ["consolidated.safetensors", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]);
        assert!(weight_files(["pytorch_model.bin"], None).is_empty());
    }
}
