//! Forward-pass throughput (tokens/s) of the tiny fixture model `fixtures/models/tiny-a` on
//! the burn-flex CPU backend in f32, for a text-only prompt and a one-image prompt.
//!
//! `cargo bench -p interlace-qwen3vl --bench forward --profile dev -- --quick`
//!
//! Inputs go through the real processor once, outside the timed loop, so only the model runs
//! inside it. The model is tiny and random: the numbers track framework overhead and kernel
//! speed, not a real checkpoint's cost.

use std::path::{Path, PathBuf};
use std::time::Duration;

use burn::backend::flex::FlexDevice;
use burn::backend::Flex;
use burn::tensor::DType;
use criterion::{black_box, Criterion, Throughput};
use interlace_qwen3vl::processor::{ChatMessage, ContentPart, Qwen3VlProcessor};
use interlace_qwen3vl::{Qwen3VlForConditionalGeneration, Qwen3VlInput};

type B = Flex<f32>;

/// The committed fixtures, found from this crate so the bench runs from any directory.
fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// One user turn through the chat template with a generation prompt, as calibration builds it.
fn prompt(processor: &Qwen3VlProcessor, content: Vec<ContentPart>) -> Qwen3VlInput {
    processor.process(&[ChatMessage::user(content)], true).expect("process prompt").into()
}

/// Times `model.forward` on `input` under `name`, counting the prompt's tokens as elements.
fn bench_forward(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    model: &Qwen3VlForConditionalGeneration<B>,
    input: &Qwen3VlInput,
) {
    group.throughput(Throughput::Elements(input.input_ids.len() as u64));
    group.bench_function(format!("{name}/{}-tokens", input.input_ids.len()), |b| b.iter(|| black_box(model.forward(input).expect("forward"))));
}

/// Loads the model and processor of `dir` on the CPU in f32.
fn load(dir: &Path) -> (Qwen3VlForConditionalGeneration<B>, Qwen3VlProcessor) {
    let model = Qwen3VlForConditionalGeneration::<B>::from_pretrained(dir, &FlexDevice, DType::F32).expect("model");
    (model, Qwen3VlProcessor::from_dir(dir).expect("processor"))
}

fn main() {
    let root = fixtures();
    let (model, processor) = load(&root.join("models/tiny-a"));
    let text = prompt(&processor, vec![ContentPart::text("Describe the weather in a mountain village on a winter morning, in three sentences.")]);
    let image = prompt(&processor, vec![ContentPart::image_path(root.join("images/landscape.png")), ContentPart::text("What is in this picture?")]);

    // Short defaults so a plain `cargo bench` stays quick on a small CPU; CLI flags override.
    let mut criterion = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).configure_from_args();
    let mut group = criterion.benchmark_group("forward/tiny-a/flex-f32");
    bench_forward(&mut group, "text", &model, &text);
    bench_forward(&mut group, "one-image", &model, &image);
    group.finish();
    criterion.final_summary();
}
