//! The Qwen-VL fixtures against transformers goldens with burn-flex's linear layers, output head
//! and attention (text and vision) running through OpenBLAS (`interlace_openblas::use_openblas`).
//!
//! The kernel is a process-wide setting, which is why this is a test binary of its own:
//! `model_parity` keeps checking burn-flex's own matmul. Where OpenBLAS is not installed the test
//! says so and passes, unless `INTERLACE_OPENBLAS_TESTS=require` (set by `.ci/run`, which
//! installs it) makes that a failure.

mod common;

use burn::tensor::DType;
use common::{relative_error, Golden};
use interlace_core::{CollectHiddenStates, ObservedForward, TapPoint};
use interlace_qwen3vl::{generate, GenerationConfig, Qwen3VlForConditionalGeneration, Qwen3VlInput};
use interlace_testkit::Flex;

type Cpu = Flex<f32>;

/// Every fixture model with the cases of `model_parity`.
const FIXTURES: [(&str, &[&str]); 5] = [
    ("tiny-a", &["one_image", "two_images", "grayscale", "tie_image", "text_only"]),
    ("tiny-b", &["one_image", "two_images", "grayscale", "tie_image", "text_only"]),
    ("tiny-moe", &["one_image", "two_images", "text_only"]),
    ("tiny-qwen2vl", &["one_image", "two_images", "text_only"]),
    ("tiny-qwen25vl", &["one_image", "two_images", "text_only"]),
];

/// `model_parity`'s f32 limit for hidden states and logits (measured there 1.03e-6 and 1.04e-6
/// with burn-flex's matmul; with OpenBLAS, see the printed worst values).
const LIMIT: f64 = 1e-5;

fn openblas_loaded() -> bool {
    match interlace_openblas::use_openblas() {
        Ok(library) => {
            println!("OpenBLAS: {library}");
            true
        }
        Err(error) if std::env::var("INTERLACE_OPENBLAS_TESTS").as_deref() == Ok("require") => panic!("INTERLACE_OPENBLAS_TESTS=require: {error}"),
        Err(error) => {
            println!("skipped: {error}");
            false
        }
    }
}

fn input_of(golden: &Golden) -> Qwen3VlInput {
    Qwen3VlInput {
        input_ids: golden.i64("input_ids").into_iter().map(|id| id as u32).collect(),
        pixel_values: if golden.has("pixel_values") { golden.f32("pixel_values") } else { Vec::new() },
        image_grid_thw: golden.grids(),
    }
}

#[test]
fn with_openblas_hidden_states_logits_and_greedy_tokens_match_transformers() {
    if !openblas_loaded() {
        return;
    }
    assert!(interlace_core::linear_kernel::linear_kernel::<Cpu>().is_some(), "the linear kernel is registered for burn-flex");
    assert!(interlace_core::attention_kernel::attention_kernel::<Cpu>().is_some(), "the attention kernel is registered for burn-flex");
    let device = Default::default();
    let mut worst = (0.0f64, String::new());
    for (model_name, cases) in FIXTURES {
        let dir = common::fixtures().join("models").join(model_name);
        let model = Qwen3VlForConditionalGeneration::<Cpu>::from_pretrained(&dir, &device, DType::F32).expect("fixture model loads");
        for &case in cases {
            let golden = Golden::load(model_name, case);
            let input = input_of(&golden);
            let mut observer = CollectHiddenStates::<Cpu>::default();
            let logits = model.forward_observed(&input, TapPoint::Transformers, &mut observer).unwrap();
            let names = (0..observer.states.len()).map(|i| format!("hidden_states.{i}")).chain(["logits".to_string()]);
            for (name, tensor) in names.zip(observer.states.into_iter().chain([logits])) {
                let error = relative_error(&tensor.into_data().to_vec::<f32>().unwrap(), &golden.f32(&name));
                assert!(error <= LIMIT, "{model_name}/{case} {name}: relative error {error:.3e} > {LIMIT:e}");
                if error > worst.0 {
                    worst = (error, format!("{model_name}/{case} {name}"));
                }
            }
            let config = GenerationConfig::from_dir(&dir, 12).unwrap();
            let output = generate(&model, &input, &config, |_| {}).unwrap();
            assert_eq!(output.new_tokens, golden.u32_list("greedy_tokens"), "{model_name}/{case}: greedy tokens");
        }
    }
    println!("worst relative error with OpenBLAS: {:.3e} ({})", worst.0, worst.1);
}
