//! Calibration throughput (tokens/s) on the tiny fixture model `fixtures/models/tiny-a`,
//! burn-flex CPU backend in f32: one forward pass with a `PackObserver` attached (packs 1, 2, 3,
//! transformers taps), next to the plain forward pass so the observer's cost is visible.
//!
//! `cargo bench -p interlace-similarity --bench calibration --profile dev -- --quick`
//!
//! It lives here rather than in interlace-qwen3vl because this crate already depends on that
//! one; the reverse dev-dependency would be a cycle.

use interlace_qwen3vl::processor::Qwen3VlProcessor;
use std::path::PathBuf;
use std::time::Duration;

use burn::backend::flex::FlexDevice;
use burn::backend::Flex;
use burn::tensor::DType;
use criterion::measurement::WallTime;
use criterion::{black_box, BenchmarkGroup, Criterion, Throughput};
use interlace_core::DecoderStack;
use interlace_qwen3vl::{Qwen3VlForConditionalGeneration, Qwen3VlInput};
use interlace_similarity::{CalibrationConfig, CalibrationRecord, Calibrator, ChatInputBuilder, InputBuilder};

type B = Flex<f32>;
type Model = Qwen3VlForConditionalGeneration<B>;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// Builds the input exactly as `interlace similarity` does for a data record (images, then
/// text, one user turn, generation prompt), once, outside the timed loop.
fn input(builder: &ChatInputBuilder<Qwen3VlProcessor>, images: Vec<PathBuf>, text: &str) -> Qwen3VlInput {
    builder.build(&CalibrationRecord { line: 1, images, text: text.into(), document: false }).expect("build input")
}

/// One sample through `Calibrator::run_sample`, as `interlace similarity` runs it. A fresh
/// calibrator per sample keeps the per-sample lists from growing over millions of iterations;
/// creating one is a few small allocations next to a forward pass.
fn calibrate_one(model: &Model, input: &Qwen3VlInput) {
    let mut calibrator = Calibrator::new(CalibrationConfig::default(), model.num_layers()).expect("calibrator");
    black_box(calibrator.run_sample::<B, _>(model, input).expect("run_sample"));
}

/// The plain forward and the observed forward of one prompt, tokens counted as elements.
fn bench_prompt(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, model: &Model, input: &Qwen3VlInput) {
    let tokens = input.input_ids.len();
    group.throughput(Throughput::Elements(tokens as u64));
    group.bench_function(format!("{name}/{tokens}-tokens/forward"), |b| b.iter(|| black_box(model.forward(input).expect("forward"))));
    group.bench_function(format!("{name}/{tokens}-tokens/calibrate"), |b| b.iter(|| calibrate_one(model, input)));
}

fn main() {
    let dir = fixtures().join("models/tiny-a");
    let model = Model::from_pretrained(&dir, &FlexDevice, DType::F32).expect("model");
    let builder = ChatInputBuilder::new(Qwen3VlProcessor::from_dir(&dir).expect("processor"));
    let text = input(&builder, Vec::new(), "Describe the weather in a mountain village on a winter morning, in three sentences.");
    let image = input(&builder, vec![fixtures().join("images/landscape.png")], "What is in this picture?");

    // Short defaults so a plain `cargo bench` stays quick on a small CPU; CLI flags override.
    let mut criterion = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).configure_from_args();
    let mut group = criterion.benchmark_group("calibration/tiny-a/flex-f32");
    bench_prompt(&mut group, "text", &model, &text);
    bench_prompt(&mut group, "one-image", &model, &image);
    group.finish();
    criterion.final_summary();
}
