//! Run-time choice of burn backend and float dtype.

use burn::tensor::DType;

/// Compute backend, chosen at run time among those compiled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum BackendKind {
    /// CPU through burn-flex (gemm matmul, strided views, flash attention). Feature `flex`,
    /// on by default; also accepted as `flex`.
    #[cfg_attr(feature = "clap", value(alias = "flex"))]
    Cpu,
    /// CPU through burn-ndarray, the older CPU backend. Feature `ndarray`, on by default.
    Ndarray,
    /// GPU through wgpu (Vulkan/Metal/DX12). Feature `wgpu`.
    Wgpu,
    /// NVIDIA GPU through CUDA. Feature `cuda`.
    Cuda,
}

/// Float dtype of weights and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum FloatKind {
    /// 32-bit float.
    F32,
    /// bfloat16 (GPU backends and burn-flex; not ndarray).
    Bf16,
    /// IEEE half (GPU backends and burn-flex; not ndarray).
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
///
/// The `cfg(feature = ...)` checks expand in the calling crate, so a crate using this macro
/// declares the same `flex` / `ndarray` / `wgpu` / `cuda` features and forwards them to this crate.
/// `$body` must evaluate to `Result<_, Box<dyn std::error::Error>>`.
#[macro_export]
macro_rules! with_backend {
    ($kind:expr, |$B:ident, $device:ident| $body:expr) => {{
        match $kind {
            $crate::BackendKind::Cpu => {
                #[cfg(feature = "flex")]
                {
                    type $B = $crate::burn::backend::Flex<f32>;
                    let $device = $crate::burn::backend::flex::FlexDevice;
                    $body
                }
                #[cfg(not(feature = "flex"))]
                Err($crate::not_compiled("flex"))
            }
            $crate::BackendKind::Ndarray => {
                #[cfg(feature = "ndarray")]
                {
                    type $B = $crate::burn::backend::NdArray<f32>;
                    let $device = $crate::burn::backend::ndarray::NdArrayDevice::Cpu;
                    $body
                }
                #[cfg(not(feature = "ndarray"))]
                Err($crate::not_compiled("ndarray"))
            }
            $crate::BackendKind::Wgpu => {
                #[cfg(feature = "wgpu")]
                {
                    type $B = $crate::burn::backend::Wgpu;
                    let $device = $crate::burn::backend::wgpu::WgpuDevice::default();
                    $body
                }
                #[cfg(not(feature = "wgpu"))]
                Err($crate::not_compiled("wgpu"))
            }
            $crate::BackendKind::Cuda => {
                #[cfg(feature = "cuda")]
                {
                    type $B = $crate::burn::backend::Cuda;
                    let $device = $crate::burn::backend::cuda::CudaDevice::default();
                    $body
                }
                #[cfg(not(feature = "cuda"))]
                Err($crate::not_compiled("cuda"))
            }
        }
    }};
}

/// A backend's devices by number, for `--devices 0,1,…` (data-parallel training).
pub trait DeviceIndex: burn::prelude::Backend {
    /// Device number `index`: the CUDA ordinal, or wgpu's discrete GPU of that index. The CPU
    /// backend has one device, which every index names, so several replicas can share it
    /// (data parallelism is then tested without GPUs, not faster).
    fn device_at(index: usize) -> Self::Device;
}

#[cfg(feature = "flex")]
impl DeviceIndex for burn::backend::Flex<f32> {
    fn device_at(_index: usize) -> Self::Device {
        burn::backend::flex::FlexDevice
    }
}

#[cfg(feature = "ndarray")]
impl DeviceIndex for burn::backend::NdArray<f32> {
    fn device_at(_index: usize) -> Self::Device {
        burn::backend::ndarray::NdArrayDevice::Cpu
    }
}

#[cfg(feature = "wgpu")]
impl DeviceIndex for burn::backend::Wgpu {
    fn device_at(index: usize) -> Self::Device {
        burn::backend::wgpu::WgpuDevice::DiscreteGpu(index)
    }
}

#[cfg(feature = "cuda")]
impl DeviceIndex for burn::backend::Cuda {
    fn device_at(index: usize) -> Self::Device {
        burn::backend::cuda::CudaDevice::new(index)
    }
}

/// The devices of `indices`, or `default` alone when none is given; an index listed twice is
/// an error (two replicas on one GPU only slow each other down).
pub fn devices_at<B: DeviceIndex>(indices: &[usize], default: B::Device) -> Result<Vec<B::Device>, String> {
    if indices.is_empty() {
        return Ok(vec![default]);
    }
    for (i, index) in indices.iter().enumerate() {
        if indices[..i].contains(index) {
            return Err(format!("device {index} is listed twice in --devices"));
        }
    }
    Ok(indices.iter().map(|&index| B::device_at(index)).collect())
}

/// The error for a backend whose cargo feature is off (used by [`with_backend!`]).
#[doc(hidden)]
pub fn not_compiled(feature: &str) -> Box<dyn std::error::Error> {
    format!("this `interlace` was built without the `{feature}` backend; rebuild with `--features {feature}`").into()
}

impl std::str::FromStr for BackendKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" | "flex" => Ok(Self::Cpu),
            "ndarray" => Ok(Self::Ndarray),
            "wgpu" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda),
            other => Err(format!("unknown backend `{other}` (cpu, ndarray, wgpu, cuda)")),
        }
    }
}

impl std::str::FromStr for FloatKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            "f16" => Ok(Self::F16),
            other => Err(format!("unknown dtype `{other}` (f32, bf16, f16)")),
        }
    }
}
