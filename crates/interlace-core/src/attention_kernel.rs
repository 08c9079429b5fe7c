//! Scaled dot-product attention, with a per-backend replacement kernel.
//!
//! Model crates keep their own attention (grouped products, burn's fused `attention`), which runs
//! on every backend and under autodiff. Before it they call [`registered_attention`]: where a
//! crate registered a faster kernel for the backend with [`register_attention_kernel`]
//! (interlace-openblas does for burn-flex's inference backend), that kernel computes the
//! attention instead; where none is registered, or it declines the inputs, the model's own path
//! runs as before.

use std::any::TypeId;

use burn::prelude::{Backend, Tensor};

use crate::kernel_registry::KernelRegistry;

/// Which keys each query may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionMask {
    /// Every query sees every key (a vision encoder's patches within one image).
    None,
    /// The queries are the last `queries` of the `keys` positions, and query `i` sees the keys up
    /// to its own position `keys - queries + i` (a decoder, with or without a cached prefix).
    Causal,
}

/// A kernel for `softmax(q · kᵀ / √head_dim + mask) · v` with grouped key/value heads: `q` is
/// `[batch, heads, queries, head_dim]`, `k` `[batch, kv_heads, keys, head_dim]`, `v`
/// `[batch, kv_heads, keys, value_dim]`, and query head `h` reads key/value head
/// `h / (heads / kv_heads)`. The result is `[batch, heads, queries, value_dim]`; the softmax runs
/// in f32, as transformers' eager attention does.
///
/// It returns `None` when it does not handle these inputs (another dtype, say), and the caller
/// then runs its own attention.
pub type AttentionKernel<B> = fn(&Tensor<B, 4>, &Tensor<B, 4>, &Tensor<B, 4>, AttentionMask) -> Option<Tensor<B, 4>>;

/// Registered kernels, one `AttentionKernel<B>` per backend type.
static KERNELS: KernelRegistry = KernelRegistry::new();

/// Makes every [`registered_attention`] call on backend `B` use `kernel`, replacing the one
/// registered before.
///
/// A process-wide setting: register once, before the model work starts.
pub fn register_attention_kernel<B: Backend>(kernel: AttentionKernel<B>) {
    KERNELS.register(TypeId::of::<B>(), kernel);
}

/// Removes backend `B`'s kernel, so the models' own attention runs again; returns whether one was
/// registered.
pub fn unregister_attention_kernel<B: Backend>() -> bool {
    KERNELS.unregister(TypeId::of::<B>())
}

/// The kernel registered for backend `B`, if any.
pub fn attention_kernel<B: Backend>() -> Option<AttentionKernel<B>> {
    KERNELS.get::<AttentionKernel<B>>(TypeId::of::<B>())
}

/// The attention of `q` to `k`, `v` (shapes as in [`AttentionKernel`]) by the kernel registered
/// for `B`; `None` when there is none or it declines these inputs, and the caller computes it.
pub fn registered_attention<B: Backend>(q: &Tensor<B, 4>, k: &Tensor<B, 4>, v: &Tensor<B, 4>, mask: AttentionMask) -> Option<Tensor<B, 4>> {
    attention_kernel::<B>().and_then(|kernel| kernel(q, k, v, mask))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::ndarray::NdArrayDevice;
    use burn::backend::NdArray;

    // Only this test registers an attention kernel, and only for f64 NdArray: the process-wide
    // table does not leak into the other tests of this binary.
    type Registered = NdArray<f64>;
    type Untouched = NdArray<f32>;

    /// A recognisable stand-in: returns `v` for causal attention, declines the rest.
    fn echo_values_if_causal(
        _: &Tensor<Registered, 4>,
        _: &Tensor<Registered, 4>,
        v: &Tensor<Registered, 4>,
        mask: AttentionMask,
    ) -> Option<Tensor<Registered, 4>> {
        (mask == AttentionMask::Causal).then(|| v.clone())
    }

    #[test]
    fn registered_kernel_serves_its_backend_only_and_may_decline() {
        let device = NdArrayDevice::Cpu;
        let ones = || Tensor::<Registered, 4>::ones([1, 2, 3, 4], &device);
        assert!(registered_attention(&ones(), &ones(), &ones(), AttentionMask::Causal).is_none());
        register_attention_kernel::<Registered>(echo_values_if_causal);
        let v = Tensor::<Registered, 4>::full([1, 2, 3, 4], 7.0, &device);
        let out = registered_attention(&ones(), &ones(), &v, AttentionMask::Causal).expect("the kernel takes causal attention");
        assert_eq!(out.into_data(), v.into_data());
        assert!(registered_attention(&ones(), &ones(), &ones(), AttentionMask::None).is_none());
        let untouched = Tensor::<Untouched, 4>::ones([1, 2, 3, 4], &device);
        assert!(registered_attention(&untouched, &untouched, &untouched, AttentionMask::Causal).is_none());
        assert!(unregister_attention_kernel::<Registered>());
        assert!(!unregister_attention_kernel::<Registered>());
        assert!(registered_attention(&ones(), &ones(), &ones(), AttentionMask::Causal).is_none());
    }
}
