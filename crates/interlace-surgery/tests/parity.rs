//! Pruned checkpoints against transformers: logits of our on-disk output, loaded by our model,
//! match transformers' in-place layer removal (`fixtures/golden/surgery`, written by
//! `fixtures/make_surgery_fixtures.py`), and equal our in-memory pruning exactly.

mod common;

use burn::backend::NdArray;
use burn::tensor::DType;
use interlace_core::{DecoderStack, LayerSet};
use interlace_qwen3vl::{Qwen3VlForConditionalGeneration, Qwen3VlInput};
use interlace_surgery::{prune_checkpoint, prune_stack, DiskPruneOptions, DropSpec, NoProgress};
use safetensors::SafeTensors;

type B = NdArray<f32>;

/// Relative error allowed on the pruned model's logits; 6.64e-7 measured (ndarray, f32).
const TOLERANCE: f64 = 1e-5;

/// One surgery golden: `fixtures/golden/surgery/<name>/<input>.safetensors`.
struct Case {
    name: &'static str,
    model: &'static str,
    drop: &'static [usize],
    drop_vision: &'static [usize],
    allow_deepstack: bool,
    inputs: &'static [&'static str],
}

const CASES: [Case; 8] = [
    Case { name: "tiny-a-drop-1-3", model: "tiny-a", drop: &[1, 3], drop_vision: &[], allow_deepstack: false, inputs: &["one_image", "text_only"] },
    Case { name: "tiny-b-drop-0-4", model: "tiny-b", drop: &[0, 4], drop_vision: &[], allow_deepstack: false, inputs: &["one_image", "text_only"] },
    Case { name: "tiny-a-drop-1-3-vision-1", model: "tiny-a", drop: &[1, 3], drop_vision: &[1], allow_deepstack: false, inputs: &["one_image"] },
    Case { name: "tiny-a-drop-2-vision-2-deepstack", model: "tiny-a", drop: &[2], drop_vision: &[2], allow_deepstack: true, inputs: &["one_image"] },
    // Qwen3-VL-MoE (fixtures/make_moe_fixtures.py): the dense layer 3 becomes layer 1, the experts
    // of layers 0 and 4 move with them
    Case { name: "tiny-moe-drop-1-2", model: "tiny-moe", drop: &[1, 2], drop_vision: &[], allow_deepstack: false, inputs: &["one_image", "text_only"] },
    // Qwen2-VL and Qwen2.5-VL (fixtures/make_qwen2vl_fixtures.py), tensors under the hub's
    // `model.layers.*` / `visual.*` names; a nested config with `layer_types`, and the hub's flat one
    Case { name: "tiny-qwen2vl-drop-1", model: "tiny-qwen2vl", drop: &[1], drop_vision: &[], allow_deepstack: false, inputs: &["one_image", "text_only"] },
    Case {
        name: "tiny-qwen25vl-drop-1-3",
        model: "tiny-qwen25vl",
        drop: &[1, 3],
        drop_vision: &[],
        allow_deepstack: false,
        inputs: &["one_image", "text_only"],
    },
    // the full-attention vision block 1 goes: `fullatt_block_indexes` [1, 3] becomes [2]
    Case {
        name: "tiny-qwen25vl-drop-1-vision-1",
        model: "tiny-qwen25vl",
        drop: &[1],
        drop_vision: &[1],
        allow_deepstack: false,
        inputs: &["one_image", "two_images"],
    },
];

/// The text fields of the pruned `config.json` are the ones transformers' pruned model has
/// (`after` in the golden json: layer count, `layer_types`, `max_window_layers`).
fn assert_config_matches_golden(case: &str, out: &std::path::Path) {
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::fixtures().join("golden/surgery").join(case).join("one_image.json")).unwrap()).unwrap();
    let Some(after) = golden["after"].as_object() else { return };
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    let text = config.get("text_config").unwrap_or(&config);
    for field in ["num_hidden_layers", "layer_types", "max_window_layers"] {
        let Some(expected) = after.get(field).filter(|v| !v.is_string()) else { continue };
        assert_eq!(&text[field], expected, "{case}: {field} of the pruned config.json");
    }
    for (field, expected) in after.get("vision_config").and_then(|v| v.as_object()).into_iter().flatten() {
        assert_eq!(&config["vision_config"][field], expected, "{case}: vision_config.{field} of the pruned config.json");
    }
}

fn load(dir: &std::path::Path) -> Qwen3VlForConditionalGeneration<B> {
    Qwen3VlForConditionalGeneration::<B>::from_pretrained(dir, &Default::default(), DType::F32).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// The inputs of a model golden (`fixtures/golden/<model>/<case>.safetensors`).
fn input(model: &str, case: &str) -> Qwen3VlInput {
    let bytes = std::fs::read(common::fixtures().join("golden").join(model).join(format!("{case}.safetensors"))).unwrap();
    let golden = SafeTensors::deserialize(&bytes).unwrap();
    let i64s = |name: &str| golden.tensor(name).unwrap().data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect::<Vec<_>>();
    let pixel_values = match golden.tensor("pixel_values") {
        Ok(view) => view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
        Err(_) => Vec::new(),
    };
    let image_grid_thw = if pixel_values.is_empty() {
        Vec::new()
    } else {
        i64s("image_grid_thw").chunks_exact(3).map(|g| [g[0] as usize, g[1] as usize, g[2] as usize]).collect()
    };
    Qwen3VlInput { input_ids: i64s("input_ids").into_iter().map(|id| id as u32).collect(), pixel_values, image_grid_thw }
}

fn logits(model: &Qwen3VlForConditionalGeneration<B>, input: &Qwen3VlInput) -> Vec<f32> {
    model.forward(input).unwrap().into_data().into_vec::<f32>().unwrap()
}

#[test]
fn on_disk_pruning_matches_transformers_in_place_removal() {
    let scratch = tempfile::tempdir().unwrap();
    for Case { name: case, model, drop, drop_vision, allow_deepstack, inputs } in CASES {
        let out = scratch.path().join(case);
        let options = DiskPruneOptions { drop_vision: drop_vision.to_vec(), allow_deepstack, ..Default::default() };
        prune_checkpoint(&common::model(model), &out, &DropSpec::Layers(drop.to_vec()), &common::with_layout(options, &common::model(model)), &mut NoProgress)
            .unwrap();
        assert_config_matches_golden(case, &out);
        let pruned = load(&out);
        for input_case in inputs {
            let error = common::relative_error(&logits(&pruned, &input(model, input_case)), &common::golden_logits(case, input_case));
            println!("{case}/{input_case}: relative error {error:.3e}");
            assert!(error <= TOLERANCE, "{case}/{input_case}: relative error {error:.3e} > {TOLERANCE:e}");
        }
    }
}

#[test]
fn on_disk_pruning_equals_in_memory_pruning_exactly() {
    let scratch = tempfile::tempdir().unwrap();
    for Case { name: case, model, drop, drop_vision, inputs, .. } in CASES {
        if !drop_vision.is_empty() {
            continue; // DecoderStack removes text layers only
        }
        let out = scratch.path().join(case);
        let report = prune_checkpoint(
            &common::model(model),
            &out,
            &DropSpec::Layers(drop.to_vec()),
            &common::with_layout(DiskPruneOptions::default(), &common::model(model)),
            &mut NoProgress,
        )
        .unwrap();
        let on_disk = load(&out);
        let full = load(&common::model(model));
        let set = LayerSet::for_removal(drop.iter().copied(), full.num_layers()).unwrap();
        let (in_memory, memory_report) = prune_stack(full, &set).unwrap();
        assert_eq!(memory_report.after.layers, on_disk.num_layers());
        assert_eq!(memory_report.after.params, on_disk.param_count());
        assert_eq!(memory_report.before.layers - memory_report.after.layers, drop.len());
        assert_eq!((report.layers_before, report.layers_after), (memory_report.before.layers, memory_report.after.layers));
        assert_eq!(on_disk.config, in_memory.config, "{case}: the rewritten config.json describes the in-memory model");
        for input_case in inputs {
            let x = input(model, input_case);
            assert_eq!(logits(&on_disk, &x), logits(&in_memory, &x), "{case}/{input_case}: on-disk vs in-memory");
        }
    }
}

#[test]
fn in_memory_report_counts_layers_and_parameters() {
    let full = load(&common::model("tiny-b"));
    let before = full.param_count();
    let layer_params: usize = [0, 4].iter().map(|&i| full.layer_param_count(i).unwrap()).sum();
    let set = LayerSet::for_removal([0, 4], 5).unwrap();
    let (pruned, report) = prune_stack(full, &set).unwrap();
    assert_eq!((report.before.layers, report.after.layers), (5, 3));
    assert_eq!(report.before.params, before);
    assert_eq!(report.after.params, before - layer_params);
    assert_eq!(pruned.num_layers(), 3);
    assert_eq!(report.dropped, vec![0, 4]);

    // a set validated for another depth is refused
    let wrong = LayerSet::for_removal([0], 6).unwrap();
    assert!(prune_stack(pruned, &wrong).is_err());
}
