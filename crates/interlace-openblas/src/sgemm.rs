//! Matrix products of burn-flex tensors through CBLAS's `cblas_sgemm`.

use std::ffi::c_int;

use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::prelude::Tensor;
use burn::tensor::{TensorData, TensorPrimitive};

/// CBLAS's `cblas_sgemm`: `C = alpha · op(A) · op(B) + beta · C`.
pub(crate) type Sgemm = unsafe extern "C" fn(
    order: c_int,
    trans_a: c_int,
    trans_b: c_int,
    m: c_int,
    n: c_int,
    k: c_int,
    alpha: f32,
    a: *const f32,
    lda: c_int,
    b: *const f32,
    ldb: c_int,
    beta: f32,
    c: *mut f32,
    ldc: c_int,
);

/// CBLAS's constants (`cblas.h`).
const CBLAS_ROW_MAJOR: c_int = 101;
const CBLAS_NO_TRANS: c_int = 111;
const CBLAS_TRANS: c_int = 112;

/// How a 2-D f32 tensor is laid out for BLAS: stored transposed (column-major) or not, its
/// leading dimension and its first element's index in the storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlasOperand {
    pub(crate) transposed: bool,
    pub(crate) leading: usize,
    pub(crate) offset: usize,
}

impl BlasOperand {
    /// `[rows, cols]` with unit stride along one axis and a leading stride no shorter than the
    /// other axis; `None` for other views (broadcast, negative or doubly strided ones) and empty
    /// matrices.
    pub(crate) fn of(tensor: &FlexTensor) -> Option<Self> {
        let layout = tensor.layout();
        let (shape, strides) = (layout.shape(), layout.strides());
        let (rows, cols) = (shape[0], shape[1]);
        if rows == 0 || cols == 0 {
            return None;
        }
        let (row_stride, col_stride) = (strides[0], strides[1]);
        let operand = if col_stride == 1 && row_stride >= cols as isize {
            Self { transposed: false, leading: row_stride as usize, offset: layout.start_offset() }
        } else if row_stride == 1 && col_stride >= rows as isize {
            Self { transposed: true, leading: col_stride as usize, offset: layout.start_offset() }
        } else {
            return None;
        };
        // The last element must lie inside the storage (the views burn-flex makes always do).
        let last = operand.offset + (rows - 1) * row_stride as usize + (cols - 1) * col_stride as usize;
        (last < tensor.storage::<f32>().len()).then_some(operand)
    }

    /// The matrix as it is stored (row-major, or its transpose where `transposed`).
    fn stored<'a>(&self, tensor: &'a FlexTensor) -> Matrix<'a> {
        let shape = tensor.layout().shape();
        let (rows, cols) = if self.transposed { (shape[1], shape[0]) } else { (shape[0], shape[1]) };
        Matrix { data: &tensor.storage::<f32>()[self.offset..], rows, cols, leading: self.leading }
    }
}

/// [`BlasOperand::of`], after a contiguous copy where the view has no BLAS form.
fn blas_ready(tensor: FlexTensor) -> Option<(FlexTensor, BlasOperand)> {
    if let Some(operand) = BlasOperand::of(&tensor) {
        return Some((tensor, operand));
    }
    let tensor = tensor.to_contiguous();
    BlasOperand::of(&tensor).map(|operand| (tensor, operand))
}

/// `op(a) · op(b)` for 2-D f32 tensors, where `op(t)` is `tᵀ` when its flag is set: through
/// `sgemm`, or through burn-flex's matmul for products BLAS cannot take (empty, or a size past
/// a C int).
pub(crate) fn product(sgemm: Sgemm, a: FlexTensor, transpose_a: bool, b: FlexTensor, transpose_b: bool) -> FlexTensor {
    let dims = |t: &FlexTensor, transpose: bool| {
        let shape = t.layout().shape();
        if transpose {
            [shape[1], shape[0]]
        } else {
            [shape[0], shape[1]]
        }
    };
    let ([m, k], [k_b, n]) = (dims(&a, transpose_a), dims(&b, transpose_b));
    assert_eq!(k, k_b, "matrix product of [{m}, {k}] and [{k_b}, {n}]");
    let fits = |size: usize| c_int::try_from(size).is_ok();
    let prepared = match [m, n, k].into_iter().all(fits) {
        true => blas_ready(a.clone()).zip(blas_ready(b.clone())),
        false => None,
    };
    let Some(((a, a_layout), (b, b_layout))) = prepared.filter(|((_, a), (_, b))| fits(a.leading) && fits(b.leading)) else {
        return burn_flex_product(a, transpose_a, b, transpose_b);
    };
    let mut c = vec![0.0f32; m * n];
    // A column-major operand is the row-major transpose: asking for its transpose again cancels.
    let (a_matrix, b_matrix) = (a_layout.stored(&a), b_layout.stored(&b));
    let c_matrix = MatrixMut { data: &mut c, rows: m, cols: n, leading: n };
    gemm(sgemm, 1.0, a_matrix, a_layout.transposed != transpose_a, b_matrix, b_layout.transposed != transpose_b, 0.0, c_matrix);
    FlexTensor::from_data(TensorData::new(c, [m, n]))
}

/// A row-major `rows × cols` matrix in a slice, rows `leading` elements apart.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Matrix<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) leading: usize,
}

/// The same for the output of [`gemm`].
#[derive(Debug)]
pub(crate) struct MatrixMut<'a> {
    pub(crate) data: &'a mut [f32],
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) leading: usize,
}

/// Whether a `rows × cols` matrix at `leading` fits in `len` elements and BLAS can take it.
fn valid(len: usize, rows: usize, cols: usize, leading: usize) -> bool {
    let fits = |size: usize| c_int::try_from(size).is_ok();
    rows > 0 && cols > 0 && leading >= cols && (rows - 1) * leading + cols <= len && [rows, cols, leading].into_iter().all(fits)
}

/// `c = alpha · op(a) · op(b) + beta · c` through `sgemm`, `op(m)` being `mᵀ` where its flag is
/// set. Panics where the shapes do not match or a slice is shorter than its matrix: these are the
/// checks that make the call sound.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(sgemm: Sgemm, alpha: f32, a: Matrix, transpose_a: bool, b: Matrix, transpose_b: bool, beta: f32, c: MatrixMut) {
    let dims = |m: &Matrix, transpose: bool| if transpose { (m.cols, m.rows) } else { (m.rows, m.cols) };
    let ((m, k), (k_b, n)) = (dims(&a, transpose_a), dims(&b, transpose_b));
    assert!(k == k_b && (c.rows, c.cols) == (m, n), "gemm of [{m}, {k}] and [{k_b}, {n}] into [{}, {}]", c.rows, c.cols);
    assert!(
        valid(a.data.len(), a.rows, a.cols, a.leading) && valid(b.data.len(), b.rows, b.cols, b.leading) && valid(c.data.len(), c.rows, c.cols, c.leading),
        "gemm operand outside its slice or past a C int"
    );
    let flag = |transpose: bool| if transpose { CBLAS_TRANS } else { CBLAS_NO_TRANS };
    // SAFETY: every matrix lies inside its slice at its leading dimension and every size fits a C
    // int (checked above); `c` is borrowed mutably, so nothing else reads it meanwhile.
    unsafe {
        sgemm(
            CBLAS_ROW_MAJOR,
            flag(transpose_a),
            flag(transpose_b),
            m as c_int,
            n as c_int,
            k as c_int,
            alpha,
            a.data.as_ptr(),
            a.leading as c_int,
            b.data.as_ptr(),
            b.leading as c_int,
            beta,
            c.data.as_mut_ptr(),
            c.leading as c_int,
        );
    }
}

/// The same product through burn-flex's own matmul.
fn burn_flex_product(a: FlexTensor, transpose_a: bool, b: FlexTensor, transpose_b: bool) -> FlexTensor {
    let wrap = |t: FlexTensor, transpose: bool| {
        let t = Tensor::<Flex<f32>, 2>::from_primitive(TensorPrimitive::Float(t));
        if transpose {
            t.transpose()
        } else {
            t
        }
    };
    wrap(a, transpose_a).matmul(wrap(b, transpose_b)).into_primitive().tensor()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::flex::FlexDevice;

    #[test]
    fn operands_take_row_major_and_transposed_views_and_refuse_others() {
        let device = FlexDevice;
        let matrix = Tensor::<Flex<f32>, 2>::zeros([3, 5], &device);
        let of = |t: Tensor<Flex<f32>, 2>| BlasOperand::of(&t.into_primitive().tensor());
        assert_eq!(of(matrix.clone()), Some(BlasOperand { transposed: false, leading: 5, offset: 0 }));
        assert_eq!(of(matrix.clone().transpose()), Some(BlasOperand { transposed: true, leading: 5, offset: 0 }));
        assert_eq!(of(matrix.clone().slice([0..3, 1..4])), Some(BlasOperand { transposed: false, leading: 5, offset: 1 }));
        assert_eq!(of(matrix.clone().slice_dim(1, burn::tensor::s![0..5;2])), None);
        assert_eq!(of(Tensor::<Flex<f32>, 2>::zeros([0, 5], &device)), None);
    }
}
