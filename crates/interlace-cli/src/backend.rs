//! Run-time choice of burn backend and float dtype.

use burn::tensor::DType;
use clap::ValueEnum;

/// Compute backend, chosen at run time among those compiled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// CPU (ndarray). Feature `ndarray`, on by default.
    Ndarray,
    /// GPU through wgpu (Vulkan/Metal/DX12). Feature `wgpu`.
    Wgpu,
    /// NVIDIA GPU through CUDA. Feature `cuda`.
    Cuda,
}

/// Float dtype of weights and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FloatKind {
    /// 32-bit float.
    F32,
    /// bfloat16 (GPU backends).
    Bf16,
    /// IEEE half (GPU backends).
    F16,
}

impl FloatKind {
    /// The burn dtype.
    pub fn dtype(self) -> DType {
        match self {
            FloatKind::F32 => DType::F32,
            FloatKind::Bf16 => DType::BF16,
            FloatKind::F16 => DType::F16,
        }
    }
}

/// Calls `$body` with the type alias `$B` bound to the chosen backend and `$device` to its
/// default device; a backend that was not compiled in is an error naming the feature.
#[macro_export]
macro_rules! with_backend {
    ($kind:expr, |$B:ident, $device:ident| $body:expr) => {{
        match $kind {
            $crate::backend::BackendKind::Ndarray => {
                #[cfg(feature = "ndarray")]
                {
                    type $B = burn::backend::NdArray<f32>;
                    let $device = burn::backend::ndarray::NdArrayDevice::Cpu;
                    $body
                }
                #[cfg(not(feature = "ndarray"))]
                Err($crate::backend::not_compiled("ndarray"))
            }
            $crate::backend::BackendKind::Wgpu => {
                #[cfg(feature = "wgpu")]
                {
                    type $B = burn::backend::Wgpu;
                    let $device = burn::backend::wgpu::WgpuDevice::default();
                    $body
                }
                #[cfg(not(feature = "wgpu"))]
                Err($crate::backend::not_compiled("wgpu"))
            }
            $crate::backend::BackendKind::Cuda => {
                #[cfg(feature = "cuda")]
                {
                    type $B = burn::backend::Cuda;
                    let $device = burn::backend::cuda::CudaDevice::default();
                    $body
                }
                #[cfg(not(feature = "cuda"))]
                Err($crate::backend::not_compiled("cuda"))
            }
        }
    }};
}

/// The error for a backend whose cargo feature is off.
#[allow(dead_code)]
pub fn not_compiled(feature: &str) -> Box<dyn std::error::Error> {
    format!("this `interlace` was built without the `{feature}` backend; rebuild with `--features {feature}`").into()
}
