//! Test support for the interlace workspace: on which burn backends the parity suites run.
//!
//! Every parity suite runs on burn-flex, the default CPU backend. The model, similarity and
//! training-step suites run again on wgpu when a Vulkan device is present. On a machine
//! without a GPU, Mesa's software Vulkan driver (lavapipe, Debian package
//! `mesa-vulkan-drivers`) is such a device: it is slow but exact, and it runs the CubeCL path
//! (kernels, fusion, autotune, autodiff) that the GPU backends share.
//!
//! A suite that finds no device skips its wgpu half and says so on stderr. CI sets
//! `INTERLACE_WGPU_TESTS=require`, which turns a missing device into a failure, so the wgpu
//! half can never be skipped there silently.

use burn::backend::wgpu::WgpuDevice;
use burn::prelude::Backend;
use burn::tensor::DType;

pub use burn::backend::{Flex, Wgpu};

/// The environment variable that decides what a missing Vulkan device means: `require` (fail),
/// `skip` (do not run the wgpu half even where a device exists) or unset (run where one exists).
pub const WGPU_TESTS_VAR: &str = "INTERLACE_WGPU_TESTS";

/// What the wgpu half of a suite should do, read from [`WGPU_TESTS_VAR`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WgpuPolicy {
    /// Run where a device exists, skip (with a note) where none does.
    Auto,
    /// Run, and fail when there is no device.
    Require,
    /// Never run.
    Skip,
}

impl WgpuPolicy {
    /// The policy the environment asks for; an unknown value is a panic naming the valid ones,
    /// so a typo in CI cannot turn into a silent skip.
    pub fn from_env() -> Self {
        match std::env::var(WGPU_TESTS_VAR).as_deref() {
            Err(_) | Ok("") | Ok("auto") => WgpuPolicy::Auto,
            Ok("require") => WgpuPolicy::Require,
            Ok("skip") => WgpuPolicy::Skip,
            Ok(other) => panic!("{WGPU_TESTS_VAR}={other}: expected `auto`, `require` or `skip`"),
        }
    }
}

/// Number of wgpu adapters the machine offers (any kind: discrete, integrated, CPU).
///
/// This enumerates adapters without creating a device, so it does not panic where there is
/// none (creating the default device does).
pub fn wgpu_adapter_count() -> usize {
    // Device type 4 is cubecl-wgpu's "any adapter" (DeviceId type of `DefaultDevice`).
    <Wgpu as Backend>::device_count(4)
}

/// The wgpu device the suites run on, or `None` (after a note on stderr) where the policy is
/// [`WgpuPolicy::Skip`] or no adapter exists under [`WgpuPolicy::Auto`].
///
/// # Panics
/// Under [`WgpuPolicy::Require`] when the machine has no adapter.
pub fn wgpu_device(suite: &str) -> Option<WgpuDevice> {
    let policy = WgpuPolicy::from_env();
    if policy == WgpuPolicy::Skip {
        eprintln!("{suite}: wgpu half skipped ({WGPU_TESTS_VAR}=skip)");
        return None;
    }
    if wgpu_adapter_count() == 0 {
        assert!(
            policy != WgpuPolicy::Require,
            "{suite}: {WGPU_TESTS_VAR}=require but wgpu finds no adapter (on a machine without a GPU, install Mesa's software Vulkan driver: apt-get install mesa-vulkan-drivers)"
        );
        eprintln!("{suite}: wgpu half skipped: no Vulkan device (apt-get install mesa-vulkan-drivers gives a software one)");
        return None;
    }
    Some(WgpuDevice::default())
}

/// Whether `device` computes in `dtype` (storage, conversion and arithmetic); f16 needs the
/// adapter's `shader-f16` feature, which lavapipe has and some GPUs lack.
pub fn wgpu_supports(device: &WgpuDevice, dtype: DType) -> bool {
    <Wgpu as Backend>::supports_dtype(device, dtype)
}
