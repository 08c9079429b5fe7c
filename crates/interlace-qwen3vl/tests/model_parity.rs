//! Qwen3-VL forward pass and generation against transformers goldens, on burn-flex (the default
//! CPU backend, f32) and, when a Vulkan device is present, on wgpu in f32 and f16
//! (`interlace_testkit::wgpu_device`; lavapipe on machines without a GPU).
//!
//! The goldens were written by `fixtures/make_fixtures.py` from random tiny checkpoints. The
//! model is fed the golden's own inputs (`input_ids`, `pixel_values`, `image_grid_thw`), which
//! isolates it from the processor; the processor's outputs are compared with those inputs
//! separately. Every tensor of every golden file is compared with something interlace
//! computes, and the test fails if one is not (`every_golden_tensor_*`).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use burn::prelude::{Backend, Tensor};
use burn::tensor::DType;
use common::{relative_error, Golden};
use interlace_core::{CollectHiddenStates, ObservedForward, TapPoint};
use interlace_qwen3vl::processor::{rope_index, ChatMessage, ContentPart, ImageSource, Qwen3VlProcessor};
use interlace_qwen3vl::vision::VisionStage;
use interlace_qwen3vl::{generate, GenerationConfig, Qwen3VlForConditionalGeneration, Qwen3VlInput};
use interlace_testkit::{wgpu_device, wgpu_supports, Flex, Wgpu};

type Cpu = Flex<f32>;

const MODELS: [&str; 2] = ["tiny-a", "tiny-b"];
const CASES: [&str; 5] = ["one_image", "two_images", "grayscale", "tie_image", "text_only"];

/// The kind of a golden tensor: its name without the trailing index (`vision.block3` →
/// `vision.block`, `hidden_states.2` → `hidden_states`).
fn kind(name: &str) -> &str {
    name.trim_end_matches(|c: char| c.is_ascii_digit()).trim_end_matches('.')
}

/// The precision a run computes in, which sets its tolerances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Precision {
    F32,
    F16,
}

impl Precision {
    fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
        }
    }
}

/// Largest allowed ‖ours − transformers‖ / ‖transformers‖ per kind of golden tensor and
/// precision (the goldens are transformers in f32).
fn limit(name: &str, precision: Precision) -> f64 {
    match precision {
        Precision::F32 => limit_f32(name),
        Precision::F16 => limit_f16(name),
    }
}

/// f32: about ten times the worst value measured over both models and all cases (ndarray, f32,
/// x86-64, 2026-12-01; the worst case is named; on burn-flex the same day: every kind within
/// 7.1e-7–9.9e-7, logits 9.8e-7; on wgpu (lavapipe), the same day: 8.6e-7–1.19e-6, logits
/// 1.19e-6). `vision.pos_embed` is compared bit for bit instead (bit-identical on wgpu too).
fn limit_f32(name: &str) -> f64 {
    match kind(name) {
        "vision.patch_embed" => 1e-5,  // measured 7.8e-7 (tiny-b/grayscale)
        "vision.block" => 1e-5,        // measured 7.7e-7 (tiny-b/grayscale block1)
        "vision.image_embeds" => 1e-5, // measured 9.4e-7 (tiny-b/two_images)
        "vision.deepstack" => 1e-5,    // measured 9.4e-7 (tiny-b/grayscale deepstack.1)
        "hidden_states" => 1e-5,       // measured 1.03e-6 (tiny-a/grayscale hidden_states.6)
        "deepstack_stream" => 1e-5,    // measured 8.9e-7 (tiny-a/grayscale deepstack_stream.1)
        "logits" => 1e-5,              // measured 1.04e-6 (tiny-a/grayscale)
        other => panic!("no tolerance for golden tensor kind {other} ({name})"),
    }
}

/// f16 weights and activations (wgpu on lavapipe, tiny-b, 2026-12-01), against transformers in
/// f32: about three times the worst value measured over all five cases (every worst one on
/// `grayscale`; the test runs `one_image` and `text_only`). f16
/// keeps 11 significant bits (unit roundoff 4.9e-4), so 1e-3-level errors are its rounding,
/// not a bug; a wrong op shows up as 1e-1 or more.
fn limit_f16(name: &str) -> f64 {
    match kind(name) {
        "vision.patch_embed" => 1e-3,  // measured 3.5e-4
        "vision.pos_embed" => 1e-3,    // measured 0: the interpolation runs in f32
        "vision.block" => 3e-3,        // measured 9.7e-4 (block2)
        "vision.image_embeds" => 4e-3, // measured 1.2e-3
        "vision.deepstack" => 4e-3,    // measured 1.15e-3 (deepstack.2)
        "hidden_states" => 5e-3,       // measured 1.47e-3 (hidden_states.5)
        "deepstack_stream" => 4e-3,    // measured 1.2e-3 (deepstack_stream.2)
        "logits" => 5e-3,              // measured 1.48e-3
        other => panic!("no tolerance for golden tensor kind {other} ({name})"),
    }
}

fn load<B: Backend>(model: &str, device: &B::Device, precision: Precision) -> Qwen3VlForConditionalGeneration<B> {
    let dir = common::fixtures().join("models").join(model);
    Qwen3VlForConditionalGeneration::<B>::from_pretrained(dir, device, precision.dtype()).expect("fixture model loads")
}

fn input_of(golden: &Golden) -> Qwen3VlInput {
    Qwen3VlInput {
        input_ids: golden.i64("input_ids").into_iter().map(|id| id as u32).collect(),
        pixel_values: if golden.has("pixel_values") { golden.f32("pixel_values") } else { Vec::new() },
        image_grid_thw: golden.grids(),
    }
}

/// The values of `t` as f32, whatever dtype it computed in.
fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec::<f32>().unwrap()
}

/// One golden case and the names of the golden tensors compared so far.
struct Case {
    label: String,
    golden: Golden,
    precision: Precision,
    compared: BTreeSet<String>,
}

impl Case {
    fn load(model: &str, case: &str, backend: &str, precision: Precision) -> Self {
        Self { label: format!("{backend} {precision:?} {model}/{case}"), golden: Golden::load(model, case), precision, compared: BTreeSet::new() }
    }

    /// Relative error of `actual` against golden `name`, asserted ≤ [`limit`].
    fn close(&mut self, name: &str, actual: Vec<f32>, worst: &mut BTreeMap<String, (f64, String)>) {
        assert_eq!(actual.len(), self.golden.f32(name).len(), "{}: {name} has the wrong number of values", self.label);
        let error = relative_error(&actual, &self.golden.f32(name));
        let limit = limit(name, self.precision);
        assert!(error <= limit, "{}: {name} relative error {error:.3e} > {limit:e}", self.label);
        let entry = worst.entry(kind(name).to_string()).or_insert((0.0, String::new()));
        if error >= entry.0 {
            *entry = (error, format!("{} {name}", self.label));
        }
        self.compared.insert(name.to_string());
    }

    /// Golden `name` equals `actual` exactly (integer tensors).
    fn same_i64(&mut self, name: &str, actual: Vec<i64>) {
        assert_eq!(actual, self.golden.i64(name), "{}: {name}", self.label);
        self.compared.insert(name.to_string());
    }

    /// Golden `name` equals `actual` bit for bit (f32 tensors).
    fn same_f32_bits(&mut self, name: &str, actual: &[f32]) {
        let want = self.golden.f32(name);
        assert_eq!(actual.len(), want.len(), "{}: {name} length", self.label);
        let differ = actual.iter().zip(&want).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        assert_eq!(differ, 0, "{}: {differ} of {} values of {name} differ", self.label, want.len());
        self.compared.insert(name.to_string());
    }

    /// Golden tensor names starting with `prefix`.
    fn names_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.golden.names().into_iter().filter(|n| n.starts_with(prefix)).collect()
    }

    /// Fails naming every golden tensor nothing was compared with.
    fn assert_all_compared(&self) {
        let missing: Vec<String> = self.golden.names().into_iter().filter(|n| !self.compared.contains(n)).collect();
        assert!(missing.is_empty(), "{}: golden tensors not compared by any check: {missing:?}", self.label);
    }
}

/// The processor, run on the golden's messages, gives exactly the golden's inputs.
fn compare_inputs<B: Backend>(case: &mut Case, processor: &Qwen3VlProcessor, model: &Qwen3VlForConditionalGeneration<B>) {
    let mut messages: Vec<ChatMessage> = serde_json::from_value(case.golden.json["messages"].clone()).unwrap();
    for message in &mut messages {
        for part in &mut message.content {
            if let ContentPart::Image(ImageSource::Path(p)) = part {
                *p = common::fixtures().join(&*p);
            }
        }
    }
    let add_generation_prompt = case.golden.json["add_generation_prompt"].as_bool().unwrap();
    let out = processor.process(&messages, add_generation_prompt).unwrap_or_else(|e| panic!("{}: {e}", case.label));
    case.same_i64("input_ids", out.input_ids.iter().map(|&id| id as i64).collect());
    // transformers marks image tokens with 1 in `mm_token_type_ids`; interlace finds them as
    // the `image_token_id` positions of `input_ids` (model.rs, `visual_rows`).
    let image_token = model.config.image_token_id;
    case.same_i64("mm_token_type_ids", out.input_ids.iter().map(|&id| i64::from(id == image_token)).collect());
    if case.golden.has("image_grid_thw") {
        case.same_i64("image_grid_thw", out.image_grid_thw.iter().flatten().map(|&v| v as i64).collect());
        case.same_f32_bits("pixel_values", &out.pixel_values);
    } else {
        assert!(out.image_grid_thw.is_empty() && out.pixel_values.is_empty(), "{}: images where the golden has none", case.label);
    }
}

/// M-RoPE position ids and rope delta of the golden inputs.
fn compare_positions<B: Backend>(case: &mut Case, model: &Qwen3VlForConditionalGeneration<B>) {
    let input = input_of(&case.golden);
    let positions = rope_index(&input.input_ids, &input.image_grid_thw, model.config.image_token_id, model.config.vision.spatial_merge_size).unwrap();
    case.same_i64("position_ids", positions.to_rows());
    assert_eq!(positions.rope_delta, case.golden.json["rope_delta"].as_i64().unwrap(), "{}: rope delta", case.label);
}

/// Every `output_hidden_states` entry and the logits (transformers' tap points), then the
/// residual stream after each deepstack injection.
fn compare_decoder<B: Backend>(case: &mut Case, model: &Qwen3VlForConditionalGeneration<B>, worst: &mut BTreeMap<String, (f64, String)>) {
    let input = input_of(&case.golden);
    let mut observer = CollectHiddenStates::<B>::default();
    let logits = model.forward_observed(&input, TapPoint::Transformers, &mut observer).unwrap();
    let expected_states = case.golden.json["num_hidden_states"].as_u64().unwrap() as usize;
    assert_eq!(observer.states.len(), expected_states, "{}: number of hidden states", case.label);
    assert_eq!(case.names_with_prefix("hidden_states.").len(), expected_states, "{}: golden hidden states", case.label);
    for (i, state) in observer.states.into_iter().enumerate() {
        case.close(&format!("hidden_states.{i}"), values(state), worst);
    }
    case.close("logits", values(logits), worst);

    // `deepstack_stream.k` = output of layer k plus deepstack feature k = the residual stream
    // after layer k (TapPoint::Residual reports it as state k + 1).
    let taps = if input.image_grid_thw.is_empty() { 0 } else { model.config.vision.deepstack_visual_indexes.len() };
    assert_eq!(case.names_with_prefix("deepstack_stream.").len(), taps, "{}: deepstack_stream tensors in the golden", case.label);
    if taps > 0 {
        let mut residual = CollectHiddenStates::<B>::default();
        model.forward_observed(&input, TapPoint::Residual, &mut residual).unwrap();
        assert_eq!(residual.states.len(), model.config.text.num_hidden_layers + 1, "{}: residual states", case.label);
        for (k, state) in residual.states.into_iter().skip(1).take(taps).enumerate() {
            case.close(&format!("deepstack_stream.{k}"), values(state), worst);
        }
    }
}

/// Patch embedding, interpolated positions, every block, the merger and the deepstack
/// features (count and values) of the vision tower.
fn compare_vision<B: Backend>(case: &mut Case, model: &Qwen3VlForConditionalGeneration<B>, device: &B::Device, worst: &mut BTreeMap<String, (f64, String)>) {
    let input = input_of(&case.golden);
    if input.image_grid_thw.is_empty() {
        assert!(case.names_with_prefix("vision.").is_empty(), "{}: vision tensors without images", case.label);
        return;
    }
    let vision = &model.config.vision;
    let rows = case.golden.shape("pixel_values")[0];
    let data = burn::tensor::TensorData::new(input.pixel_values.clone(), [rows, vision.patch_dim()]).convert_dtype(case.precision.dtype());
    let pixels = Tensor::<B, 2>::from_data(data, device);
    let mut stages: Vec<(VisionStage, Vec<f32>)> = Vec::new();
    let output = model.model.visual.forward_inspected(pixels, &input.image_grid_thw, &mut |stage, t| stages.push((stage, values(t.clone())))).unwrap();

    let mut expected = vec![VisionStage::PatchEmbed];
    if model.model.visual.pos_embed.is_some() {
        expected.push(VisionStage::PositionEmbed);
    }
    expected.extend((0..vision.depth).map(VisionStage::Block));
    // Qwen2.5-VL: the blocks see the merged tokens window by window (their golden rows too).
    let window_order = interlace_qwen3vl::vision::window_order(&input.image_grid_thw, vision).unwrap();
    assert_eq!(window_order.is_some(), case.golden.has("vision.window_index"), "{}: windowed tower", case.label);
    if let Some(order) = window_order {
        case.same_i64("vision.window_index", order.iter().map(|&u| u as i64).collect());
    }
    assert_eq!(stages.iter().map(|(s, _)| *s).collect::<Vec<_>>(), expected, "{}: vision stages", case.label);
    assert_eq!(case.names_with_prefix("vision.block").len(), vision.depth, "{}: golden vision blocks", case.label);
    for (stage, actual) in stages {
        match stage {
            VisionStage::PatchEmbed => case.close("vision.patch_embed", actual, worst),
            // The bilinear interpolation runs in f32 with transformers' weights and order.
            VisionStage::PositionEmbed if case.precision == Precision::F32 => case.same_f32_bits("vision.pos_embed", &actual),
            VisionStage::PositionEmbed => case.close("vision.pos_embed", actual, worst),
            VisionStage::Block(b) => case.close(&format!("vision.block{b}"), actual, worst),
        }
    }
    case.close("vision.image_embeds", values(output.image_embeds), worst);

    // Deepstack: one feature per configured tap, in ascending tapped-block order, as the
    // golden's `vision.deepstack_taps` records.
    let no_taps = Vec::new();
    let taps = case.golden.json["vision"]["deepstack_taps"].as_array().unwrap_or(&no_taps);
    let mut tapped_blocks = vision.deepstack_visual_indexes.clone();
    tapped_blocks.sort_unstable();
    assert_eq!(taps.iter().map(|t| t["vision_block"].as_u64().unwrap() as usize).collect::<Vec<_>>(), tapped_blocks, "{}: tapped blocks", case.label);
    assert_eq!(output.deepstack.len(), taps.len(), "{}: number of deepstack features", case.label);
    assert_eq!(case.names_with_prefix("vision.deepstack.").len(), taps.len(), "{}: golden deepstack features", case.label);
    for (k, feature) in output.deepstack.into_iter().enumerate() {
        case.close(&format!("vision.deepstack.{k}"), values(feature), worst);
    }
}

fn every_golden_tensor_matches<B: Backend>(model_name: &str, cases: &[&str], device: &B::Device, backend: &str, precision: Precision) {
    let model = load::<B>(model_name, device, precision);
    let processor = Qwen3VlProcessor::from_dir(common::fixtures().join("models").join(model_name)).unwrap();
    let mut worst = BTreeMap::new();
    for &case_name in cases {
        let mut case = Case::load(model_name, case_name, backend, precision);
        compare_inputs(&mut case, &processor, &model);
        compare_positions(&mut case, &model);
        compare_decoder(&mut case, &model, &mut worst);
        compare_vision(&mut case, &model, device, &mut worst);
        case.assert_all_compared();
        println!("{}: all {} golden tensors compared", case.label, case.compared.len());
    }
    for (kind, (error, at)) in worst {
        println!("{backend} {precision:?} {model_name}: worst relative error of {kind}: {error:.3e} ({at})");
    }
}

fn greedy_tokens_match<B: Backend>(models: &[&str], cases: &[&str], device: &B::Device, backend: &str) {
    for &model_name in models {
        let model = load::<B>(model_name, device, Precision::F32);
        let dir = common::fixtures().join("models").join(model_name);
        for &case in cases {
            let golden = Golden::load(model_name, case);
            let expected = golden.u32_list("greedy_tokens");
            let config = GenerationConfig::from_dir(&dir, 12).unwrap();
            let output = generate(&model, &input_of(&golden), &config, |_| {}).unwrap();
            assert_eq!(output.new_tokens, expected, "{backend} {model_name}/{case}: greedy tokens");
        }
    }
}

#[test]
fn every_golden_tensor_of_tiny_a_matches_transformers() {
    every_golden_tensor_matches::<Cpu>("tiny-a", &CASES, &Default::default(), "cpu", Precision::F32);
}

#[test]
fn every_golden_tensor_of_tiny_b_matches_transformers() {
    every_golden_tensor_matches::<Cpu>("tiny-b", &CASES, &Default::default(), "cpu", Precision::F32);
}

#[test]
fn greedy_tokens_match_transformers() {
    greedy_tokens_match::<Cpu>(&MODELS, &CASES, &Default::default(), "cpu");
}

/// The Qwen3-VL-MoE fixture (`fixtures/make_moe_fixtures.py`): sparse layers 0, 1, 2, 4 with 8
/// experts, 2 per token, and the dense layer 3 (`mlp_only_layers`).
const MOE_CASES: [&str; 3] = ["one_image", "two_images", "text_only"];

#[test]
fn every_golden_tensor_of_tiny_moe_matches_transformers() {
    every_golden_tensor_matches::<Cpu>("tiny-moe", &MOE_CASES, &Default::default(), "cpu", Precision::F32);
}

#[test]
fn moe_greedy_tokens_match_transformers() {
    greedy_tokens_match::<Cpu>(&["tiny-moe"], &MOE_CASES, &Default::default(), "cpu");
}

/// Qwen2-VL (`fixtures/make_qwen2vl_fixtures.py`): biased QKV, sectioned M-RoPE, a QuickGELU
/// LayerNorm vision tower, a tied head; transformers 5's nested config.
const QWEN2_CASES: [&str; 3] = ["one_image", "two_images", "text_only"];

#[test]
fn every_golden_tensor_of_tiny_qwen2vl_matches_transformers() {
    every_golden_tensor_matches::<Cpu>("tiny-qwen2vl", &QWEN2_CASES, &Default::default(), "cpu", Precision::F32);
}

/// Qwen2.5-VL in the hub's own form (flat config, `model.layers.*` / `visual.*` names): RMSNorm
/// and SwiGLU vision blocks, window attention with full attention in blocks 1 and 3, windows cut
/// off at both image edges.
#[test]
fn every_golden_tensor_of_tiny_qwen25vl_matches_transformers() {
    every_golden_tensor_matches::<Cpu>("tiny-qwen25vl", &QWEN2_CASES, &Default::default(), "cpu", Precision::F32);
}

#[test]
fn qwen2_generation_greedy_tokens_match_transformers() {
    greedy_tokens_match::<Cpu>(&["tiny-qwen2vl", "tiny-qwen25vl"], &QWEN2_CASES, &Default::default(), "cpu");
}

// On wgpu the suites use tiny-b alone (three deepstack taps): on lavapipe each new kernel costs
// seconds of shader compilation, and tiny-a adds shapes, not code paths. Every case runs in f32;
// generation (a new attention shape per decoded token) and f16 (a second set of kernels) run on
// one image case and the text-only case, which keeps the wgpu half of CI within minutes.

#[test]
fn on_wgpu_every_golden_tensor_matches_transformers() {
    let Some(device) = wgpu_device("model parity") else { return };
    every_golden_tensor_matches::<Wgpu>("tiny-b", &CASES, &device, "wgpu", Precision::F32);
}

/// The other families' own code paths on wgpu: sparse MoE routing (host top-k over device
/// router logits, per-expert gathers), and Qwen2.5-VL's window attention, RMSNorm/SwiGLU
/// vision blocks, biased QKV and sectioned M-RoPE (one image and text only each).
#[test]
fn on_wgpu_the_moe_and_qwen2_5_vl_families_match_transformers() {
    let Some(device) = wgpu_device("MoE and Qwen2.5-VL parity") else { return };
    for model in ["tiny-moe", "tiny-qwen25vl"] {
        every_golden_tensor_matches::<Wgpu>(model, &["one_image", "text_only"], &device, "wgpu", Precision::F32);
    }
}

#[test]
fn on_wgpu_greedy_tokens_match_transformers() {
    let Some(device) = wgpu_device("greedy tokens") else { return };
    greedy_tokens_match::<Wgpu>(&["tiny-b"], &["one_image", "text_only"], &device, "wgpu");
}

#[test]
fn on_wgpu_in_f16_every_golden_tensor_stays_within_the_f16_tolerance() {
    let Some(device) = wgpu_device("model parity in f16") else { return };
    if !wgpu_supports(&device, DType::F16) {
        eprintln!("model parity in f16: skipped, this wgpu adapter has no shader-f16");
        return;
    }
    every_golden_tensor_matches::<Wgpu>("tiny-b", &["one_image", "text_only"], &device, "wgpu", Precision::F16);
}

#[test]
fn a_layer_kept_in_another_dtype_computes_in_it_and_hands_back_the_stream_dtype() {
    let model = load::<Cpu>("tiny-b", &Default::default(), Precision::F32);
    let golden = Golden::load("tiny-b", "one_image");
    let reference = values(model.forward(&input_of(&golden)).unwrap());
    let mixed = load::<Cpu>("tiny-b", &Default::default(), Precision::F32).cast_layers(&interlace_core::LayerSet::new([1, 3], 5).unwrap(), DType::F64);
    assert_eq!(mixed.model.language_model.layers[1].dtype(), DType::F64);
    let logits = mixed.forward(&input_of(&golden)).unwrap();
    assert_eq!(logits.dtype(), DType::F32);
    let error = relative_error(&values(logits), &reference);
    assert!(error < 1e-5, "f64 layers changed the logits by {error:.2e}");
}
