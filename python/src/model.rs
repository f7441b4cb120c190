//! MLP models as safetensors bytes, the format `gpujobs mlp-train --save-model` writes
//! and `safetensors.numpy` / `safetensors.torch` load.

use crate::arrays;
use crate::errors;
use gpujobs::Tensor;
use gpujobs::kinds::MlpModel;
use numpy::PyUntypedArray;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// A model's tensors as numpy arrays, layer by layer.
type Arrays<'py> = Vec<Bound<'py, PyAny>>;

fn tensor(a: &Bound<'_, PyUntypedArray>, what: &str) -> PyResult<Tensor> {
    let c = arrays::to_f32(a, what)?;
    Tensor::from_values(c.shape, c.data).map_err(errors::validation_error)
}

/// The safetensors bytes of a model given as its layers' weights (`[in, out]`) and
/// biases (`[out]`).
#[pyfunction]
pub(crate) fn model_to_safetensors<'py>(
    py: Python<'py>,
    weights: Vec<Bound<'py, PyUntypedArray>>,
    biases: Vec<Bound<'py, PyUntypedArray>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let model = MlpModel {
        weights: weights
            .iter()
            .enumerate()
            .map(|(i, w)| tensor(w, &format!("weights.{i}")))
            .collect::<PyResult<_>>()?,
        biases: biases
            .iter()
            .enumerate()
            .map(|(i, b)| tensor(b, &format!("biases.{i}")))
            .collect::<PyResult<_>>()?,
    };
    model
        .validate(&gpujobs::Limits::detect())
        .map_err(errors::validation_error)?;
    let bytes = model.to_safetensors().map_err(errors::validation_error)?;
    Ok(PyBytes::new(py, &bytes))
}

/// A model's weights and biases from safetensors bytes.
#[pyfunction]
pub(crate) fn model_from_safetensors<'py>(
    py: Python<'py>,
    data: &[u8],
) -> PyResult<(Arrays<'py>, Arrays<'py>)> {
    let model = MlpModel::from_safetensors(data).map_err(errors::validation_error)?;
    let (w, b) = model.values().map_err(errors::validation_error)?;
    let arrays = |tensors: &[Tensor],
                  values: Vec<gpujobs::model::tensor::Values>|
     -> PyResult<Vec<Bound<'py, PyAny>>> {
        tensors
            .iter()
            .zip(values)
            .map(|(t, v)| arrays::to_numpy(py, v, t.shape()))
            .collect()
    };
    Ok((arrays(&model.weights, w)?, arrays(&model.biases, b)?))
}
