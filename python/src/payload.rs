//! A job's inputs from Python: dicts, lists, strings, numbers and numpy arrays become
//! the kind's JSON payload, each array a blob (`{"shape": [..], "blob": "t0"}`), as the
//! wire format has it (docs/wire-format.md). Which argument is a tensor the Python layer
//! has decided (it turned lists and images meant as tensors into arrays): here an array
//! is a tensor and everything else is JSON.

use crate::arrays;
use crate::errors;
use gpujobs::Blobs;
use numpy::PyUntypedArray;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

/// Converts `payload` (a dict) into JSON and blobs.
pub(crate) fn convert(payload: &Bound<'_, PyDict>) -> PyResult<(Value, Blobs)> {
    let mut blobs = Blobs::new();
    let json = object(payload, "", &mut blobs)?;
    Ok((json, blobs))
}

fn object(d: &Bound<'_, PyDict>, at: &str, blobs: &mut Blobs) -> PyResult<Value> {
    let mut map = Map::new();
    for (k, v) in d.iter() {
        let key: String = k
            .cast::<PyString>()
            .map_err(|_| errors::validation(format!("{at}: keys must be strings, got {k}")))?
            .to_string();
        let path = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        map.insert(key, value(&v, &path, blobs)?);
    }
    Ok(Value::Object(map))
}

fn value(v: &Bound<'_, PyAny>, at: &str, blobs: &mut Blobs) -> PyResult<Value> {
    if v.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(a) = v.cast::<PyUntypedArray>() {
        let c = arrays::to_f32(a, at)?;
        let name = format!("t{}", blobs.len());
        let shape = c.shape.clone();
        blobs.insert(name.clone(), c.data.into());
        return Ok(serde_json::json!({"shape": shape, "blob": name}));
    }
    if let Ok(i) = v.cast::<PyInt>() {
        if let Ok(n) = i.extract::<i64>() {
            return Ok(Value::Number(n.into()));
        }
        if let Ok(n) = i.extract::<u64>() {
            return Ok(Value::Number(n.into()));
        }
        return Err(errors::validation(format!("{at}: {i} is too large")));
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return float(f.value(), at);
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Value::String(s.to_string()));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        return object(d, at, blobs);
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, item) in v.try_iter()?.enumerate() {
            items.push(value(&item?, &format!("{at}.{i}"), blobs)?);
        }
        return Ok(Value::Array(items));
    }
    // numpy scalars (np.float32(2.0), np.int64(3)) and anything else with `item()`.
    if v.hasattr("item")? && v.hasattr("dtype")? {
        let item = v.call_method0("item")?;
        if !item.is(v) {
            return value(&item, at, blobs);
        }
    }
    let type_name = v
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    Err(errors::validation(format!(
        "{at}: a {type_name} cannot be sent with a job (give numpy arrays, numbers, strings, lists or dicts)"
    )))
}

fn float(f: f64, at: &str) -> PyResult<Value> {
    Number::from_f64(f).map(Value::Number).ok_or_else(|| {
        errors::validation(format!(
            "invalid job: {at}: {f} is not a finite number (NaN and infinities cannot be job parameters; inside arrays they can)"
        ))
    })
}
