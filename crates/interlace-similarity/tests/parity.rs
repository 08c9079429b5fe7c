//! Similarities against transformers (`fixtures/make_similarity_fixtures.py`): per-sample
//! pack-1/2/3 cosines of tiny-a (6 layers) and tiny-b (5 layers) on a calibration set with
//! single-image, two-image, text-only, system-turn and placeholder records. On burn-flex, and on
//! wgpu when a Vulkan device is present (`interlace_testkit::wgpu_device`).

use interlace_qwen3vl::processor::Qwen3VlProcessor;
use std::path::PathBuf;

use burn::prelude::Backend;
use burn::tensor::DType;
use interlace_qwen3vl::{Qwen3VlForConditionalGeneration, Qwen3VlInput};
use interlace_similarity::{calibrate, sample_order, CalibrationConfig, CalibrationData, CalibrationResult, Calibrator, ChatInputBuilder};
use interlace_testkit::{wgpu_device, Flex, Wgpu};
use serde_json::Value;

type Cpu = Flex<f32>;

const MODELS: [&str; 2] = ["tiny-a", "tiny-b"];

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn model<B: Backend>(name: &str, device: &B::Device) -> Qwen3VlForConditionalGeneration<B> {
    Qwen3VlForConditionalGeneration::<B>::from_pretrained(fixtures().join("models").join(name), device, DType::F32).expect("fixture model loads")
}

fn golden(name: &str) -> Value {
    let path = fixtures().join("golden/similarity").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `cosine[k][i][sample]` of the golden.
fn golden_cos(g: &Value, k: usize, i: usize) -> Vec<f64> {
    g["cosine"][k.to_string()][i.to_string()].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
}

/// The processor outputs transformers used for sample `n`.
fn golden_input(n: usize) -> Qwen3VlInput {
    let bytes = std::fs::read(fixtures().join(format!("golden/similarity/inputs/sample{n}.safetensors"))).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let i64s = |name: &str| st.tensor(name).unwrap().data().chunks(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect::<Vec<_>>();
    let has = |name: &str| st.names().contains(&name);
    Qwen3VlInput {
        input_ids: i64s("input_ids").into_iter().map(|x| x as u32).collect(),
        pixel_values: if has("pixel_values") {
            st.tensor("pixel_values").unwrap().data().chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
        } else {
            Vec::new()
        },
        image_grid_thw: if has("image_grid_thw") {
            i64s("image_grid_thw").chunks(3).map(|c| [c[0] as usize, c[1] as usize, c[2] as usize]).collect()
        } else {
            Vec::new()
        },
    }
}

/// Largest |rust − transformers| over every pack, layer and sample.
fn max_error(result: &CalibrationResult, g: &Value) -> f64 {
    let mut worst = 0.0f64;
    for pack in &result.packs {
        assert_eq!(pack.per_sample.len(), result.n_layers - pack.k + 1);
        for (i, values) in pack.per_sample.iter().enumerate() {
            let expected = golden_cos(g, pack.k, i);
            assert_eq!(values.len(), expected.len(), "pack {} layer {i}", pack.k);
            for (a, e) in values.iter().zip(&expected) {
                worst = worst.max((a - e).abs());
            }
        }
    }
    worst
}

/// Largest allowed |ours − transformers| of a per-sample cosine. Measured (ndarray, f32, token
/// sums in f32 on the device, 2026-12-01): 1.98e-7 on tiny-a, 1.37e-7 on tiny-b (2.07e-7 /
/// 1.42e-7 on an earlier build the same day), identical with transformers' processor outputs
/// and end to end, since our processor's `pixel_values` are bit-identical to transformers'.
/// On burn-flex (the default CPU backend, which these tests run on), 2026-12-01: 1.86e-7 on
/// tiny-a, 2.01e-7 on tiny-b. On wgpu (lavapipe, 2026-12-01): 2.44e-7 on tiny-a, 2.30e-7 on
/// tiny-b, from processor outputs and end to end alike.
const COSINE_LIMIT: f64 = 1e-5;

fn same_processor_outputs_match<B: Backend>(models: &[&str], device: &B::Device, backend: &str) {
    for &name in models {
        let g = golden(name);
        let model = model::<B>(name, device);
        let mut calibrator = Calibrator::new(CalibrationConfig::default(), g["n_layers"].as_u64().unwrap() as usize).unwrap();
        let records = g["records"].as_array().unwrap().len();
        for n in 0..records {
            let sample = calibrator.run_sample(&model, &golden_input(n)).unwrap();
            assert_eq!(sample.tokens as u64, g["tokens"][n].as_u64().unwrap());
        }
        let result = calibrator.finish();
        let error = max_error(&result, &g);
        println!("{backend} {name}: max |Δcos| (processor outputs from transformers) = {error:.3e}");
        assert!(error <= COSINE_LIMIT, "{backend} {name}: {error:.3e} > {COSINE_LIMIT:e}");
    }
}

fn end_to_end_from_image_files_matches<B: Backend>(device: &B::Device, backend: &str) {
    for (name, file) in [("tiny-a", "calib.jsonl"), ("tiny-b", "calib.json")] {
        let g = golden(name);
        let model = model::<B>(name, device);
        let dir = fixtures().join("models").join(name);
        let builder = ChatInputBuilder::new(Qwen3VlProcessor::from_dir(&dir).unwrap());
        let mut data = CalibrationData::open(fixtures().join("calibration").join(file), None).unwrap();
        let order = sample_order(data.len(), None, 42, None).unwrap();
        let mut calibrator = Calibrator::new(CalibrationConfig::default(), g["n_layers"].as_u64().unwrap() as usize).unwrap();
        let summary = calibrate(&model, &builder, &mut data, &order, &mut calibrator, true, &mut |_| {}).unwrap();
        assert_eq!(summary.used, 6);
        assert!(summary.skipped.is_empty());
        let result = calibrator.finish();
        let tokens: u64 = g["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).sum();
        assert_eq!(result.tokens, tokens, "{name}: same prompts, same token counts");
        let error = max_error(&result, &g);
        println!("{backend} {name} ({file}): max |Δcos| end to end = {error:.3e}, {:.1} samples/s", summary.used as f64 / summary.wall.as_secs_f64());
        assert!(error <= COSINE_LIMIT, "{backend} {name}: {error:.3e} > {COSINE_LIMIT:e}");
    }
}

#[test]
fn same_processor_outputs_match_transformers_within_1e_5() {
    same_processor_outputs_match::<Cpu>(&MODELS, &Default::default(), "cpu");
}

#[test]
fn end_to_end_from_image_files_matches_within_1e_5() {
    end_to_end_from_image_files_matches::<Cpu>(&Default::default(), "cpu");
}

/// On wgpu: tiny-b (every record kind), fed transformers' processor outputs. The end-to-end
/// variant adds only host-side work (the processor), which the CPU tests cover; on lavapipe
/// each new kernel costs seconds of shader compilation, so the wgpu half stays this small.
#[test]
fn on_wgpu_same_processor_outputs_match_transformers_within_1e_5() {
    let Some(device) = wgpu_device("similarity parity") else { return };
    same_processor_outputs_match::<Wgpu>(&["tiny-b"], &device, "wgpu");
}

#[test]
fn residual_taps_differ_only_where_the_streams_differ() {
    // Text-only sample (record 2): no deepstack injection, so the residual stream equals
    // transformers' hidden states except the last one (un-normalised instead of final norm).
    // With an image (record 0), layers fed deepstack features differ.
    let g = golden("tiny-a");
    let model = model::<Cpu>("tiny-a", &Default::default());
    let residual = CalibrationConfig { packs: vec![1, 2, 3], tap: interlace_core::TapPoint::Residual };
    let mut text = Calibrator::new(residual.clone(), 6).unwrap();
    let s = text.run_sample(&model, &golden_input(2)).unwrap();
    for (p, k) in [1usize, 2, 3].into_iter().enumerate() {
        for i in 0..=6 - k {
            let expected = golden_cos(&g, k, i)[2];
            let same = (s.cosine[p][i] - expected).abs() < 1e-4;
            assert_eq!(same, i + k < 6, "pack {k} layer {i}: {} vs {expected}", s.cosine[p][i]);
        }
    }
    let mut image = Calibrator::new(residual, 6).unwrap();
    let s = image.run_sample(&model, &golden_input(0)).unwrap();
    assert!((s.cosine[0][1] - golden_cos(&g, 1, 1)[0]).abs() > 1e-4, "deepstack changes h_1 at image tokens");
}
