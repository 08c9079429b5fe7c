//! Every bad checkpoint gives a typed error naming the file and tensor, never a panic; the other
//! storage layouts transformers reads are read too.

mod common;

use std::path::{Path, PathBuf};

use burn::backend::Flex;
use burn::tensor::DType;
use interlace_qwen3vl::checkpoint::INDEX_FILE;
use interlace_qwen3vl::{Qwen3VlError, Qwen3VlForConditionalGeneration};
use safetensors::tensor::TensorView;
use safetensors::SafeTensors;

type B = Flex<f32>;

/// A writable copy of a fixture model.
fn copy_model(name: &str) -> (tempfile::TempDir, PathBuf) {
    let source = common::fixtures().join("models").join(name);
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    (temp, dir)
}

fn load(dir: &Path) -> Result<Qwen3VlForConditionalGeneration<B>, Qwen3VlError> {
    Qwen3VlForConditionalGeneration::<B>::from_pretrained(dir, &Default::default(), DType::F32)
}

/// The shard holding `tensor`, per the index.
fn shard_of(dir: &Path, tensor: &str) -> PathBuf {
    let index: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join(INDEX_FILE)).unwrap()).unwrap();
    dir.join(index["weight_map"][tensor].as_str().unwrap())
}

/// Rewrites the shard holding `tensor` through `edit`, which gets (name, dtype, shape, bytes).
fn rewrite_shard(dir: &Path, tensor: &str, edit: impl Fn(&mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>)) -> PathBuf {
    let path = shard_of(dir, tensor);
    let bytes = std::fs::read(&path).unwrap();
    let parsed = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<_> = parsed.iter().map(|(n, v)| (n.to_string(), v.dtype(), v.shape().to_vec(), v.data().to_vec())).collect();
    edit(&mut tensors);
    let views: Vec<(String, TensorView)> = tensors.iter().map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    let meta = Some(std::collections::HashMap::from([("format".to_string(), "pt".to_string())]));
    safetensors::serialize_to_file(views, meta, &path).unwrap();
    path
}

const TENSOR: &str = "model.language_model.layers.1.mlp.up_proj.weight";

#[test]
fn fixture_models_load() {
    for name in ["tiny-a", "tiny-b", "tiny-moe"] {
        load(&common::fixtures().join("models").join(name)).unwrap();
    }
}

#[test]
fn missing_tensor_is_named() {
    let (_tmp, dir) = copy_model("tiny-a");
    // Keep the index consistent so the loader, not the index check, reports it.
    rewrite_shard(&dir, TENSOR, |t| t.retain(|(n, ..)| n != TENSOR));
    let index_path = dir.join(INDEX_FILE);
    let mut index: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&index_path).unwrap()).unwrap();
    index["weight_map"].as_object_mut().unwrap().remove(TENSOR);
    std::fs::write(&index_path, index.to_string()).unwrap();
    match load(&dir).unwrap_err() {
        Qwen3VlError::MissingTensor { name, .. } => assert_eq!(name, TENSOR),
        other => panic!("expected MissingTensor, got {other}"),
    }
}

#[test]
fn wrong_shape_names_tensor_file_and_both_shapes() {
    let (_tmp, dir) = copy_model("tiny-a");
    let shard = rewrite_shard(&dir, TENSOR, |t| {
        let entry = t.iter_mut().find(|(n, ..)| n == TENSOR).unwrap();
        let rows = entry.2[0];
        entry.2 = vec![rows / 2, entry.2[1] * 2];
    });
    let error = load(&dir).unwrap_err();
    let message = error.to_string();
    match error {
        Qwen3VlError::ShapeMismatch { name, path, expected, found } => {
            assert_eq!(name, TENSOR);
            assert_eq!(path, shard);
            assert_ne!(expected, found);
            assert!(message.contains(TENSOR) && message.contains(&format!("{found:?}")) && message.contains(&format!("{expected:?}")));
        }
        other => panic!("expected ShapeMismatch, got {other}"),
    }
}

#[test]
fn unexpected_tensor_is_reported() {
    let (_tmp, dir) = copy_model("tiny-a");
    let extra = "model.language_model.layers.99.mlp.up_proj.weight";
    let shard = rewrite_shard(&dir, TENSOR, |t| t.push((extra.to_string(), safetensors::Dtype::BF16, vec![2], vec![0; 4])));
    let index_path = dir.join(INDEX_FILE);
    let mut index: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&index_path).unwrap()).unwrap();
    let file = shard.file_name().unwrap().to_str().unwrap().to_string();
    index["weight_map"].as_object_mut().unwrap().insert(extra.to_string(), file.into());
    std::fs::write(&index_path, index.to_string()).unwrap();
    match load(&dir).unwrap_err() {
        Qwen3VlError::UnexpectedTensors { names, .. } => assert_eq!(names, vec![extra.to_string()]),
        other => panic!("expected UnexpectedTensors, got {other}"),
    }
}

#[test]
fn truncated_shard_is_corrupt() {
    let (_tmp, dir) = copy_model("tiny-b");
    let shard = shard_of(&dir, TENSOR);
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() - 100]).unwrap();
    match load(&dir).unwrap_err() {
        Qwen3VlError::CorruptWeights { path, .. } => assert_eq!(path, shard),
        other => panic!("expected CorruptWeights, got {other}"),
    }
    std::fs::write(&shard, b"not a safetensors file").unwrap();
    assert!(matches!(load(&dir).unwrap_err(), Qwen3VlError::CorruptWeights { .. }));
}

#[test]
fn missing_shard_is_named() {
    let (_tmp, dir) = copy_model("tiny-b");
    let shard = shard_of(&dir, TENSOR);
    std::fs::remove_file(&shard).unwrap();
    match load(&dir).unwrap_err() {
        Qwen3VlError::MissingShard { shard: missing, .. } => assert_eq!(missing, shard),
        other => panic!("expected MissingShard, got {other}"),
    }
}

#[test]
fn index_disagreeing_with_shards_is_refused() {
    let (_tmp, dir) = copy_model("tiny-b");
    let index_path = dir.join(INDEX_FILE);
    let mut index: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&index_path).unwrap()).unwrap();
    index["weight_map"]
        .as_object_mut()
        .unwrap()
        .insert("model.language_model.ghost.weight".into(), shard_of(&dir, TENSOR).file_name().unwrap().to_str().unwrap().into());
    std::fs::write(&index_path, index.to_string()).unwrap();
    assert!(matches!(load(&dir).unwrap_err(), Qwen3VlError::InvalidIndex { .. }));
    std::fs::write(&index_path, "{ not json").unwrap();
    assert!(matches!(load(&dir).unwrap_err(), Qwen3VlError::InvalidIndex { .. }));
}

#[test]
fn invalid_or_missing_config_is_named() {
    let (_tmp, dir) = copy_model("tiny-a");
    let config_path = dir.join("config.json");
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["text_config"]["num_attention_heads"] = serde_json::json!(-1);
    std::fs::write(&config_path, config.to_string()).unwrap();
    match load(&dir).unwrap_err() {
        Qwen3VlError::Config { field, path, .. } => {
            assert_eq!(field, "text_config.num_attention_heads");
            assert_eq!(path, config_path);
        }
        other => panic!("expected Config, got {other}"),
    }
    std::fs::remove_file(&config_path).unwrap();
    assert!(matches!(load(&dir).unwrap_err(), Qwen3VlError::Io { path, .. } if path == config_path));
}

#[test]
fn untied_model_without_lm_head_fails_loudly() {
    let (_tmp, dir) = copy_model("tiny-b");
    let head = "lm_head.weight";
    rewrite_shard(&dir, head, |t| t.retain(|(n, ..)| n != head));
    let index_path = dir.join(INDEX_FILE);
    let mut index: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&index_path).unwrap()).unwrap();
    index["weight_map"].as_object_mut().unwrap().remove(head);
    std::fs::write(&index_path, index.to_string()).unwrap();
    match load(&dir).unwrap_err() {
        Qwen3VlError::MissingTensor { name, .. } => assert_eq!(name, head),
        other => panic!("expected MissingTensor, got {other}"),
    }
}

#[test]
fn no_weights_at_all() {
    let (_tmp, dir) = copy_model("tiny-a");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "safetensors") || path.ends_with(INDEX_FILE) {
            std::fs::remove_file(path).unwrap();
        }
    }
    assert!(matches!(load(&dir).unwrap_err(), Qwen3VlError::NoWeights { .. }));
}

/// `[E, R, C]` bf16 bytes transposed to `[E, C, R]`.
fn transpose_experts(shape: &[usize], bytes: &[u8]) -> Vec<u8> {
    let (e, r, c) = (shape[0], shape[1], shape[2]);
    let mut out = vec![0u8; bytes.len()];
    for x in 0..e {
        for i in 0..r {
            for j in 0..c {
                let (from, to) = (((x * r + i) * c + j) * 2, ((x * c + j) * r + i) * 2);
                out[to..to + 2].copy_from_slice(&bytes[from..from + 2]);
            }
        }
    }
    out
}

#[test]
fn moe_experts_stored_in_the_hub_layout_compute_the_same_logits() {
    // The Qwen3-VL-MoE hub files store `gate_up_proj [E, H, 2I]` and `down_proj [E, I, H]`;
    // transformers 5 transposes them on load (conversion_mapping.py, `Transpose(1, 2)`).
    let (_tmp, dir) = copy_model("tiny-moe");
    let names: Vec<String> = {
        let index: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join(INDEX_FILE)).unwrap()).unwrap();
        index["weight_map"].as_object().unwrap().keys().filter(|n| n.contains(".mlp.experts.")).cloned().collect()
    };
    assert_eq!(names.len(), 8, "4 sparse layers, 2 fused tensors each");
    for name in &names {
        rewrite_shard(&dir, name, |tensors| {
            let entry = tensors.iter_mut().find(|(n, ..)| n == name).unwrap();
            entry.3 = transpose_experts(&entry.2, &entry.3);
            entry.2 = vec![entry.2[0], entry.2[2], entry.2[1]];
        });
    }
    let model = load(&dir).unwrap();
    let layout = model.model.language_model.layers[0].mlp.experts.as_ref().unwrap().layout;
    assert_eq!(layout, interlace_qwen3vl::moe::ExpertLayout::InOut);
    let golden = common::Golden::load("tiny-moe", "text_only");
    let input = interlace_qwen3vl::Qwen3VlInput {
        input_ids: golden.i64("input_ids").into_iter().map(|t| t as u32).collect(),
        pixel_values: Vec::new(),
        image_grid_thw: Vec::new(),
    };
    let logits = model.forward(&input).unwrap().into_data().into_vec::<f32>().unwrap();
    let error = common::relative_error(&logits, &golden.f32("logits"));
    assert!(error < 1e-5, "relative error {error:.3e} against transformers");
}
