//! Graph files for `gpujobs submit --graph`: reading their file inputs, and saving the
//! outputs of the jobs nothing else in the graph reads.
//!
//! Besides the tensor forms of the wire format, an input of a graph file may name a file
//! (relative to the graph file's folder): `{"npy": "x.npy"}` (any numeric dtype, read
//! as `f32`) or `{"image_file": "photo.png"}` (PNG or JPEG, as grey levels in [0, 1]).
//! The data travels as a blob, like the inputs of `gpujobs submit <kind> --input`.

use crate::error::CliError;
use crate::{imageio, inputs};
use gpujobs_core::model::graph::{output_tensors, parents_of};
use gpujobs_core::{BufferPool, Graph, HostBuf, JobRecord};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Reads a graph file and the files its inputs name (each refused over `limit` bytes as
/// `f32`, from its header).
pub fn load(path: &Path, limit: u64) -> Result<Graph, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    let mut graph =
        Graph::from_json(&text).map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut n = 0;
    for env in graph.jobs_mut() {
        let mut blobs = std::mem::take(&mut env.blobs);
        read_files(&mut env.payload, dir, limit, &mut blobs, &mut n)?;
        env.blobs = blobs;
    }
    Ok(graph)
}

fn read_files(
    v: &mut Value,
    dir: &Path,
    limit: u64,
    blobs: &mut gpujobs_core::Blobs,
    n: &mut usize,
) -> Result<(), CliError> {
    match v {
        Value::Object(map) => {
            if map.len() == 1 {
                let file = |k: &str| map.get(k).and_then(Value::as_str).map(|p| dir.join(p));
                let loaded: Option<(Vec<usize>, HostBuf)> = if let Some(p) = file("npy") {
                    let a = inputs::read_npy(&p, limit)?;
                    Some((a.shape, a.data))
                } else if let Some(p) = file("image_file") {
                    let img = imageio::read_capped(&p, BufferPool::global(), limit)
                        .map_err(|e| CliError::input(e.to_string()))?;
                    Some((vec![img.height, img.width], img.data))
                } else {
                    None
                };
                if let Some((shape, data)) = loaded {
                    let name = format!("file{n}");
                    *n += 1;
                    blobs.insert(name.clone(), data.into());
                    *v = serde_json::json!({"shape": shape, "blob": name});
                    return Ok(());
                }
            }
            map.values_mut()
                .try_for_each(|x| read_files(x, dir, limit, blobs, n))
        }
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|x| read_files(x, dir, limit, blobs, n)),
        _ => Ok(()),
    }
}

/// The name a job has in its graph file (`blur` of `{tag}blur`).
pub fn name_of(id: &str) -> &str {
    id.split_once('}').map_or(id, |(_, name)| name)
}

/// Indices of the jobs whose outputs no other job of the graph reads: the results.
pub fn sinks(graph: &Graph) -> Vec<usize> {
    let read: std::collections::HashSet<_> = graph.jobs().iter().flat_map(parents_of).collect();
    (0..graph.jobs().len())
        .filter(|&i| !read.contains(&graph.jobs()[i].id))
        .collect()
}

/// Writes every output tensor of `rec` as `<dir>/<name>.<output>.npy`.
pub fn save_outputs(dir: &Path, rec: &JobRecord) -> Result<Vec<PathBuf>, CliError> {
    let Some(result) = &rec.result else {
        return Ok(Vec::new());
    };
    std::fs::create_dir_all(dir).map_err(|e| CliError::input(format!("{}: {e}", dir.display())))?;
    let mut written = Vec::new();
    for (output, tensor) in output_tensors(&result.output, &result.blobs) {
        let path = dir.join(format!("{}.{output}.npy", name_of(rec.id.as_str())));
        let values = tensor.values()?;
        crate::npy::write(&path, tensor.shape(), &values)
            .map_err(|e| CliError::runtime(format!("{}: {e}", path.display())))?;
        written.push(path);
    }
    Ok(written)
}
