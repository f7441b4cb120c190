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
/// handed over without a copy. What `status` gives.
pub(crate) fn record<'py>(py: Python<'py>, mut rec: JobRecord) -> PyResult<Bound<'py, PyDict>> {
    let outputs = outputs(py, &mut rec)?;
    let d = to_py(py, &rec)?.cast_into::<PyDict>()?;
    d.set_item("outputs", outputs)?;
    Ok(d)
}

/// A finished job's record, kept whole in Rust and turned into a dict only when asked
/// (`Result.record`): a batch of 20,000 results would otherwise build some sixty Python
/// objects each that nobody reads, and Python's garbage collector would walk them all.
#[pyclass(frozen, module = "gpujobs._native")]
pub(crate) struct Record {
    rec: JobRecord,
}

#[pymethods]
impl Record {
    /// The record as a dict (docs/wire-format.md), without outputs.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.rec)
    }
}

/// What a waiting caller needs of a finished record, as a small dict: `id`, `kind`,
/// `state`, `attempts`, `worker`, `error` (`class`, `message`), `device` (as the CLI
/// prints it), `timings`, `summary`, `output` (the kind's output JSON), `outputs` (numpy
/// arrays) and `record` (a [`Record`]).
pub(crate) fn finished<'py>(py: Python<'py>, mut rec: JobRecord) -> PyResult<Bound<'py, PyDict>> {
    let outputs = outputs(py, &mut rec)?;
    let d = PyDict::new(py);
    d.set_item("id", rec.id.as_str())?;
    d.set_item("kind", &rec.kind)?;
    d.set_item("state", rec.state.as_str())?;
    d.set_item("attempts", rec.attempts)?;
    d.set_item("worker", rec.worker.as_deref())?;
    match &rec.error {
        Some(e) => {
            let err = PyDict::new(py);
            err.set_item("class", e.class.as_str())?;
            err.set_item("message", &e.message)?;
            d.set_item("error", err)?;
        }
        None => d.set_item("error", py.None())?,
    }
    if let Some(r) = &rec.result {
        d.set_item("device", r.device.to_string())?;
        d.set_item("timings", to_py(py, &r.timings)?)?;
        d.set_item("summary", &r.summary)?;
        d.set_item("output", json_to_py(py, &r.output)?)?;
    }
    d.set_item("outputs", outputs)?;
    d.set_item("record", Bound::new(py, Record { rec })?)?;
    Ok(d)
}

/// Takes a record's output blobs and makes each output tensor a numpy array by path.
fn outputs<'py>(py: Python<'py>, rec: &mut JobRecord) -> PyResult<Bound<'py, PyDict>> {
    let mut blobs = rec
        .result
        .as_mut()
        .map(|r| std::mem::take(&mut r.blobs))
        .unwrap_or_default();
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
    Ok(outputs)
}
