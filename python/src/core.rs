//! `Core`: one queue and a client over it, either an in-process cluster (embedded queue,
//! scheduler, a CPU worker and one per GPU) or a Redis queue that workers elsewhere
//! serve. Every method converts, then hands the work to the Rust library with the GIL
//! released; a blocking wait can be interrupted with Ctrl-C.

use crate::blocking::{block_on, seconds};
use crate::errors;
use crate::waiting::wait_all;
use crate::{envelope, records, runtime};
use gpujobs::model::graph::resolve_names;
use gpujobs::queue::CancelOutcome;
use gpujobs::redis::{RedisConfig, RedisQueue};
use gpujobs::{
    Client, DeviceInfo, EmbeddedCluster, Graph, JobId, JobRecord, JobState, Registry, Validated,
    WorkerConfig,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most submits of one `submit_many` in flight at once.
const IN_FLIGHT: usize = 256;

/// A job validated in this process, kept by a handle that asked for its result to be
/// checked against the reference implementation.
#[pyclass(frozen, module = "gpujobs._native")]
pub(crate) struct Prepared {
    job: Validated,
}

/// A queue and its client.
#[pyclass(frozen, module = "gpujobs._native")]
pub(crate) struct Core {
    client: Client,
    redis: Option<Arc<RedisQueue>>,
    cluster: Mutex<Option<EmbeddedCluster>>,
    reference: Arc<Registry>,
    describe: String,
    closed: AtomicBool,
}

fn job_id(id: &str) -> PyResult<JobId> {
    JobId::parse(id).ok_or_else(|| errors::raise("NotFound", format!("no job with id {id:?}"), &[]))
}

impl Core {
    fn new(
        client: Client,
        redis: Option<Arc<RedisQueue>>,
        cluster: Option<EmbeddedCluster>,
        describe: String,
    ) -> Self {
        Core {
            client,
            redis,
            cluster: Mutex::new(cluster),
            reference: Arc::new(gpujobs::cpu::registry()),
            describe,
            closed: AtomicBool::new(false),
        }
    }

    /// The client, refused once an in-process cluster was closed (its workers are gone:
    /// a job submitted now would wait for ever).
    fn open(&self) -> PyResult<Client> {
        if self.closed.load(Ordering::Acquire) {
            return Err(errors::raise(
                "GpujobsError",
                "this cluster is closed: start another (gpujobs.Cluster())".into(),
                &[],
            ));
        }
        Ok(self.client.clone())
    }

    /// The record of a finished job as a dict, its result checked when `check` holds it.
    fn finished<'py>(
        &self,
        py: Python<'py>,
        rec: JobRecord,
        check: Option<&Prepared>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let checked = match (check, &rec.result) {
            (Some(p), Some(result)) if rec.state == JobState::Succeeded => {
                let env = p.job.get();
                let reference = self.reference.clone();
                let (kind, payload, blobs, result) = (
                    env.kind.clone(),
                    env.payload.clone(),
                    env.blobs.clone(),
                    result.clone(),
                );
                py.detach(move || reference.check(&kind, &payload, &blobs, &result))
                    .map_err(errors::validation_error)?
            }
            _ => None,
        };
        let d = records::finished(py, rec)?;
        if let Some(c) = checked {
            d.set_item("check", records::to_py(py, &c)?)?;
        }
        Ok(d)
    }
}

#[pymethods]
impl Core {
    /// An in-process cluster: a CPU worker running `concurrency` jobs at once, and, unless
    /// `device` is `cpu`, a worker per CUDA GPU (this build's and this machine's).
    #[staticmethod]
    fn embedded(py: Python<'_>, concurrency: usize, device: &str) -> PyResult<Self> {
        let rt = runtime::get()?;
        let mut builder = EmbeddedCluster::builder();
        let mut worker = |registry: Registry, info: DeviceInfo| {
            let mut config = WorkerConfig::new(info);
            config.concurrency = concurrency.max(1);
            config.poll = Duration::from_millis(100);
            config.heartbeat = Duration::from_millis(200);
            builder = std::mem::take(&mut builder).worker(config, Arc::new(registry));
        };
        let mut describe = vec!["cpu".to_string()];
        let cpu = gpujobs::cpu::CpuExecutor::new();
        worker(Registry::for_backend(&cpu), gpujobs::Backend::device(&cpu));
        match device {
            "cpu" => {}
            "auto" | "gpu" => match gpujobs::cuda::devices() {
                Ok(devices) => {
                    for d in devices {
                        describe.push(gpujobs::Backend::device(&d).to_string());
                        worker(Registry::for_backend(&d), gpujobs::Backend::device(&d));
                    }
                }
                Err(why) if device == "gpu" => {
                    return Err(errors::raise(
                        "DeviceUnavailable",
                        format!("no GPU available: {why}"),
                        &[],
                    ));
                }
                Err(_) => {}
            },
            other => {
                return Err(errors::validation(format!(
                    "device must be `auto`, `cpu` or `gpu`, got `{other}`"
                )));
            }
        }
        let cluster = {
            let _inside = rt.enter();
            builder.start()
        };
        let cluster = block_on(py, async move {
            cluster.wait_for_workers(Duration::from_secs(5)).await;
            cluster
        })?;
        let client = cluster.client().clone();
        Ok(Core::new(
            client,
            None,
            Some(cluster),
            format!("embedded ({})", describe.join(", ")),
        ))
    }

    /// A Redis queue (`redis://`, `rediss://` with TLS builds, `redis+cluster://`).
    #[staticmethod]
    #[pyo3(signature = (url, namespace, partitions, max_blob_bytes, max_entry_bytes, connect_timeout))]
    fn redis(
        py: Python<'_>,
        url: String,
        namespace: String,
        partitions: Option<u32>,
        max_blob_bytes: Option<u64>,
        max_entry_bytes: Option<u64>,
        connect_timeout: f64,
    ) -> PyResult<Self> {
        let mut cfg = RedisConfig::new(url);
        cfg.namespace = namespace;
        cfg.partitions = partitions;
        if let Some(b) = max_blob_bytes {
            cfg.max_blob_bytes = b;
        }
        if let Some(b) = max_entry_bytes {
            cfg.max_entry_bytes = b;
        }
        cfg.warn_durability = false;
        cfg.auth_grace = Duration::ZERO;
        let describe = format!("redis {} ({})", cfg.redacted_url(), cfg.namespace);
        let give_up = seconds(Some(connect_timeout))?;
        let queue = block_on(py, async move {
            RedisQueue::connect_retrying(cfg, Some(give_up)).await
        })?
        .map_err(errors::queue)?;
        let queue = Arc::new(queue);
        let client = Client::new(queue.clone(), Arc::new(Registry::with_builtin_kinds()));
        Ok(Core::new(client, Some(queue), None, describe))
    }

    /// What this core runs on, for `repr`.
    fn describe(&self) -> String {
        self.describe.clone()
    }

    /// Validates a job without submitting it (arrays are copied here, once).
    fn prepare(
        &self,
        kind: &str,
        inputs: &Bound<'_, PyDict>,
        options: &Bound<'_, PyDict>,
    ) -> PyResult<Prepared> {
        let env = envelope::build(kind, inputs, options)?;
        let job = self.open()?.validate(env).map_err(errors::client)?;
        Ok(Prepared { job })
    }

    /// Submits a prepared job; returns its id.
    fn submit(&self, py: Python<'_>, job: &Prepared) -> PyResult<String> {
        let client = self.open()?;
        let job = job.job.clone();
        let id = block_on(py, async move { client.submit_validated(job).await })?
            .map_err(errors::client)?;
        Ok(id.to_string())
    }

    /// Submits prepared jobs, many in flight; returns their ids in order. When one is
    /// refused the rest are not sent, and the error's `accepted` lists the ids that were.
    fn submit_many(&self, py: Python<'_>, jobs: Vec<Bound<'_, Prepared>>) -> PyResult<Vec<String>> {
        let client = self.open()?;
        let jobs: Vec<Validated> = jobs.iter().map(|j| j.get().job.clone()).collect();
        let total = jobs.len();
        let (ids, first_error) =
            block_on(py, async move { client.submit_many(jobs, IN_FLIGHT).await })?;
        let accepted: Vec<String> = ids.into_iter().map(|id| id.to_string()).collect();
        match first_error {
            None => Ok(accepted),
            Some((_, e)) => {
                let class = errors::client_class(&e);
                let message = format!(
                    "{} of {total} jobs submitted (their ids are in the error's `accepted`); {} not: {e}",
                    accepted.len(),
                    total - accepted.len()
                );
                let list = PyList::new(py, &accepted)?.into_any().unbind();
                Err(errors::raise(class, message, &[("accepted", list)]))
            }
        }
    }

    /// Submits a graph: `nodes` are `(name, kind, inputs, options)`, where an input
    /// `{"shape": [..], "from": {"job": <name>, "output": <path>}}` reads another node's
    /// output. Returns the ids in the order of `nodes`; nothing is submitted when one is
    /// refused.
    fn submit_graph(
        &self,
        py: Python<'_>,
        nodes: Vec<(String, String, Bound<'_, PyDict>, Bound<'_, PyDict>)>,
    ) -> PyResult<Vec<String>> {
        let mut graph = Graph::new();
        let mut names = BTreeMap::new();
        for (name, ..) in &nodes {
            let id = graph
                .id(name)
                .map_err(|e| errors::validation(format!("invalid graph: {e}")))?;
            names.insert(name.clone(), id);
        }
        for (name, kind, inputs, options) in &nodes {
            let mut env = envelope::build(kind, inputs, options)?;
            resolve_names(&mut env.payload, &names, name)
                .map_err(|e| errors::validation(format!("invalid graph: {e}")))?;
            graph
                .add_envelope(name, env)
                .map_err(|e| errors::validation(format!("invalid graph: {e}")))?;
        }
        let client = self.open()?;
        let ids = block_on(py, async move { client.submit_graph(graph).await })?
            .map_err(errors::client)?;
        Ok(ids.into_iter().map(|id| id.to_string()).collect())
    }

    /// Waits for a job to end and returns its record with its outputs (`None`: wait
    /// without end). Raises `TimeoutError` when it has not ended in time.
    #[pyo3(signature = (id, timeout, check=None))]
    fn wait<'py>(
        &self,
        py: Python<'py>,
        id: &str,
        timeout: Option<f64>,
        check: Option<&Prepared>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let id = job_id(id)?;
        let timeout = seconds(timeout)?;
        let client = self.open()?;
        let rec = block_on(py, async move { client.wait(&id, timeout).await })?
            .map_err(errors::client)?;
        self.finished(py, rec, check)
    }

    /// `wait` as an awaitable for asyncio.
    #[pyo3(signature = (id, timeout, check=None))]
    fn wait_async<'py>(
        slf: Bound<'py, Self>,
        id: &str,
        timeout: Option<f64>,
        check: Option<Py<Prepared>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        runtime::get()?;
        let id = job_id(id)?;
        let timeout = seconds(timeout)?;
        let client = slf.get().open()?;
        let core: Py<Core> = slf.unbind();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let rec = client.wait(&id, timeout).await.map_err(errors::client)?;
            Python::attach(|py| -> PyResult<Py<PyDict>> {
                let check = check.as_ref().map(|c| c.get());
                Ok(core.get().finished(py, rec, check)?.unbind())
            })
        })
    }

    /// Waits for many jobs; returns their records in order. On Redis their states are
    /// polled together (one round trip per partition), not one by one.
    fn wait_many<'py>(
        &self,
        py: Python<'py>,
        ids: Vec<String>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyList>> {
        let ids: Vec<JobId> = ids.iter().map(|i| job_id(i)).collect::<PyResult<_>>()?;
        let timeout = seconds(timeout)?;
        let client = self.open()?;
        let redis = self.redis.clone();
        let recs = block_on(
            py,
            async move { wait_all(client, redis, ids, timeout).await },
        )?
        .map_err(errors::client)?;
        let out = PyList::empty(py);
        for rec in recs {
            out.append(self.finished(py, rec, None)?)?;
        }
        Ok(out)
    }

    /// A job's record (with its outputs once it succeeded), or `None` when unknown.
    fn status<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
        let id = job_id(id)?;
        let queue = self.open()?.queue().clone();
        let rec = block_on(py, async move { queue.status(&id).await })?.map_err(errors::queue)?;
        rec.map(|r| records::record(py, r)).transpose()
    }

    /// Cancels a job: `cancelled`, `requested` (it is running and was asked to stop),
    /// `finished:<state>` or `not-found`.
    fn cancel(&self, py: Python<'_>, id: &str) -> PyResult<String> {
        let id = job_id(id)?;
        let queue = self.open()?.queue().clone();
        let outcome =
            block_on(py, async move { queue.cancel(&id).await })?.map_err(errors::queue)?;
        Ok(match outcome {
            CancelOutcome::Cancelled => "cancelled".into(),
            CancelOutcome::Requested => "requested".into(),
            CancelOutcome::AlreadyFinished(s) => format!("finished:{}", s.as_str()),
            CancelOutcome::NotFound => "not-found".into(),
        })
    }

    /// The most recent dead letters (at most `max`).
    fn dead_letters<'py>(&self, py: Python<'py>, max: usize) -> PyResult<Bound<'py, PyAny>> {
        let queue = self.open()?.queue().clone();
        let dead =
            block_on(py, async move { queue.dead_letters(max).await })?.map_err(errors::queue)?;
        records::to_py(py, &dead)
    }

    /// Retries a dead-lettered job; `False` when it is not dead-lettered.
    fn retry_dead(&self, py: Python<'_>, id: &str) -> PyResult<bool> {
        let id = job_id(id)?;
        let queue = self.open()?.queue().clone();
        block_on(py, async move { queue.retry_dead(&id).await })?.map_err(errors::queue)
    }

    /// The live workers.
    fn workers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let queue = self.open()?.queue().clone();
        let workers = block_on(py, async move { queue.workers().await })?.map_err(errors::queue)?;
        records::to_py(py, &workers)
    }

    /// Per lane and priority: queued, running, ...
    fn lanes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let queue = self.open()?.queue().clone();
        let lanes =
            block_on(py, async move { queue.lane_stats().await })?.map_err(errors::queue)?;
        records::to_py(py, &lanes)
    }

    /// Stops an in-process cluster (its workers finish their jobs first); nothing for
    /// Redis. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let cluster = self.cluster.lock().map(|mut c| c.take()).unwrap_or(None);
        if let Some(cluster) = cluster {
            self.closed.store(true, Ordering::Release);
            block_on(py, async move {
                cluster.shutdown().await;
            })?;
        }
        Ok(())
    }
}
