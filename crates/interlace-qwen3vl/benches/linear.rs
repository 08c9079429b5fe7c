//! Throughput (GFLOP/s) of one `HfLinear` at the Qwen3-VL-2B text-layer shapes, 256 tokens, on
//! burn-flex in f32 (eager, so the call returns with the result computed): the kernel ceiling
//! of the CPU forward pass, which is matmul-bound.
//!
//! `cargo bench -p interlace-qwen3vl --bench linear`; the PyTorch twin, same shapes and
//! threads, is `scripts/bench_linear_pytorch.py`.

use std::time::Duration;

use burn::backend::flex::FlexDevice;
use burn::backend::Flex;
use burn::prelude::Tensor;
use burn::tensor::Distribution;
use criterion::{black_box, Criterion, Throughput};
use interlace_qwen3vl::linear::HfLinear;

type B = Flex<f32>;

/// Tokens per call, as in `scripts/bench_cpu.sh`.
const TOKENS: usize = 256;

/// (name, in, out) of the 2B text layer's projections and its output head.
const SHAPES: [(&str, usize, usize); 5] =
    [("q_proj", 2048, 2048), ("k_proj", 2048, 1024), ("gate_proj", 2048, 6144), ("down_proj", 6144, 2048), ("lm_head", 2048, 151_936)];

fn main() {
    let device = FlexDevice;
    let mut criterion = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).configure_from_args();
    let mut group = criterion.benchmark_group("linear/flex-f32");
    for (name, fan_in, fan_out) in SHAPES {
        let layer = HfLinear::<B>::new(Tensor::random([fan_out, fan_in], Distribution::Normal(0.0, 0.02), &device), None);
        let x = Tensor::<B, 3>::random([1, TOKENS, fan_in], Distribution::Normal(0.0, 1.0), &device);
        // Criterion's "elements" are FLOPs here, so its thousands/s read as GFLOP/s / 1e-6.
        group.throughput(Throughput::Elements((2 * TOKENS * fan_in * fan_out) as u64));
        group.bench_function(format!("{name}/{TOKENS}x{fan_in}x{fan_out}"), |b| b.iter(|| black_box(layer.forward(x.clone()))));
    }
    group.finish();
    criterion.final_summary();
}
