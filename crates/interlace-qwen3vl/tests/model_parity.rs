//! Qwen3-VL forward pass and generation against transformers goldens (ndarray, f32).
//!
//! The goldens were written by `fixtures/make_fixtures.py` from random tiny checkpoints; the
//! inputs (`input_ids`, `pixel_values`, `image_grid_thw`) are taken from the golden so this test
//! isolates the model from the processor.

mod common;

use burn::backend::NdArray;
use burn::prelude::Tensor;
use burn::tensor::DType;
use common::{relative_error, Golden};
use interlace_core::{CollectHiddenStates, ObservedForward, TapPoint};
use interlace_qwen3vl::{generate, GenerationConfig, Qwen3VlForConditionalGeneration, Qwen3VlInput};

type B = NdArray<f32>;

const MODELS: [&str; 2] = ["tiny-a", "tiny-b"];
const CASES: [&str; 5] = ["one_image", "two_images", "grayscale", "tie_image", "text_only"];
const TOLERANCE: f64 = 1e-4;

fn load(model: &str) -> Qwen3VlForConditionalGeneration<B> {
    let dir = common::fixtures().join("models").join(model);
    Qwen3VlForConditionalGeneration::<B>::from_pretrained(dir, &Default::default(), DType::F32).expect("fixture model loads")
}

fn input_of(golden: &Golden) -> Qwen3VlInput {
    Qwen3VlInput {
        input_ids: golden.i64("input_ids").into_iter().map(|id| id as u32).collect(),
        pixel_values: if golden.has("pixel_values") { golden.f32("pixel_values") } else { Vec::new() },
        image_grid_thw: golden.grids(),
    }
}

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().into_vec::<f32>().unwrap()
}

fn check(label: &str, actual: Vec<f32>, golden: &Golden, name: &str) -> f64 {
    let error = relative_error(&actual, &golden.f32(name));
    assert!(error <= TOLERANCE, "{label}: {name} relative error {error:.3e} > {TOLERANCE:e}");
    error
}

#[test]
fn hidden_states_and_logits_match_transformers() {
    for model_name in MODELS {
        let model = load(model_name);
        for case in CASES {
            let golden = Golden::load(model_name, case);
            let label = format!("{model_name}/{case}");
            let mut observer = CollectHiddenStates::<B>::default();
            let logits = model.forward_observed(&input_of(&golden), TapPoint::Transformers, &mut observer).unwrap();
            let expected_states = golden.json["num_hidden_states"].as_u64().unwrap() as usize;
            assert_eq!(observer.states.len(), expected_states, "{label}: number of hidden states");
            let mut worst: f64 = 0.0;
            for (i, state) in observer.states.into_iter().enumerate() {
                worst = worst.max(check(&label, values(state), &golden, &format!("hidden_states.{i}")));
            }
            worst = worst.max(check(&label, values(logits), &golden, "logits"));
            println!("{label}: worst relative error {worst:.2e}");
        }
    }
}

#[test]
fn vision_stages_match_transformers() {
    for model_name in MODELS {
        let model = load(model_name);
        for case in CASES.iter().filter(|c| **c != "text_only") {
            let golden = Golden::load(model_name, case);
            let label = format!("{model_name}/{case}");
            let input = input_of(&golden);
            let rows = golden.shape("pixel_values")[0];
            let pixels = Tensor::<B, 2>::from_data(burn::tensor::TensorData::new(input.pixel_values.clone(), [rows, input.pixel_values.len() / rows]), &Default::default());
            let output = model.model.visual.forward(pixels, &input.image_grid_thw).unwrap();
            check(&label, values(output.image_embeds), &golden, "vision.image_embeds");
            for (k, feature) in output.deepstack.into_iter().enumerate() {
                check(&label, values(feature), &golden, &format!("vision.deepstack.{k}"));
            }
        }
    }
}

#[test]
fn greedy_tokens_match_transformers() {
    for model_name in MODELS {
        let model = load(model_name);
        let dir = common::fixtures().join("models").join(model_name);
        for case in CASES {
            let golden = Golden::load(model_name, case);
            let expected = golden.u32_list("greedy_tokens");
            let config = GenerationConfig::from_dir(&dir, 12).unwrap();
            let output = generate(&model, &input_of(&golden), &config, |_| {}).unwrap();
            assert_eq!(output.new_tokens, expected, "{model_name}/{case}: greedy tokens");
        }
    }
}

#[test]
fn position_ids_match_transformers() {
    for model_name in MODELS {
        let model = load(model_name);
        for case in CASES {
            let golden = Golden::load(model_name, case);
            let input = input_of(&golden);
            let positions = interlace_qwen3vl::processor::rope_index(
                &input.input_ids,
                &input.image_grid_thw,
                model.config.image_token_id,
                model.config.vision.spatial_merge_size,
            )
            .unwrap();
            assert_eq!(positions.to_rows(), golden.i64("position_ids"), "{model_name}/{case}: position ids");
            assert_eq!(positions.rope_delta, golden.json["rope_delta"].as_i64().unwrap(), "{model_name}/{case}: rope delta");
        }
    }
}

#[test]
fn a_layer_kept_in_another_dtype_computes_in_it_and_hands_back_the_stream_dtype() {
    let model = load("tiny-b");
    let golden = Golden::load("tiny-b", "one_image");
    let reference = values(model.forward(&input_of(&golden)).unwrap());
    let mixed = load("tiny-b").cast_layers(&interlace_core::LayerSet::new([1, 3], 5).unwrap(), DType::F64);
    assert_eq!(mixed.model.language_model.layers[1].dtype(), DType::F64);
    let logits = mixed.forward(&input_of(&golden)).unwrap();
    assert_eq!(logits.dtype(), DType::F32);
    let error = relative_error(&values(logits), &reference);
    assert!(error < 1e-5, "f64 layers changed the logits by {error:.2e}");
}
