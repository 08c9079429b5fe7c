//! The row operations of the attention kernels: the softmax over a row's visible keys, its
//! backward step, and a vectorisable `exp`.

/// The softmax of `row[..visible]` in place, and zeros after it (the masked keys).
pub(crate) fn softmax_prefix(row: &mut [f32], visible: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: this CPU has AVX-512 F.
            return unsafe { wide::softmax_prefix_avx512(row, visible) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: this CPU has AVX2.
            return unsafe { wide::softmax_prefix_avx2(row, visible) };
        }
    }
    softmax_prefix_body(row, visible)
}

/// The backward step of [`softmax_prefix`] on one row: `probs` is its output, `grad` the gradient
/// with respect to it on entry and with respect to the scores on return,
/// `∂s = p ⊙ (∂p − Σ p ⊙ ∂p)`. Masked keys (`p = 0`) get 0.
pub(crate) fn softmax_backward(probs: &[f32], grad: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: this CPU has AVX-512 F.
            return unsafe { wide::softmax_backward_avx512(probs, grad) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: this CPU has AVX2.
            return unsafe { wide::softmax_backward_avx2(probs, grad) };
        }
    }
    softmax_backward_body(probs, grad)
}

/// The row operations compiled for wider vector instructions. The crate is built for baseline
/// x86-64 (SSE2, 4 lanes); the bodies are `#[inline(always)]`, so each function here holds a copy
/// compiled for its instruction set. Every copy computes the same values: the sums go through the
/// same [`LANES`] accumulators, and Rust fuses no multiply-add on its own.
#[cfg(target_arch = "x86_64")]
mod wide {
    use super::{softmax_backward_body, softmax_prefix_body};

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn softmax_prefix_avx512(row: &mut [f32], visible: usize) {
        softmax_prefix_body(row, visible)
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn softmax_prefix_avx2(row: &mut [f32], visible: usize) {
        softmax_prefix_body(row, visible)
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn softmax_backward_avx512(probs: &[f32], grad: &mut [f32]) {
        softmax_backward_body(probs, grad)
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn softmax_backward_avx2(probs: &[f32], grad: &mut [f32]) {
        softmax_backward_body(probs, grad)
    }
}

/// Accumulators per reduction: a sum or maximum carried in one variable is a chain of dependent
/// additions that cannot vectorise (f32 addition is not reassociated); 16 independent ones fill
/// an AVX-512 register, and two SSE or AVX ones.
const LANES: usize = 16;

#[inline(always)]
fn softmax_prefix_body(row: &mut [f32], visible: usize) {
    let (live, masked) = row.split_at_mut(visible);
    let max = reduce(live, f32::NEG_INFINITY, |max, x| if x > max { x } else { max });
    live.iter_mut().for_each(|x| *x = exp(*x - max));
    let inverse = reduce(live, 0.0, |sum, x| sum + x).recip();
    live.iter_mut().for_each(|x| *x *= inverse);
    masked.fill(0.0);
}

#[inline(always)]
fn softmax_backward_body(probs: &[f32], grad: &mut [f32]) {
    let mut lanes = [0.0f32; LANES];
    let (p_chunks, g_chunks) = (probs.chunks_exact(LANES), grad.chunks_exact(LANES));
    let tail: f32 = p_chunks.remainder().iter().zip(g_chunks.remainder()).map(|(p, g)| p * g).sum();
    for (p, g) in p_chunks.zip(g_chunks) {
        for ((lane, p), g) in lanes.iter_mut().zip(p).zip(g) {
            *lane += p * g;
        }
    }
    let dot = lanes.iter().sum::<f32>() + tail;
    grad.iter_mut().zip(probs).for_each(|(g, p)| *g = p * (*g - dot));
}

/// Folds `values` with `op` through [`LANES`] accumulators, combined in a fixed order.
#[inline(always)]
fn reduce(values: &[f32], init: f32, op: impl Fn(f32, f32) -> f32 + Copy) -> f32 {
    let mut lanes = [init; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = op(*lane, x);
        }
    }
    lanes.into_iter().chain(tail.iter().copied()).fold(init, op)
}

/// `eˣ` in f32 without branches, so that the softmax loop vectorises (a call to libm's `expf` per
/// element does not). Cephes' `expf`: `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`, a degree-5
/// polynomial for `eʳ`, `2ⁿ` put into the exponent bits. Within 2 ulp of the exact value over the
/// normal range; inputs below -87.3 give 1.3e-38 instead of smaller values or 0, which no
/// softmax sum of at least 1 can tell apart.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that n · LN2_HIGH is exact for the n that occur.
    const LN2_HIGH: f32 = 0.693_359_4;
    const LN2_LOW: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 · 2²³ rounds to the nearest integer (for |x| < 2²²).
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.3);
    let n = (x * LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HIGH - n * LN2_LOW;
    let p = 1.987_569_2e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e_r = p * r * r + r + 1.0;
    e_r * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the Jacobian of the softmax, `∂s_i = Σ_j p_j (δ_ij − p_i) ∂p_j`, in f64.
    #[test]
    fn softmax_backward_applies_the_softmax_jacobian() {
        let mut probs = [0.3f32, -1.2, 2.0, 0.7, 9.0];
        softmax_prefix(&mut probs, 4);
        assert_eq!(probs[4], 0.0);
        assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let upstream = [0.5f32, -2.0, 1.5, 0.25, 3.0];
        let mut grad = upstream;
        softmax_backward(&probs, &mut grad);
        for i in 0..5 {
            let expected: f64 = (0..5).map(|j| probs[i] as f64 * (f64::from(u8::from(i == j)) - probs[j] as f64) * upstream[j] as f64).sum();
            assert!((grad[i] as f64 - expected).abs() < 1e-6, "{i}: {} against {expected}", grad[i]);
        }
    }

    #[test]
    fn exp_is_within_two_ulp_over_the_softmax_range() {
        let mut worst = 0.0f64;
        for i in 0..=1_000_000 {
            let x = -87.0 + 175.0 * i as f32 / 1_000_000.0;
            let exact = (x as f64).exp();
            worst = worst.max(((exp(x) as f64 - exact) / exact).abs());
        }
        assert!(worst < 2.0 * f32::EPSILON as f64, "worst relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1000.0) > 0.0 && exp(-1000.0) < 1.3e-38, "{}", exp(-1000.0));
    }
}
