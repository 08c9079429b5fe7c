//! On-disk surgery: byte identity of kept tensors, renaming, config/index/provenance, other
//! files, shard sizes, vision-block and deepstack handling, decoder-only layout.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use interlace_core::Plan;
use interlace_surgery::{prune_checkpoint, DiskPruneOptions, DropSpec, NoProgress};
use sha2::{Digest, Sha256};

fn prune(source: &Path, out: &Path, drop: &[usize], options: DiskPruneOptions) -> interlace_surgery::DiskPruneReport {
    prune_checkpoint(source, out, &DropSpec::Layers(drop.to_vec()), &common::with_layout(options, source), &mut NoProgress).expect("prune succeeds")
}

/// The source name a kept output tensor must come from, for text layers only.
fn source_name(name: &str, prefix: &str, kept: &[usize]) -> String {
    match interlace_core::indexed_tensor(name, prefix) {
        Some((i, rest)) => format!("{prefix}{}.{rest}", kept[i]),
        None => name.to_string(),
    }
}

#[test]
fn kept_tensors_are_byte_identical_and_renumbered() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("pruned");
    let source = common::model("tiny-a");
    let report = prune(&source, &out, &[1, 3], DiskPruneOptions::default());
    assert_eq!((report.layers_before, report.layers_after), (6, 4));

    let before = common::read_tensors(&source);
    let after = common::read_tensors(&out);
    let prefix = "model.language_model.layers.";
    let kept = [0, 2, 4, 5];
    let dropped = before.keys().filter(|n| matches!(interlace_core::indexed_tensor(n, prefix), Some((1 | 3, _)))).count();
    assert!(dropped > 0);
    assert_eq!(after.len(), before.len() - dropped);
    for (name, ((dtype, shape, bytes), _)) in &after {
        let from = source_name(name, prefix, &kept);
        let ((src_dtype, src_shape, src_bytes), _) = &before[&from];
        assert_eq!((dtype, shape), (src_dtype, src_shape), "{name} (from {from})");
        assert!(bytes == src_bytes, "{name}: bytes differ from {from}");
    }
    let params = |m: &BTreeMap<String, (common::Stored, String)>| m.values().map(|((_, s, _), _)| s.iter().product::<usize>()).sum::<usize>();
    assert_eq!((report.params_before, report.params_after), (params(&before), params(&after)));
}

#[test]
fn config_index_provenance_and_other_files() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("pruned");
    let source = common::model("tiny-a");
    let report = prune(&source, &out, &[1, 3], DiskPruneOptions::default());

    // config: only the layer count changes, key order kept
    let src_text = std::fs::read_to_string(source.join("config.json")).unwrap();
    let out_text = std::fs::read_to_string(out.join("config.json")).unwrap();
    let mut expected: serde_json::Value = serde_json::from_str(&src_text).unwrap();
    expected["text_config"]["num_hidden_layers"] = 4.into();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out_text).unwrap(), expected);
    let keys = |t: &str| t.lines().filter_map(|l| l.trim().split_once("\":").map(|(k, _)| k.to_string())).collect::<Vec<_>>();
    assert_eq!(keys(&src_text), keys(&out_text), "key order");

    // index: weight_map matches the shards, total_size is the sum of tensor bytes
    let index = common::json(&out.join("model.safetensors.index.json"));
    let tensors = common::read_tensors(&out);
    let map = index["weight_map"].as_object().unwrap();
    assert_eq!(map.len(), tensors.len());
    for (name, (_, file)) in &tensors {
        assert_eq!(map[name].as_str().unwrap(), file, "{name}");
    }
    let total: usize = tensors.values().map(|((_, _, b), _)| b.len()).sum();
    assert_eq!(index["metadata"]["total_size"].as_u64().unwrap() as usize, total);
    assert_eq!(index["metadata"]["total_parameters"].as_u64().unwrap() as usize, report.params_after);

    // shards never exceed the largest source shard
    let largest =
        |dir: &Path| common::entries(dir).iter().filter(|f| f.ends_with(".safetensors")).map(|f| std::fs::metadata(dir.join(f)).unwrap().len()).max().unwrap();
    assert!(largest(&out) <= largest(&source));

    // every other file is copied verbatim
    for file in [
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "generation_config.json",
        "preprocessor_config.json",
        "video_preprocessor_config.json",
    ] {
        assert_eq!(std::fs::read(source.join(file)).unwrap(), std::fs::read(out.join(file)).unwrap(), "{file}");
    }

    // provenance: plan and the hash of every shard
    let provenance = common::json(&out.join("interlace.json"));
    assert_eq!(provenance["plan"]["drop"], serde_json::json!([1, 3]));
    assert_eq!(provenance["plan"]["freeze"], serde_json::json!([0, 2, 4, 5]));
    assert_eq!(provenance["version"], env!("CARGO_PKG_VERSION"));
    let shards = provenance["shards"].as_array().unwrap();
    assert_eq!(shards.len(), common::entries(&out).iter().filter(|f| f.ends_with(".safetensors")).count());
    for shard in shards {
        let bytes = std::fs::read(out.join(shard["file"].as_str().unwrap())).unwrap();
        let hex: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(shard["sha256"].as_str().unwrap(), hex);
        assert_eq!(shard["bytes"].as_u64().unwrap() as usize, bytes.len());
        // header: 8-byte aligned data, format pt
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        assert_eq!(header["__metadata__"]["format"], "pt");
    }
}

#[test]
fn plan_file_is_recorded() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("pruned");
    let plan = Plan::new(5, "interlace", 0.4, vec![0, 4], vec![1], vec![2, 3]).unwrap();
    prune_checkpoint(
        &common::model("tiny-b"),
        &out,
        &DropSpec::Plan(plan),
        &common::with_layout(DiskPruneOptions::default(), &common::model("tiny-b")),
        &mut NoProgress,
    )
    .unwrap();
    let provenance = common::json(&out.join("interlace.json"));
    assert_eq!(provenance["plan"]["strategy"], "interlace");
    assert_eq!(provenance["finetune_after_pruning"], serde_json::json!([0]));
    assert_eq!(common::json(&out.join("config.json"))["text_config"]["num_hidden_layers"], 3);
}

#[test]
fn single_file_source_gives_single_file_output() {
    let scratch = tempfile::tempdir().unwrap();
    let source = scratch.path().join("single");
    std::fs::create_dir(&source).unwrap();
    for file in ["config.json", "tokenizer.json"] {
        std::fs::copy(common::model("tiny-b").join(file), source.join(file)).unwrap();
    }
    let tensors = common::read_tensors(&common::model("tiny-b"));
    let views: Vec<(String, safetensors::tensor::TensorView)> =
        tensors.iter().map(|(n, ((d, s, b), _))| (n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize_to_file(views, None, &source.join("model.safetensors")).unwrap();

    let out = scratch.path().join("pruned");
    prune(&source, &out, &[2], DiskPruneOptions::default());
    let files = common::entries(&out);
    assert!(files.contains(&"model.safetensors".to_string()), "{files:?}");
    assert!(!files.iter().any(|f| f.contains("index")), "{files:?}");
    assert!(files.contains(&"tokenizer.json".to_string()));
    assert_eq!(common::read_tensors(&out).len(), tensors.len() - tensors.keys().filter(|n| n.starts_with("model.language_model.layers.2.")).count());
}

#[test]
fn vision_blocks_and_deepstack_taps_are_remapped() {
    let scratch = tempfile::tempdir().unwrap();
    let source = common::model("tiny-a");
    let before = common::read_tensors(&source);

    // block 1 feeds no tap (taps [0, 2]): blocks renumber, taps follow
    let out = scratch.path().join("vision-1");
    let report = prune(&source, &out, &[1, 3], DiskPruneOptions { drop_vision: vec![1], ..Default::default() });
    let config = common::json(&out.join("config.json"));
    assert_eq!(config["vision_config"]["depth"], 3);
    assert_eq!(config["vision_config"]["deepstack_visual_indexes"], serde_json::json!([0, 1]));
    assert_eq!(report.vision.unwrap().taps_after, vec![0, 1]);
    let after = common::read_tensors(&out);
    assert!(after["model.visual.blocks.1.attn.qkv.weight"].0 == before["model.visual.blocks.2.attn.qkv.weight"].0);
    assert!(!after.contains_key("model.visual.blocks.3.attn.qkv.weight"));

    // block 2 feeds tap 1: refused unless allowed
    let refused = prune_checkpoint(
        &source,
        &scratch.path().join("refused"),
        &DropSpec::Layers(vec![2]),
        &common::with_layout(DiskPruneOptions { drop_vision: vec![2], ..Default::default() }, &source),
        &mut NoProgress,
    );
    let message = refused.unwrap_err().to_string();
    assert!(message.contains("vision block 2") && message.contains("--allow-deepstack"), "{message}");
    assert!(!scratch.path().join("refused").exists());

    let out = scratch.path().join("deepstack");
    prune(&source, &out, &[2], DiskPruneOptions { drop_vision: vec![2], allow_deepstack: true, ..Default::default() });
    let config = common::json(&out.join("config.json"));
    assert_eq!(config["vision_config"]["deepstack_visual_indexes"], serde_json::json!([0]));
    let after = common::read_tensors(&out);
    assert!(after["model.visual.deepstack_merger_list.0.linear_fc1.weight"].0 == before["model.visual.deepstack_merger_list.0.linear_fc1.weight"].0);
    assert!(!after.keys().any(|n| n.starts_with("model.visual.deepstack_merger_list.1.")));
    assert!(after["model.visual.blocks.2.norm1.weight"].0 == before["model.visual.blocks.3.norm1.weight"].0);
}

#[test]
fn decoder_only_layout_renames_model_layers_and_filters_layer_types() {
    let scratch = tempfile::tempdir().unwrap();
    let source = scratch.path().join("llama");
    std::fs::create_dir(&source).unwrap();
    let config =
        r#"{"model_type": "qwen3", "num_hidden_layers": 3, "layer_types": ["full_attention", "sliding_attention", "full_attention"], "hidden_size": 2}"#;
    std::fs::write(source.join("config.json"), config).unwrap();
    let data: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 4]).collect();
    let names = ["model.embed_tokens.weight", "model.layers.0.mlp.w", "model.layers.1.mlp.w", "model.layers.2.mlp.w"];
    let views: Vec<(String, safetensors::tensor::TensorView)> =
        names.iter().zip(&data).map(|(n, d)| (n.to_string(), safetensors::tensor::TensorView::new(safetensors::Dtype::BF16, vec![2], d).unwrap())).collect();
    safetensors::serialize_to_file(views, None, &source.join("model.safetensors")).unwrap();

    let out = scratch.path().join("pruned");
    prune(&source, &out, &[1], DiskPruneOptions::default());
    let config = common::json(&out.join("config.json"));
    assert_eq!(config["num_hidden_layers"], 2);
    assert_eq!(config["layer_types"], serde_json::json!(["full_attention", "full_attention"]));
    let after = common::read_tensors(&out);
    assert_eq!(after["model.layers.1.mlp.w"].0 .2, vec![3u8; 4]);
    assert_eq!(after.len(), 3);
    assert_eq!(common::json(&out.join("interlace.json"))["layout"], "decoder_only");
}
