//! Milliseconds per attention call at the 2B model's shapes on burn-flex (f32, random inputs):
//! the models' own attention next to interlace-openblas's kernel, for inference and for a
//! training step (forward and backward).
//!
//! `cargo run --release -p interlace-openblas --example attention_ops` (`SEQ=2048` for long
//! inputs). docs/performance.md (lever 13) records what it measured.

use std::time::Instant;

use burn::backend::flex::FlexDevice;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{Distribution, Tensor};
use interlace_core::attention_kernel::{unregister_attention_kernel, AttentionMask};
use interlace_qwen3vl::attention::causal_attention;

type B = Flex<f32>;
type Ad = Autodiff<Flex<f32>>;

/// Prints the mean time of `iters` calls of `f` after one untimed call.
fn time<T>(name: &str, iters: usize, mut f: impl FnMut() -> T) {
    f();
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    println!("{name:56} {:9.3} ms", start.elapsed().as_secs_f64() * 1e3 / iters as f64);
}

fn main() {
    let device = FlexDevice;
    let seq: usize = std::env::var("SEQ").ok().and_then(|s| s.parse().ok()).unwrap_or(256);
    let iters = if seq > 1024 { 3 } else { 10 };
    println!("OpenBLAS: {:?}", interlace_openblas::use_openblas());
    // Text: 16 query and 8 key/value heads of 128. Vision: 784 patches (a 448 × 448 image), 16 heads of 64.
    let text = |heads: usize| Tensor::<B, 4>::random([1, seq, heads, 128], Distribution::Normal(0.0, 1.0), &device).swap_dims(1, 2);
    let (q, k, v) = (text(16), text(8), text(8));
    let patches = || Tensor::<B, 4>::random([1, 784, 16, 64], Distribution::Normal(0.0, 1.0), &device).swap_dims(1, 2);
    let (vq, vk, vv) = (patches(), patches(), patches());
    let vision = |q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>| {
        interlace_core::attention_kernel::registered_attention(&q, &k, &v, AttentionMask::None).unwrap_or_else(|| {
            let options = burn::tensor::ops::AttentionModuleOptions { scale: None, softcap: None, is_causal: false };
            burn::tensor::module::attention(q, k, v, None, None, options)
        })
    };
    let training = |q: &Tensor<B, 4>, k: &Tensor<B, 4>, v: &Tensor<B, 4>| {
        let [q, k, v] = [q, k, v].map(|t| Tensor::<Ad, 4>::from_inner(t.clone()).require_grad());
        let grads = causal_attention(q.clone(), k, v).sum().backward();
        q.grad(&grads)
    };
    for kernel in ["kernel", "burn"] {
        if kernel == "burn" {
            unregister_attention_kernel::<B>();
            unregister_attention_kernel::<Ad>();
        }
        time(&format!("text causal attention, {seq} tokens ({kernel})"), iters, || causal_attention(q.clone(), k.clone(), v.clone()).into_data());
        time(&format!("text training attention, forward + backward ({kernel})"), iters, || training(&q, &k, &v));
        time(&format!("vision attention, 784 patches ({kernel})"), iters, || vision(vq.clone(), vk.clone(), vv.clone()).into_data());
    }
}
