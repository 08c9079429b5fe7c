//! Time to first token of the tiny fixture model, unpruned (6 layers) and with two layers
//! removed, on CPU: one image and a multiple-choice prompt, prefill plus first-token choice.
//!
//! `cargo bench -p interlace-eval --bench ttft`; the ratio is printed at the end.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use burn::backend::ndarray::NdArrayDevice;
use burn::backend::NdArray;
use burn::tensor::DType;
use criterion::{black_box, Criterion};
use interlace_core::{DecoderStack, LayerSet};
use interlace_eval::{prepare_input, read_benchmark};
use interlace_qwen3vl::processor::Qwen3VlProcessor;
use interlace_qwen3vl::{KvCache, Qwen3VlForConditionalGeneration, Qwen3VlInput};

type B = NdArray<f32>;

fn first_token(model: &Qwen3VlForConditionalGeneration<B>, input: &Qwen3VlInput) -> usize {
    let mut cache = KvCache::new(model.num_layers());
    let logits = model.prefill(input, &mut cache).expect("prefill");
    logits.argmax(0).into_scalar() as usize
}

fn mean_time(model: &Qwen3VlForConditionalGeneration<B>, input: &Qwen3VlInput, runs: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..runs {
        black_box(first_token(model, input));
    }
    start.elapsed() / runs
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let dir = root.join("models/tiny-a");
    let processor = Qwen3VlProcessor::from_dir(&dir).expect("processor");
    let bench = read_benchmark(&root.join("bench/mcq.tsv"), false).expect("benchmark");
    let input = prepare_input(&processor, &bench, &bench.items[0]).expect("prompt");
    let device = NdArrayDevice::Cpu;
    let base = Qwen3VlForConditionalGeneration::<B>::from_pretrained(&dir, &device, DType::F32).expect("model");
    let pruned = Qwen3VlForConditionalGeneration::<B>::from_pretrained(&dir, &device, DType::F32)
        .expect("model")
        .remove_layers(&LayerSet::for_removal([2, 3], 6).expect("layer set"))
        .expect("prune");

    let mut criterion =
        Criterion::default().configure_from_args().sample_size(30).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    let mut group = criterion.benchmark_group(format!("ttft/{}-tokens", input.input_ids.len()));
    group.bench_function("unpruned-6-layers", |b| b.iter(|| first_token(&base, &input)));
    group.bench_function("pruned-4-layers", |b| b.iter(|| first_token(&pruned, &input)));
    group.finish();
    criterion.final_summary();

    // Criterion keeps its estimates to itself; a direct interleaved measurement gives the ratio.
    let (mut t_base, mut t_pruned) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..5 {
        t_base += mean_time(&base, &input, 20);
        t_pruned += mean_time(&pruned, &input, 20);
    }
    println!(
        "TTFT unpruned {:.3} ms, pruned {:.3} ms, speed-up {:.2}x (layers 6 -> 4)",
        t_base.as_secs_f64() * 200.0,
        t_pruned.as_secs_f64() * 200.0,
        t_base.as_secs_f64() / t_pruned.as_secs_f64()
    );
}
