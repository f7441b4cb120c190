//! Job records (and other queue answers) as Python dicts, outputs as numpy arrays.

use crate::arrays;
use crate::errors;
use gpujobs::model::tensor_json::{Source, tensors};
use gpujobs::{JobRecord, Tensor};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::Value;

/// A JSON value as Python objects (dicts, lists, str, int, float, bool, None).
pub(crate) fn json_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let d = PyDict::new(py);
            for (k, x) in map {
                d.set_item(k, json_to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// Anything serde can write, as Python objects.
pub(crate) fn to_py<'py, T: serde::Serialize>(
    py: Python<'py>,
    v: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_value(v).map_err(|e| {
        errors::raise(
            "GpujobsError",
            format!("cannot convert an answer: {e}"),
            &[],
        )
    })?;
    json_to_py(py, &json)
}

/// A record as a dict (its JSON form, docs/wire-format.md), with `outputs`: each output
/// tensor of a succeeded job as a numpy array by its path (`c`, `image`, `weights.0`),
/// handed over without a copy.
pub(crate) fn record<'py>(py: Python<'py>, mut rec: JobRecord) -> PyResult<Bound<'py, PyDict>> {
    let mut blobs = rec
        .result
        .as_mut()
        .map(|r| std::mem::take(&mut r.blobs))
        .unwrap_or_default();
    let d = to_py(py, &rec)?.cast_into::<PyDict>()?;
    let outputs = PyDict::new(py);
    if let Some(result) = &rec.result {
        for found in tensors(&result.output) {
            let Some(shape) = found.shape.clone() else {
                continue;
            };
            let values = match found.source {
                Source::Blob(name) => blobs.remove(name),
                _ => None,
            };
            let values = match values {
                Some(v) => v,
                None => {
                    // Inline or synthetic: the tensor's own values.
                    let Some(json) = gpujobs::model::graph::output_at(&result.output, &found.path)
                    else {
                        continue;
                    };
                    let Ok(t) = serde_json::from_value::<Tensor>(json.clone()) else {
                        continue;
                    };
                    match t.values() {
                        Ok(v) => v,
                        Err(_) => continue,
                    }
                }
            };
            outputs.set_item(&found.path, arrays::to_numpy(py, values, &shape)?)?;
        }
    }
    d.set_item("outputs", outputs)?;
    Ok(d)
}
