//! numpy arrays in and out.
//!
//! In: any real numeric dtype (the Python layer has turned `float16`, PIL images and
//! byte-swapped arrays into native ones and refused the rest), C- or Fortran-ordered or
//! strided, copied once into a page-aligned buffer of the process's pool, converted to
//! `f32` on the way, with the GIL released for the copy. That buffer is what the job
//! runs on and what the Redis queue sends as a blob: no intermediate Python `bytes`.
//!
//! Out: an output tensor's buffer handed to numpy as the array's memory, without a copy;
//! the array keeps the buffer alive and returns it to the pool when collected.

use crate::errors;
use gpujobs::model::tensor::Values;
use gpujobs::{BufferPool, HostBuf};
use numpy::ndarray::{ArrayView, IxDyn};
use numpy::{
    Element, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;

/// An array's shape and its values as `f32`, in C order.
pub(crate) struct Converted {
    /// The shape.
    pub(crate) shape: Vec<usize>,
    /// The values.
    pub(crate) data: HostBuf,
}

/// Copies `array` into a pooled buffer as `f32`; `what` names it in errors.
pub(crate) fn to_f32(array: &Bound<'_, PyUntypedArray>, what: &str) -> PyResult<Converted> {
    macro_rules! each_dtype {
        ($($t:ty),*) => {
            $(if let Ok(a) = array.cast::<PyArrayDyn<$t>>() {
                return copy_as_f32::<$t>(a, what);
            })*
        };
    }
    each_dtype!(f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);
    let dtype = array
        .dtype()
        .str()
        .map(|s| s.to_string())
        .unwrap_or_default();
    Err(errors::validation(format!(
        "{what}: dtype `{dtype}` is not supported (use float32; float64 and integer arrays are converted)"
    )))
}

/// How a value of an array's element type becomes `f32` (as numpy's `astype` does).
trait AsF32: Element + Copy + Send + Sync {
    fn as_f32(self) -> f32;
}

macro_rules! as_f32 {
    ($($t:ty),*) => { $(impl AsF32 for $t { #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss, trivial_numeric_casts)] fn as_f32(self) -> f32 { self as f32 } })* };
}
as_f32!(f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);

fn copy_as_f32<T: AsF32>(array: &Bound<'_, PyArrayDyn<T>>, what: &str) -> PyResult<Converted> {
    let ro: PyReadonlyArrayDyn<'_, T> = array
        .try_readonly()
        .map_err(|e| errors::validation(format!("{what}: the array cannot be read now: {e}")))?;
    let view = ro.as_array();
    let shape = view.shape().to_vec();
    let len = view.len();
    let mut data = BufferPool::global()
        .take(len)
        .map_err(|e| errors::validation(format!("{what}: shape {shape:?}: {e}")))?;
    let py = array.py();
    // C-contiguous is one straight pass (a memcpy for f32); the rest (Fortran order,
    // strides) one pass in C order. `as_slice` alone would also take a Fortran array.
    let c_order = array
        .is_c_contiguous()
        .then(|| ro.as_slice().ok())
        .flatten();
    match c_order {
        Some(slice) => py.detach(|| {
            for (d, s) in data.as_mut_slice().iter_mut().zip(slice) {
                *d = s.as_f32();
            }
        }),
        None => {
            let out = data.as_mut_slice();
            py.detach(|| {
                for (d, s) in out.iter_mut().zip(view.iter()) {
                    *d = s.as_f32();
                }
            })
        }
    }
    Ok(Converted { shape, data })
}

/// Holds an output's buffer for the numpy array made over it.
#[pyclass(frozen, module = "gpujobs._native")]
pub(crate) struct PooledBuffer {
    values: Values,
}

/// A numpy `float32` array over `values` with `shape`, without copying. Writable when the
/// buffer is this array's alone; read-only when something else in the process still
/// holds it (a worker's cache of graph outputs), so writing cannot change what another
/// job reads.
pub(crate) fn to_numpy<'py>(
    py: Python<'py>,
    values: Values,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let (values, shared) = match values.try_unwrap() {
        Ok(buf) => (Values::from(buf), false),
        Err(v) => (v, true),
    };
    let owner = Bound::new(py, PooledBuffer { values })?;
    let view = ArrayView::from_shape(IxDyn(shape), owner.get().values.as_slice()).map_err(|e| {
        errors::raise(
            "GpujobsError",
            format!(
                "an output of shape {shape:?} does not match its {} values: {e}",
                owner.get().values.as_slice().len()
            ),
            &[],
        )
    })?;
    // SAFETY: the array's memory is the `HostBuf` behind `owner`, which becomes the
    // array's base object and so lives as long as the array; a `Values` buffer is never
    // reallocated or moved (it is behind an `Arc` and only ever read through it).
    #[allow(unsafe_code)]
    let array = unsafe { PyArrayDyn::<f32>::borrow_from_array(&view, owner.clone().into_any()) };
    if shared {
        array.getattr("flags")?.setattr("writeable", false)?;
    }
    Ok(array.into_any())
}
