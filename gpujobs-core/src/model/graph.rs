//! Job graphs: jobs whose inputs are other jobs' outputs.
//!
//! A tensor input may be `{"shape": [..], "from": {"job": "<id>", "output": "image"}}`
//! (in Rust [`Tensor::output_of`]): the job then waits until that job has succeeded, and
//! the worker that runs it reads the parent's output (from its own cache when it made
//! it, else from the queue) instead of data sent with the job. A graph is submitted
//! whole ([`crate::Client::submit_graph`], `gpujobs submit --graph`), with ids chosen
//! before submitting so the edges can be written first; cycles and references to jobs
//! outside the graph are refused at submit. When a parent fails, dies or is cancelled,
//! every job that depends on it, directly or not, ends `failed` naming it.
//!
//! Ids of a graph's jobs are `{<tag>}<name>`: the tag is shared by the whole graph, and
//! a partitioned queue places a job by its tag alone (as Redis Cluster does with hash
//! tags), so one graph lives in one partition and each hand-off (a parent's success
//! releasing its children, a failure reaching every dependant) is one atomic step.

use crate::model::envelope::JobEnvelope;
use crate::model::error::JobError;
use crate::model::id::JobId;
use crate::model::job::Job;
use crate::model::tensor::{Blobs, OutputRef, Tensor};
use crate::model::tensor_json::{
    Source, for_each_tensor_mut, numel_of, shape_of, source_of, tensors,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The most jobs one graph may hold.
pub const MAX_GRAPH_JOBS: usize = 10_000;

/// Why a graph was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// A job name is empty, too long, or holds characters other than letters, digits,
    /// `_`, `-` and `.`.
    #[error("job name `{0}` is not 1 to 64 letters, digits, `_`, `-` or `.`")]
    BadName(String),
    /// Two jobs have one id.
    #[error("job {0} appears twice in the graph")]
    Duplicate(JobId),
    /// An input names a job that is not in the graph.
    #[error("job {job} reads {output}, but no job {parent} is in the graph")]
    UnknownParent {
        /// The job with the input.
        job: JobId,
        /// The job it names.
        parent: JobId,
        /// Which output it names.
        output: String,
    },
    /// The jobs' inputs form a cycle, so none of them could ever start.
    #[error("the graph has a cycle through {}", .0.iter().map(|j| j.to_string()).collect::<Vec<_>>().join(" -> "))]
    Cycle(Vec<JobId>),
    /// A job is marked ephemeral, but no job of the graph reads its outputs: they
    /// would never reach anyone.
    #[error("job {0} is ephemeral, but no job of the graph reads its outputs")]
    EphemeralSink(JobId),
    /// The graph has no jobs, or more than [`MAX_GRAPH_JOBS`].
    #[error("a graph needs 1 to {MAX_GRAPH_JOBS} jobs, got {0}")]
    Size(usize),
    /// An input names a job the graph has no job of that name for (jobs named, not yet
    /// given ids: a graph file, the Python package's `Graph`).
    #[error("job `{job}` reads from `{parent}`, which is not a job of the graph")]
    UnknownName {
        /// The job with the input.
        job: String,
        /// The name it reads from.
        parent: String,
    },
    /// A graph file could not be read.
    #[error("graph file: {0}")]
    File(String),
}

/// The tag of a graph job's id (`g1` of `{g1}blur`), if it has one.
pub fn graph_tag(id: &str) -> Option<&str> {
    let open = id.find('{')?;
    let close = open + id[open..].find('}')?;
    let tag = &id[open + 1..close];
    (!tag.is_empty()).then_some(tag)
}

/// One input of a job that names another job's output.
#[derive(Debug, Clone, PartialEq)]
pub struct InputRef {
    /// The output it names.
    pub from: OutputRef,
    /// The shape the job declares for it.
    pub shape: Vec<usize>,
}

/// The inputs of a payload that name other jobs' outputs, in document order.
pub fn refs_in(payload: &Value) -> Vec<InputRef> {
    tensors(payload)
        .into_iter()
        .filter_map(|t| match (t.source, t.shape) {
            (Source::From(from), Some(shape)) => Some(InputRef { from, shape }),
            _ => None,
        })
        .collect()
}

/// The distinct jobs whose outputs `env` reads, in the order they first appear.
pub fn parents_of(env: &JobEnvelope) -> Vec<JobId> {
    let mut seen = HashSet::new();
    refs_in(&env.payload)
        .into_iter()
        .map(|r| r.from.job)
        .filter(|j| seen.insert(j.clone()))
        .collect()
}

/// Checks a graph (distinct ids, every parent in the graph, no cycle) and returns the
/// order to record its jobs in: every parent before its children.
pub fn order(jobs: &[JobEnvelope]) -> Result<Vec<usize>, GraphError> {
    if jobs.is_empty() || jobs.len() > MAX_GRAPH_JOBS {
        return Err(GraphError::Size(jobs.len()));
    }
    let mut index = HashMap::with_capacity(jobs.len());
    for (i, j) in jobs.iter().enumerate() {
        if index.insert(j.id.clone(), i).is_some() {
            return Err(GraphError::Duplicate(j.id.clone()));
        }
    }
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); jobs.len()];
    let mut pending = vec![0usize; jobs.len()];
    for (i, j) in jobs.iter().enumerate() {
        for r in refs_in(&j.payload) {
            let Some(&p) = index.get(&r.from.job) else {
                return Err(GraphError::UnknownParent {
                    job: j.id.clone(),
                    parent: r.from.job,
                    output: format!("`{}`", r.from.output),
                });
            };
            if !children[p].contains(&i) {
                children[p].push(i);
                pending[i] += 1;
            }
        }
    }
    if let Some(i) = (0..jobs.len()).find(|&i| jobs[i].ephemeral && children[i].is_empty()) {
        return Err(GraphError::EphemeralSink(jobs[i].id.clone()));
    }
    let mut ready: Vec<usize> = (0..jobs.len()).filter(|&i| pending[i] == 0).collect();
    let mut out = Vec::with_capacity(jobs.len());
    while let Some(i) = ready.pop() {
        out.push(i);
        for &c in &children[i] {
            pending[c] -= 1;
            if pending[c] == 0 {
                ready.push(c);
            }
        }
    }
    if out.len() < jobs.len() {
        return Err(GraphError::Cycle(cycle(jobs, &children, &pending)));
    }
    Ok(out)
}

/// One cycle among the jobs left with pending parents, for the error message.
fn cycle(jobs: &[JobEnvelope], children: &[Vec<usize>], pending: &[usize]) -> Vec<JobId> {
    let Some(start) = (0..jobs.len()).find(|&i| pending[i] > 0) else {
        return Vec::new();
    };
    // Walk from child to a parent that is still pending until a job repeats.
    let parent_of =
        |c: usize| (0..jobs.len()).find(|&p| pending[p] > 0 && children[p].contains(&c));
    let mut path = vec![start];
    let mut at = start;
    while let Some(p) = parent_of(at) {
        if let Some(pos) = path.iter().position(|&x| x == p) {
            // path[k + 1] is a parent of path[k]: read backwards, it follows the edges.
            let mut cyc = vec![jobs[p].id.clone()];
            cyc.extend(path[pos..].iter().rev().map(|&i| jobs[i].id.clone()));
            return cyc;
        }
        path.push(p);
        at = p;
    }
    path.iter().map(|&i| jobs[i].id.clone()).collect()
}

/// A graph being built: jobs with names, ids known before anything is submitted.
///
/// ```
/// use gpujobs_core::{Graph, Tensor};
/// use gpujobs_core::kinds::{FilterOp, ImageFilter};
///
/// let mut g = Graph::new();
/// let image = Tensor::synthetic(vec![512, 512], 1, 0.0, 1.0);
/// let blur = g.add("blur", ImageFilter { image, filter: FilterOp::GaussianBlur { sigma: 2.0 } }).unwrap();
/// let edges = ImageFilter { image: Tensor::output_of(&blur, "image", vec![512, 512]), filter: FilterOp::Sobel };
/// g.add("edges", edges).unwrap();
/// assert_eq!(g.jobs().len(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct Graph {
    tag: String,
    jobs: Vec<JobEnvelope>,
}

impl Default for Graph {
    fn default() -> Self {
        Self::new()
    }
}

impl Graph {
    /// An empty graph with a fresh tag.
    pub fn new() -> Self {
        Graph {
            tag: JobId::new().to_string(),
            jobs: Vec::new(),
        }
    }

    /// The id the job named `name` gets in this graph: `{<tag>}<name>`.
    pub fn id(&self, name: &str) -> Result<JobId, GraphError> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !ok {
            return Err(GraphError::BadName(name.to_string()));
        }
        JobId::parse(&format!("{{{}}}{name}", self.tag))
            .ok_or_else(|| GraphError::BadName(name.to_string()))
    }

    /// Adds a typed job under `name`, with default options; returns its id, for the
    /// inputs of later jobs ([`Tensor::output_of`]).
    pub fn add<J: Job>(&mut self, name: &str, job: J) -> Result<JobId, GraphError> {
        let env = JobEnvelope::new(job).map_err(|e| GraphError::File(e.to_string()))?;
        self.add_envelope(name, env)
    }

    /// Adds an envelope (priority, device, attempts already set) under `name`.
    pub fn add_envelope(&mut self, name: &str, mut env: JobEnvelope) -> Result<JobId, GraphError> {
        let id = self.id(name)?;
        if self.jobs.iter().any(|j| j.id == id) {
            return Err(GraphError::Duplicate(id));
        }
        env.id = id.clone();
        self.jobs.push(env);
        Ok(id)
    }

    /// The jobs, in the order they were added.
    pub fn jobs(&self) -> &[JobEnvelope] {
        &self.jobs
    }

    /// The jobs, to adjust before submitting (options, data read from files).
    pub fn jobs_mut(&mut self) -> &mut [JobEnvelope] {
        &mut self.jobs
    }

    /// The jobs, for submitting.
    pub fn into_jobs(self) -> Vec<JobEnvelope> {
        self.jobs
    }

    /// Reads a graph file: `{"jobs": [{"name": "blur", "kind": ..., "payload": ...}, ..]}`
    /// where each job is an envelope (docs/wire-format.md) with a `name` instead of an
    /// `id`, and `from.job` names another job of the file.
    pub fn from_json(text: &str) -> Result<Graph, GraphError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            jobs: Vec<Value>,
        }
        let file: File = serde_json::from_str(text).map_err(|e| GraphError::File(e.to_string()))?;
        let mut g = Graph::new();
        let mut names = BTreeMap::new();
        for (i, job) in file.jobs.iter().enumerate() {
            let name = job
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| GraphError::File(format!("job {i} has no `name`")))?;
            names.insert(name.to_string(), g.id(name)?);
        }
        for (i, mut job) in file.jobs.into_iter().enumerate() {
            let Some(obj) = job.as_object_mut() else {
                return Err(GraphError::File(format!("job {i} is not an object")));
            };
            let name = obj
                .remove("name")
                .and_then(|n| n.as_str().map(str::to_string))
                .unwrap_or_default();
            if obj.contains_key("id") {
                return Err(GraphError::File(format!(
                    "job `{name}` has an `id`; jobs of a graph file are named by `name`"
                )));
            }
            resolve_names(
                obj.get_mut("payload").unwrap_or(&mut Value::Null),
                &names,
                &name,
            )?;
            let env: JobEnvelope = serde_json::from_value(job)
                .map_err(|e| GraphError::File(format!("job `{name}`: {e}")))?;
            g.add_envelope(&name, env)?;
        }
        Ok(g)
    }
}

/// Replaces the job names in the `from` references of `payload` (the input of the job
/// named `job`) by the graph's ids: how a graph whose jobs name each other (a graph
/// file, the Python package's `Graph`) is turned into one that names ids.
pub fn resolve_names(
    payload: &mut Value,
    names: &BTreeMap<String, JobId>,
    job: &str,
) -> Result<(), GraphError> {
    for_each_tensor_mut(payload, |_, map| {
        let Some(Value::Object(from)) = map.get_mut("from") else {
            return Ok(());
        };
        let Some(Value::String(parent)) = from.get_mut("job") else {
            return Ok(());
        };
        let id = names
            .get(parent.as_str())
            .ok_or_else(|| GraphError::UnknownName {
                job: job.to_string(),
                parent: parent.clone(),
            })?;
        *parent = id.to_string();
        Ok(())
    })
}

/// The JSON at `path` (`"image"`, `"weights.0"`: fields and array indices between dots)
/// of a job's output.
pub fn output_at<'a>(output: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = output;
    for part in path.split('.') {
        at = match at {
            Value::Object(m) => m.get(part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(at)
}

/// The tensor at `path` (`"image"`, `"weights.0"`) of a job's output JSON, with its
/// values from `blobs`; `None` when the output has no tensor there.
pub fn find_output(output: &Value, blobs: &Blobs, path: &str) -> Option<Tensor> {
    let mut t: Tensor = serde_json::from_value(output_at(output, path)?.clone()).ok()?;
    t.resolve(blobs).ok()?;
    t.stored().is_some().then_some(t)
}

/// Every tensor of a job's output JSON held in `blobs`, by path: what a worker caches.
pub fn output_tensors(output: &Value, blobs: &Blobs) -> Vec<(String, Tensor)> {
    tensors(output)
        .into_iter()
        .filter_map(|t| {
            let found = find_output(output, blobs, &t.path)?;
            Some((t.path, found))
        })
        .collect()
}

/// Replaces every `from` input of `env` by the values in `resolved`, as blobs named
/// `from:<n>`, in the shape the job declared (which must hold as many elements as the
/// output: a reshape, never a copy). A reference missing from `resolved` or of another
/// size fails the job for good, naming the parent.
pub fn substitute(
    env: &mut JobEnvelope,
    resolved: &HashMap<OutputRef, Tensor>,
) -> Result<(), JobError> {
    let mut n = 0;
    let blobs = &mut env.blobs;
    for_each_tensor_mut(&mut env.payload, |_, map| {
        let (Some(Source::From(from)), Some(shape)) = (source_of(map), shape_of(map)) else {
            return Ok(());
        };
        let t = resolved
            .get(&from)
            .ok_or_else(|| JobError::permanent(format!("input {from} is not available")))?;
        // The declared shape may view the output in another shape of the same size (a
        // row-major reshape: a [64, 64] product read as a [4096] vector).
        if numel_of(t.shape()) != numel_of(&shape) {
            return Err(JobError::permanent(format!(
                "input {from} has shape {:?}, but the job declares {shape:?}",
                t.shape()
            )));
        }
        let name = format!("from:{n}");
        n += 1;
        if let Some(values) = t.stored() {
            blobs.insert(name.clone(), values.clone());
        }
        *map = serde_json::Map::new();
        map.insert("shape".into(), serde_json::json!(shape));
        map.insert("blob".into(), Value::String(name));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{FilterOp, ImageFilter, VectorAdd};

    fn add(g: &mut Graph, name: &str, a: Tensor, b: Tensor) -> JobId {
        g.add(name, VectorAdd { a, b }).unwrap()
    }

    #[test]
    fn tags_place_a_graph_together() {
        assert_eq!(graph_tag("{g1}blur"), Some("g1"));
        assert_eq!(graph_tag("plain"), None);
        assert_eq!(graph_tag("{}x"), None);
        let g = Graph::new();
        let id = g.id("a.b-c_1").unwrap();
        assert_eq!(graph_tag(id.as_str()), Some(g.tag.as_str()));
        assert!(g.id("no spaces").is_err());
        assert!(g.id("").is_err());
        assert!(g.id("{x}").is_err());
    }

    #[test]
    fn order_puts_parents_first_and_refuses_cycles_and_strangers() {
        let mut g = Graph::new();
        let s = |seed| Tensor::synthetic(vec![4], seed, 0.0, 1.0);
        let a = add(&mut g, "a", s(1), s(2));
        let b = add(&mut g, "b", s(3), s(4));
        let c = add(
            &mut g,
            "c",
            Tensor::output_of(&a, "c", vec![4]),
            Tensor::output_of(&b, "c", vec![4]),
        );
        let _d = add(
            &mut g,
            "d",
            Tensor::output_of(&c, "c", vec![4]),
            Tensor::output_of(&c, "c", vec![4]),
        );
        let jobs = g.jobs().to_vec();
        let ord = order(&jobs).unwrap();
        let pos = |i: usize| ord.iter().position(|&x| x == i).unwrap();
        assert!(pos(0) < pos(2) && pos(1) < pos(2) && pos(2) < pos(3));
        assert_eq!(parents_of(&jobs[3]), vec![c.clone()]);

        // A reference to a job outside the graph.
        let mut lone = Graph::new();
        add(
            &mut lone,
            "x",
            Tensor::output_of(&JobId::parse("elsewhere").unwrap(), "c", vec![4]),
            s(1),
        );
        assert!(matches!(
            order(lone.jobs()),
            Err(GraphError::UnknownParent { .. })
        ));

        // x reads y, y reads x.
        let mut cyc = Graph::new();
        let x = cyc.id("x").unwrap();
        let y = cyc.id("y").unwrap();
        add(&mut cyc, "x", Tensor::output_of(&y, "c", vec![4]), s(1));
        add(&mut cyc, "y", Tensor::output_of(&x, "c", vec![4]), s(1));
        add(&mut cyc, "z", s(1), s(2));
        match order(cyc.jobs()) {
            Err(GraphError::Cycle(path)) => {
                assert!(path.contains(&x) && path.contains(&y), "{path:?}");
                assert_eq!(path.first(), path.last());
            }
            other => panic!("expected a cycle, got {other:?}"),
        }
        assert!(matches!(order(&[]), Err(GraphError::Size(0))));
    }

    #[test]
    fn a_graph_file_names_jobs_and_their_inputs() {
        let text = r#"{"jobs": [
          {"name": "blur", "kind": "image-filter", "payload": {"image": {"shape": [8, 8], "synthetic": {"seed": 1}}, "filter": {"op": "gaussian-blur", "sigma": 1.0}}},
          {"name": "edges", "kind": "image-filter", "priority": "high", "payload": {"image": {"shape": [8, 8], "from": {"job": "blur", "output": "image"}}, "filter": {"op": "sobel"}}}
        ]}"#;
        let g = Graph::from_json(text).unwrap();
        let jobs = g.jobs();
        assert_eq!(jobs[1].priority, crate::Priority::High);
        assert_eq!(parents_of(&jobs[1]), vec![jobs[0].id.clone()]);
        let job: ImageFilter = serde_json::from_value(jobs[1].payload.clone()).unwrap();
        assert_eq!(job.filter, FilterOp::Sobel);
        let bad = text.replace(r#""job": "blur""#, r#""job": "nope""#);
        assert!(
            Graph::from_json(&bad)
                .unwrap_err()
                .to_string()
                .contains("`nope`")
        );
    }

    #[test]
    fn substitute_checks_shapes_and_outputs_are_found_by_path() {
        let parent = JobId::parse("p").unwrap();
        let out = serde_json::json!({"weights": [{"shape": [2], "blob": "t0"}], "c": {"shape": [3], "blob": "t1"}});
        let mut blobs = Blobs::new();
        blobs.insert("t0".into(), vec![1.0, 2.0].into());
        blobs.insert("t1".into(), vec![3.0, 4.0, 5.0].into());
        let w = find_output(&out, &blobs, "weights.0").unwrap();
        assert_eq!(&*w.values().unwrap(), &[1.0, 2.0]);
        assert!(find_output(&out, &blobs, "nope").is_none());
        let all = output_tensors(&out, &blobs);
        let paths: Vec<&str> = all.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, vec!["c", "weights.0"]);

        let job = VectorAdd {
            a: Tensor::output_of(&parent, "c", vec![3]),
            b: Tensor::synthetic(vec![3], 1, 0.0, 1.0),
        };
        let mut env = JobEnvelope::new(job).unwrap();
        let mut resolved = HashMap::new();
        resolved.insert(
            OutputRef {
                job: parent.clone(),
                output: "c".into(),
            },
            find_output(&out, &blobs, "c").unwrap(),
        );
        let mut ok = env.clone();
        substitute(&mut ok, &resolved).unwrap();
        let job: VectorAdd = serde_json::from_value(ok.payload.clone()).unwrap();
        let mut a = job.a.clone();
        a.resolve(&ok.blobs).unwrap();
        assert_eq!(&*a.values().unwrap(), &[3.0, 4.0, 5.0]);

        resolved.insert(
            OutputRef {
                job: parent.clone(),
                output: "c".into(),
            },
            w,
        );
        let e = substitute(&mut env, &resolved).unwrap_err();
        assert!(e.message.contains("shape [2]"), "{}", e.message);
    }
}
