//! Milliseconds per op of one Qwen3-VL-2B text layer on burn-flex (f32, random weights), the
//! model's own pieces next to the forms they replaced: where a layer's time goes outside GEMM.
//!
//! `cargo run --release -p interlace-qwen3vl --example text_layer_ops` (`SEQ=2048` for long
//! inputs). docs/performance.md records what it measured.

use std::time::Instant;

use burn::backend::flex::FlexDevice;
use burn::backend::Flex;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Distribution, Tensor};
use interlace_qwen3vl::attention::causal_attention;
use interlace_qwen3vl::linear::HfLinear;
use interlace_qwen3vl::norm::RmsNorm;
use interlace_qwen3vl::rope::apply_rotary;
use interlace_qwen3vl::text::{repeat_kv, TextRope};

type B = Flex<f32>;

/// Prints the mean time of `iters` calls of `f` after one untimed call, and returns its output.
fn time<T>(name: &str, iters: usize, mut f: impl FnMut() -> T) -> T {
    let mut out = f();
    let start = Instant::now();
    for _ in 0..iters {
        out = f();
    }
    println!("{name:48} {:9.3} ms", start.elapsed().as_secs_f64() * 1e3 / iters as f64);
    out
}

fn main() {
    let device = FlexDevice;
    let seq: usize = std::env::var("SEQ").ok().and_then(|s| s.parse().ok()).unwrap_or(256);
    // Qwen3-VL-2B's text layer.
    let (hidden, heads, kv_heads, head_dim, intermediate) = (2048, 16, 8, 128, 6144);
    let n_rep = heads / kv_heads;
    let weight = |shape: [usize; 2]| Tensor::<B, 2>::random(shape, Distribution::Normal(0.0, 0.02), &device);
    let x = Tensor::<B, 3>::random([1, seq, hidden], Distribution::Normal(0.0, 1.0), &device);
    let norm = RmsNorm::new(Tensor::ones([hidden], &device), 1e-6);
    let head_norm = RmsNorm::new(Tensor::ones([head_dim], &device), 1e-6);
    let q_proj = HfLinear::new(weight([heads * head_dim, hidden]), None);
    let k_proj = HfLinear::new(weight([kv_heads * head_dim, hidden]), None);
    let o_proj = HfLinear::new(weight([hidden, heads * head_dim]), None);
    let gate_proj = HfLinear::new(weight([intermediate, hidden]), None);
    let down_proj = HfLinear::new(weight([hidden, intermediate]), None);
    let cos = Tensor::<B, 4>::random([1, 1, seq, head_dim], Distribution::Uniform(-1.0, 1.0), &device);
    let sin = Tensor::<B, 4>::random([1, 1, seq, head_dim], Distribution::Uniform(-1.0, 1.0), &device);
    let rope = TextRope::new(cos.clone(), sin.clone());
    let iters = 10;

    let normed = time("input_layernorm", iters, || norm.forward(x.clone()));
    let q = time("q_proj", iters, || q_proj.forward(normed.clone()));
    let k = time("k_proj (v_proj the same)", iters, || k_proj.forward(normed.clone()));
    let q = time("q: split heads + q_norm", iters, || head_norm.forward(q.clone().reshape([1, seq, heads, head_dim])));
    let k = head_norm.forward(k.clone().reshape([1, seq, kv_heads, head_dim]));
    let v = k.clone().swap_dims(1, 2);
    let _ = time("q RoPE, broadcast tables on swapped heads (before)", iters, || apply_rotary(q.clone().swap_dims(1, 2), cos.clone(), sin.clone()));
    let _ = time("k RoPE, broadcast tables on swapped heads (before)", iters, || apply_rotary(k.clone().swap_dims(1, 2), cos.clone(), sin.clone()));
    let q = time("q RoPE, TextRope::rotate (now)", iters, || rope.rotate(q.clone()).swap_dims(1, 2));
    let k = time("k RoPE, TextRope::rotate (now)", iters, || rope.rotate(k.clone()).swap_dims(1, 2));
    let options = AttentionModuleOptions { scale: None, softcap: None, is_causal: true };
    let _ = time("attention on repeated keys (before)", iters, || {
        attention(q.clone(), repeat_kv(k.clone(), n_rep), repeat_kv(v.clone(), n_rep), None, None, options)
    });
    let out = time("causal_attention, grouped (now)", iters, || causal_attention(q.clone(), k.clone(), v.clone()));
    let merged = time("merge heads", iters, || out.clone().swap_dims(1, 2).reshape([1, seq, hidden]));
    let attended = time("o_proj", iters, || o_proj.forward(merged.clone()));
    let residual = time("residual add", iters, || x.clone() + attended.clone());
    let gate = time("gate_proj (up_proj the same)", iters, || gate_proj.forward(residual.clone()));
    let act = time("silu(gate) * up", iters, || burn::tensor::activation::silu(gate.clone()) * gate.clone());
    let _ = time("down_proj", iters, || down_proj.forward(act.clone()));
}
