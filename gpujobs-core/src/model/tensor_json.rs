//! The one walk over a job's JSON (a payload or an output) that finds its tensors.
//!
//! A tensor in JSON is an object with a `shape` array and one source key (see
//! [`crate::model::tensor`]): `synthetic`, `data`, `data_b64`, `blob`, `url` or
//! `from`. Everything that needs a job's tensors — its blob names, the parents it
//! reads, the outputs a worker caches, the `url` tensors a worker's queue fetches, the
//! paths of outputs written to object storage, the names of a graph file — finds them
//! here, so a new tensor source is one edit: a [`Source`] variant and its key.
//!
//! The walk visits tensors in one fixed order (object fields as serde_json's map
//! iterates them, arrays by index), the same for every caller, and does not look
//! inside a tensor.

use crate::model::tensor::OutputRef;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Where a tensor found in JSON takes its values from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source<'a> {
    /// `synthetic`: generated where the job runs.
    Synthetic,
    /// `data` or `data_b64`: values inline in the JSON.
    Inline,
    /// `blob`: the named blob beside the job's JSON.
    Blob(&'a str),
    /// `url`: an object in object storage.
    Url(&'a str),
    /// `from`: another job's output (a graph edge).
    From(OutputRef),
}

/// One tensor found in a job's JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Found<'a> {
    /// Its place in the JSON: field names and array indices joined by `.` (`"image"`,
    /// `"weights.0"`, `"inputs.a"`), the form [`OutputRef::output`] uses.
    pub path: String,
    /// Its declared shape; `None` when the `shape` array is not a list of sizes.
    pub shape: Option<Vec<usize>>,
    /// Where its values come from.
    pub source: Source<'a>,
}

impl Found<'_> {
    /// The number of elements the shape holds; `None` when there is no valid shape or
    /// the product overflows.
    pub fn numel(&self) -> Option<usize> {
        numel_of(self.shape.as_ref()?)
    }
}

/// The source of the tensor `map` is, or `None` when `map` is not a tensor (no `shape`
/// array, no known source, or a `from` that does not name a job's output).
pub fn source_of(map: &Map<String, Value>) -> Option<Source<'_>> {
    if !matches!(map.get("shape"), Some(Value::Array(_))) {
        return None;
    }
    if let Some(Value::String(name)) = map.get("blob") {
        return Some(Source::Blob(name));
    }
    if let Some(Value::String(url)) = map.get("url") {
        return Some(Source::Url(url));
    }
    if let Some(from) = map.get("from") {
        return OutputRef::deserialize(from).ok().map(Source::From);
    }
    if map.contains_key("synthetic") {
        return Some(Source::Synthetic);
    }
    if map.contains_key("data") || map.contains_key("data_b64") {
        return Some(Source::Inline);
    }
    None
}

/// The elements `shape` holds; `None` when the product overflows.
pub fn numel_of(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// The `shape` of the tensor object `map` as sizes; `None` when it is missing or not a
/// list of sizes.
pub fn shape_of(map: &Map<String, Value>) -> Option<Vec<usize>> {
    match map.get("shape")? {
        Value::Array(dims) => dims
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect(),
        _ => None,
    }
}

fn join(path: &str, part: &str) -> String {
    if path.is_empty() {
        part.to_string()
    } else {
        format!("{path}.{part}")
    }
}

/// Every tensor of `json`, in document order.
pub fn tensors(json: &Value) -> Vec<Found<'_>> {
    fn walk<'a>(v: &'a Value, path: &str, out: &mut Vec<Found<'a>>) {
        match v {
            Value::Object(map) => {
                if let Some(source) = source_of(map) {
                    out.push(Found {
                        path: path.to_string(),
                        shape: shape_of(map),
                        source,
                    });
                    return;
                }
                for (k, x) in map {
                    walk(x, &join(path, k), out);
                }
            }
            Value::Array(items) => {
                for (i, x) in items.iter().enumerate() {
                    walk(x, &join(path, &i.to_string()), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(json, "", &mut out);
    out
}

/// What [`for_each_tensor_mut`] calls for each tensor: its path and its object.
type Visitor<'v, E> = dyn FnMut(&str, &mut Map<String, Value>) -> Result<(), E> + 'v;

/// Calls `visit` with the path and the object of every tensor of `json`, in document
/// order, and lets it rewrite the object (a `url` or `from` source replaced by a
/// `blob`, a graph file's job name by its id). Stops at the first error.
pub fn for_each_tensor_mut<E>(
    json: &mut Value,
    mut visit: impl FnMut(&str, &mut Map<String, Value>) -> Result<(), E>,
) -> Result<(), E> {
    fn walk<E>(v: &mut Value, path: &str, visit: &mut Visitor<'_, E>) -> Result<(), E> {
        match v {
            Value::Object(map) => {
                if is_tensor(map) {
                    return visit(path, map);
                }
                for (k, x) in map.iter_mut() {
                    walk(x, &join(path, k), visit)?;
                }
                Ok(())
            }
            Value::Array(items) => {
                for (i, x) in items.iter_mut().enumerate() {
                    walk(x, &join(path, &i.to_string()), visit)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    walk(json, "", &mut visit)
}

/// Whether `map` is a tensor for the mutable walk: a `shape` array and a source key. A
/// `from` counts whatever it names, so that a graph file's `from` (a job's name, not
/// yet an id) is visited too.
fn is_tensor(map: &Map<String, Value>) -> bool {
    source_of(map).is_some()
        || (matches!(map.get("shape"), Some(Value::Array(_))) && map.contains_key("from"))
}

/// The names of the blobs `json` reads, in document order.
pub fn blob_names(json: &Value) -> Vec<String> {
    tensors(json)
        .into_iter()
        .filter_map(|t| match t.source {
            Source::Blob(name) => Some(name.to_string()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_every_source_with_its_path_and_skips_what_is_not_a_tensor() {
        let id = crate::model::id::JobId::new();
        let v = json!({
            "a": {"shape": [2, 2], "blob": "t0"},
            "layers": [{"shape": [3], "synthetic": {"seed": 1}}, {"shape": [1], "data": [1.0]}],
            "x": {"shape": [4], "url": "s3://b/k"},
            "y": {"shape": [4], "from": {"job": id.to_string(), "output": "c"}},
            "bad": {"shape": [4], "from": {"job": id.to_string()}},
            "no_shape": {"blob": "t9"},
            "sigma": 2.0
        });
        let found = tensors(&v);
        let got: Vec<(&str, &Source<'_>)> =
            found.iter().map(|f| (f.path.as_str(), &f.source)).collect();
        assert_eq!(
            got,
            vec![
                ("a", &Source::Blob("t0")),
                ("layers.0", &Source::Synthetic),
                ("layers.1", &Source::Inline),
                ("x", &Source::Url("s3://b/k")),
                (
                    "y",
                    &Source::From(OutputRef {
                        job: id.clone(),
                        output: "c".into()
                    })
                ),
            ]
        );
        assert_eq!(found[0].shape, Some(vec![2, 2]));
        assert_eq!(found[0].numel(), Some(4));
        assert_eq!(blob_names(&v), vec!["t0".to_string()]);
    }

    #[test]
    fn a_shape_that_overflows_or_is_not_sizes_has_no_numel() {
        let v = json!({"a": {"shape": [u64::MAX, 3], "blob": "t0"}, "b": {"shape": [-1], "blob": "t1"}});
        let found = tensors(&v);
        assert_eq!(found[0].numel(), None);
        assert_eq!(found[1].shape, None);
    }

    #[test]
    fn the_mutable_walk_rewrites_in_place_and_visits_unparsed_froms() {
        let mut v = json!({
            "a": {"shape": [2], "url": "file:///x"},
            "b": {"shape": [2], "from": {"job": "first", "output": "c"}},
            "c": 3
        });
        let mut seen = Vec::new();
        for_each_tensor_mut(&mut v, |path, map| {
            seen.push(path.to_string());
            if map.remove("url").is_some() {
                map.insert("blob".into(), json!("url:0"));
            }
            Ok::<_, ()>(())
        })
        .unwrap();
        assert_eq!(seen, vec!["a", "b"]);
        assert_eq!(v["a"], json!({"shape": [2], "blob": "url:0"}));
    }
}
