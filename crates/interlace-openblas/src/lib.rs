//! OpenBLAS's `sgemm` for the linear layers and the attention on burn-flex, loaded at run time.
//!
//! burn-flex multiplies matrices with the `gemm` crate. On the 2-core AVX-512 Xeon of
//! docs/performance.md that reaches 160–230 GFLOP/s at the 2B model's shapes, where OpenBLAS and
//! PyTorch's oneDNN reach 260–300: the linear layers are most of a forward pass, so this gap was
//! most of the gap to PyTorch (lever 12). Its fused attention runs one head at a time on one core
//! (lever 13). [`use_openblas`] loads the system's OpenBLAS the way burn-cuda loads the CUDA
//! driver, at run time, so nothing is needed at build time and a machine without OpenBLAS keeps
//! burn-flex's own kernels. It serves the inference backend (`Flex<f32>`) and the training one
//! (`Autodiff<Flex<f32>>`, forward and every gradient), f32 tensors only.
#![deny(missing_docs)]

mod attention;
mod attention_autodiff;
mod autodiff;
mod inference;
mod sgemm;
mod softmax;

use std::fmt;
use std::sync::OnceLock;

use burn::backend::Flex;
use burn::prelude::{Backend, Tensor};
use burn::tensor::DType;
use interlace_core::attention_kernel::register_attention_kernel;
use interlace_core::linear_kernel::register_linear_kernel;

use crate::sgemm::Sgemm;

/// The environment variable that picks the library: unset for the usual names, `off` to keep
/// burn-flex's matmul, or the path of an OpenBLAS (LP64: 32-bit integers) shared library.
pub const OPENBLAS_ENV: &str = "INTERLACE_BLAS";

/// Library names tried in order when [`OPENBLAS_ENV`] is unset (Debian/Ubuntu's `libopenblas0`,
/// Fedora's `openblas`, a source build, macOS Homebrew).
const LIBRARY_NAMES: [&str; 4] = ["libopenblas.so.0", "libopenblas.so", "libopenblas.0.dylib", "libopenblas.dylib"];

/// Why OpenBLAS is not in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenBlasError {
    /// [`OPENBLAS_ENV`] is `off`.
    Disabled,
    /// No library could be loaded; `tried` lists each name with the loader's message.
    NotFound {
        /// `(name, error)` for every name tried.
        tried: Vec<(String, String)>,
    },
    /// The library has no `cblas_sgemm`.
    NoSgemm {
        /// The library loaded.
        library: String,
        /// The loader's message.
        error: String,
    },
}

impl fmt::Display for OpenBlasError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disabled => write!(f, "OpenBLAS is switched off ({OPENBLAS_ENV}=off)"),
            Self::NotFound { tried } => {
                write!(f, "no OpenBLAS library found (install libopenblas0, or set {OPENBLAS_ENV} to its path)")?;
                tried.iter().try_for_each(|(name, error)| write!(f, "; {name}: {error}"))
            }
            Self::NoSgemm { library, error } => write!(f, "{library} has no cblas_sgemm: {error}"),
        }
    }
}

impl std::error::Error for OpenBlasError {}

/// A loaded library: the handle is kept for the life of the process, so `sgemm` stays valid.
struct Loaded {
    _library: libloading::Library,
    sgemm: Sgemm,
    name: String,
}

static OPENBLAS: OnceLock<Result<Loaded, OpenBlasError>> = OnceLock::new();

/// Makes every linear layer, tied output head and attention (text and vision) on burn-flex
/// (`Flex<f32>` and `Autodiff<Flex<f32>>`, f32 tensors) run through OpenBLAS's `cblas_sgemm`, and
/// returns the library's name and kernel set (`libopenblas.so.0, SkylakeX kernels`).
///
/// A process-wide setting, like `interlace_prune::keep_freed_memory`: the `interlace` CLI calls
/// it first thing in `main`; a library user calls it once, early, before other threads start
/// (the first call sets `OPENBLAS_CORETYPE` while the library loads, to pick its kernels). Later
/// calls return the first one's result. Where it returns an error nothing changes and burn-flex's
/// own kernels stay in use. Results differ from burn-flex's by f32 rounding only: the Qwen-VL
/// fixtures stay within 1.06e-6 of transformers with it (1.04e-6 with burn-flex's), and a
/// training step's gradients within 1.62e-6 of torch's (1.15e-6).
pub fn use_openblas() -> Result<&'static str, OpenBlasError> {
    let loaded = OPENBLAS.get_or_init(|| load(std::env::var(OPENBLAS_ENV).ok().as_deref())).as_ref().map_err(Clone::clone)?;
    register_linear_kernel::<Flex<f32>>(inference::linear);
    register_linear_kernel::<autodiff::Training>(autodiff::linear);
    register_attention_kernel::<Flex<f32>>(attention::attention);
    register_attention_kernel::<autodiff::Training>(attention_autodiff::attention);
    Ok(&loaded.name)
}

/// `cblas_sgemm` of the library [`use_openblas`] loaded, if it did and if it takes `x · Wᵀ` for
/// these operands: both f32, of equal widths. Anything else is left to burn's matmul (which also
/// reports shape errors).
fn sgemm_for<B: Backend>(x: &Tensor<B, 2>, weight: &Tensor<B, 2>) -> Option<Sgemm> {
    let sgemm = loaded_sgemm()?;
    let takes = x.dtype() == DType::F32 && weight.dtype() == DType::F32 && x.dims()[1] == weight.dims()[1];
    takes.then_some(sgemm)
}

/// `cblas_sgemm` of the library [`use_openblas`] loaded, if it did.
fn loaded_sgemm() -> Option<Sgemm> {
    Some(OPENBLAS.get()?.as_ref().ok()?.sgemm)
}

/// Loads the library named by `setting` (the value of [`OPENBLAS_ENV`]).
fn load(setting: Option<&str>) -> Result<Loaded, OpenBlasError> {
    let names: Vec<&str> = match setting.map(str::trim) {
        Some("off") => return Err(OpenBlasError::Disabled),
        Some(path) if !path.is_empty() => vec![path],
        _ => LIBRARY_NAMES.to_vec(),
    };
    let mut tried = Vec::new();
    for name in names {
        // SAFETY: loading a shared library runs its initialisers; OpenBLAS's only set up its
        // thread pool and CPU detection.
        match with_core_type(|| unsafe { libloading::Library::new(name) }) {
            // SAFETY: `cblas_sgemm` has this signature in every LP64 CBLAS (`cblas.h`).
            Ok(library) => match unsafe { library.get::<Sgemm>(b"cblas_sgemm\0") } {
                Ok(symbol) => {
                    let sgemm = *symbol;
                    let name = match core_name(&library) {
                        Some(core) => format!("{name}, {core} kernels"),
                        None => name.to_string(),
                    };
                    return Ok(Loaded { _library: library, sgemm, name });
                }
                Err(error) => return Err(OpenBlasError::NoSgemm { library: name.to_string(), error: error.to_string() }),
            },
            Err(error) => tried.push((name.to_string(), error.to_string())),
        }
    }
    Err(OpenBlasError::NotFound { tried })
}

/// The environment variable through which OpenBLAS (built with `DYNAMIC_ARCH`, as distributions
/// build it) takes its kernel set instead of detecting one.
const CORE_TYPE_ENV: &str = "OPENBLAS_CORETYPE";

/// Runs `load` (the library's first load, when it picks its kernels) with [`CORE_TYPE_ENV`] set
/// to the best kernel set this CPU runs, unless the user set it.
///
/// OpenBLAS detects the CPU from its model number, and a release older than the CPU falls back to
/// its slowest kernels: Debian 12's 0.3.21 takes an Emerald Rapids Xeon for a Prescott (SSE3), and
/// its sgemm then made a forward pass 3.4x slower than burn-flex's own matmul. The kernels are
/// chosen here from the instruction sets instead. The variable is set only while the library
/// loads, which is why [`use_openblas`] belongs at the start of `main`, before other threads run.
fn with_core_type<T>(load: impl FnOnce() -> T) -> T {
    let chosen = match std::env::var_os(CORE_TYPE_ENV) {
        Some(_) => None,
        None => core_type_for_this_cpu(),
    };
    if let Some(core) = chosen {
        std::env::set_var(CORE_TYPE_ENV, core);
    }
    let loaded = load();
    if chosen.is_some() {
        std::env::remove_var(CORE_TYPE_ENV);
    }
    loaded
}

/// OpenBLAS's name for the widest f32 kernels this CPU runs (its `SkylakeX` kernels need AVX-512
/// F/BW/DQ/VL, its `Haswell` ones AVX2 and FMA); `None` leaves OpenBLAS's own detection.
fn core_type_for_this_cpu() -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl") {
            return Some("SkylakeX");
        }
        if has!("avx2") && has!("fma") {
            return Some("Haswell");
        }
    }
    None
}

/// The kernel set the library runs (`openblas_get_corename`), where it says.
fn core_name(library: &libloading::Library) -> Option<String> {
    // SAFETY: OpenBLAS declares `char* openblas_get_corename(void)`, returning a static string.
    let get = unsafe { library.get::<unsafe extern "C" fn() -> *const std::ffi::c_char>(b"openblas_get_corename\0") }.ok()?;
    // SAFETY: as above, a NUL-terminated string that lives as long as the library.
    let name = unsafe { get() };
    (!name.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(name) }.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::flex::FlexDevice;
    use burn::tensor::{Distribution, TensorData, Tolerance};
    use interlace_core::linear_kernel::{linear, linear_kernel};

    #[test]
    fn setting_off_disables_and_a_missing_path_names_what_was_tried() {
        assert!(matches!(load(Some("off")), Err(OpenBlasError::Disabled)));
        let Err(OpenBlasError::NotFound { tried }) = load(Some("/nonexistent/libopenblas.so")) else { panic!("a missing file must not load") };
        assert_eq!(tried.len(), 1);
        assert_eq!(tried[0].0, "/nonexistent/libopenblas.so");
        let message = OpenBlasError::NotFound { tried }.to_string();
        assert!(message.contains("INTERLACE_BLAS") && message.contains("/nonexistent/libopenblas.so"), "{message}");
    }

    /// Loads the library (once per test binary) and registers the kernels. `.ci/run` installs
    /// OpenBLAS and sets `INTERLACE_OPENBLAS_TESTS=require`, so there it must load; elsewhere a
    /// machine without it skips. The kernel choice is checked on the first load only.
    fn loaded() -> Option<&'static str> {
        static USER_CHOSE_KERNELS: OnceLock<bool> = OnceLock::new();
        let user_chose_kernels = *USER_CHOSE_KERNELS.get_or_init(|| std::env::var_os(CORE_TYPE_ENV).is_some());
        let loaded = use_openblas();
        if std::env::var("INTERLACE_OPENBLAS_TESTS").as_deref() == Ok("require") {
            loaded.as_ref().expect("INTERLACE_OPENBLAS_TESTS=require");
        }
        let library = match loaded {
            Ok(library) => library,
            Err(error) => {
                eprintln!("skipped: {error}");
                return None;
            }
        };
        // The kernels chosen from the instruction sets, not OpenBLAS's (possibly outdated) guess.
        if let Some(core) = core_type_for_this_cpu().filter(|_| !user_chose_kernels) {
            assert!(library.ends_with(&format!("{core} kernels")), "{library} should run the {core} kernels");
            assert!(std::env::var_os(CORE_TYPE_ENV).is_none(), "the kernel choice must not stay in the environment");
        }
        Some(library)
    }

    /// `a · bᵀ` in f64 on the host (`a` `[m, k]`, `b` `[n, k]`, both row-major).
    fn product_f64(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|l| a[i * k + l] as f64 * b[j * k + l] as f64).sum::<f64>() as f32;
            }
        }
        c
    }

    fn host<B: burn::prelude::Backend>(t: Tensor<B, 2>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap()
    }

    /// Every layout the models pass (row-major weight, a transposed weight view, a column slice of
    /// x as input) against the f64 product.
    #[test]
    fn linear_matches_an_f64_product_for_each_layout() {
        let Some(library) = loaded() else { return };
        eprintln!("OpenBLAS: {library}");
        let device = FlexDevice;
        let (rows, inner, out) = (37, 70, 29);
        let x = Tensor::<Flex<f32>, 2>::random([rows, inner + 3], Distribution::Normal(0.0, 1.0), &device).slice([0..rows, 2..inner + 2]);
        let w = Tensor::<Flex<f32>, 2>::random([out, inner], Distribution::Normal(0.0, 1.0), &device);
        let expected = TensorData::new(product_f64(&host(x.clone()), &host(w.clone()), rows, inner, out), [rows, out]);
        let w_as_view = Tensor::<Flex<f32>, 2>::from_data(w.clone().transpose().into_data(), &device).transpose();
        for weight in [w.clone(), w_as_view] {
            let y = inference::linear(&x, &weight).expect("f32 inputs are taken");
            y.into_data().assert_approx_eq::<f32>(&expected, Tolerance::absolute(2e-5));
        }
        assert!(linear_kernel::<Flex<f32>>().is_some());
        let y = linear(x.unsqueeze::<3>(), w);
        y.squeeze::<2>().into_data().assert_approx_eq::<f32>(&expected, Tolerance::absolute(2e-5));
    }

    /// Forward and both gradients under autodiff against the f64 products, for a trainable and a
    /// frozen weight.
    #[test]
    fn autodiff_linear_and_its_gradients_match_f64_products() {
        if loaded().is_none() {
            return;
        }
        type Ad = autodiff::Training;
        let device = FlexDevice;
        let (rows, inner, out) = (23, 41, 17);
        let x_host = host(Tensor::<Flex<f32>, 2>::random([rows, inner], Distribution::Normal(0.0, 1.0), &device));
        let w_host = host(Tensor::<Flex<f32>, 2>::random([out, inner], Distribution::Normal(0.0, 1.0), &device));
        let g_host = host(Tensor::<Flex<f32>, 2>::random([rows, out], Distribution::Normal(0.0, 1.0), &device));
        let transpose = |m: &[f32], rows: usize, cols: usize| (0..cols * rows).map(|i| m[(i % rows) * cols + i / rows]).collect::<Vec<f32>>();
        // y = x · Wᵀ; with loss sum(y ⊙ g): ∂x = g · W = g · (Wᵀ)ᵀ, ∂W = gᵀ · x.
        let y_expected = product_f64(&x_host, &w_host, rows, inner, out);
        let dx_expected = product_f64(&g_host, &transpose(&w_host, out, inner), rows, out, inner);
        let dw_expected = product_f64(&transpose(&g_host, rows, out), &transpose(&x_host, rows, inner), out, rows, inner);
        for weight_trains in [true, false] {
            let x = Tensor::<Ad, 2>::from_data(TensorData::new(x_host.clone(), [rows, inner]), &device).require_grad();
            let mut w = Tensor::<Ad, 2>::from_data(TensorData::new(w_host.clone(), [out, inner]), &device);
            if weight_trains {
                w = w.require_grad();
            }
            let g = Tensor::<Ad, 2>::from_data(TensorData::new(g_host.clone(), [rows, out]), &device);
            let y = autodiff::linear(&x, &w).expect("f32 inputs are taken");
            let close = |actual: Vec<f32>, expected: &[f32], shape: [usize; 2]| {
                TensorData::new(actual, shape).assert_approx_eq::<f32>(&TensorData::new(expected.to_vec(), shape), Tolerance::absolute(3e-5))
            };
            close(host(y.clone().inner()), &y_expected, [rows, out]);
            let grads = (y * g).sum().backward();
            close(host(x.grad(&grads).expect("x needs a gradient")), &dx_expected, [rows, inner]);
            match weight_trains {
                true => close(host(w.grad(&grads).expect("W trains")), &dw_expected, [out, inner]),
                false => assert!(w.grad(&grads).is_none()),
            }
        }
    }
}
