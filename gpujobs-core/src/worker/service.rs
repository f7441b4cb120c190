//! The worker loop: fetch jobs of one lane, run them with a concurrency limit, keep
//! their leases alive, record results, and drain gracefully on shutdown.
//!
//! On shutdown the worker stops fetching, lets in-flight jobs finish within the grace
//! period, then stops the rest and releases their leases so other workers pick them up
//! at once (a released job does not lose an attempt). A worker killed outright loses
//! nothing either: its leases expire and are reclaimed.

use crate::exec::executor::{CancelFlag, ExecContext};
use crate::exec::registry::Registry;
use crate::model::device::{DeviceClass, DeviceInfo};
use crate::model::envelope::JobEnvelope;
use crate::model::envelope::now_ms;
use crate::model::error::{JobError, QueueError};
use crate::model::id::JobId;
use crate::model::id::unique_worker_id;
use crate::model::limits::Limits;
use crate::model::retry::Backoff;
use crate::model::state::JobResult;
use crate::queue::{Delivery, FailOutcome, Lease, Queue, RemoteInput, WorkerInfo};
use crate::shutdown::Shutdown;
use crate::worker::graph_inputs::GraphInputs;
use crate::worker::output_cache::OutputCache;
use crate::worker::slots::{RunTimes, Slots, Ticket};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Unique consumer name; two workers must never share one.
    pub id: String,
    /// The lane it serves.
    pub lane: DeviceClass,
    /// Its device, as shown in heartbeats and results.
    pub device: DeviceInfo,
    /// Jobs run at once (jobs estimated light have their own limit, below).
    pub concurrency: usize,
    /// Jobs estimated below `light_below` run at once besides `concurrency`: tiny jobs
    /// wait on round trips, not on cores, so they need many in flight.
    pub light_concurrency: usize,
    /// A job whose placement estimate on this lane is below this is light (zero: no
    /// job is).
    pub light_below: Duration,
    /// Most jobs fetched in one call.
    pub batch: usize,
    /// Visibility timeout: a job whose lease is not renewed for this long is reclaimed.
    pub lease: Duration,
    /// How long one fetch waits for work.
    pub poll: Duration,
    /// Interval between heartbeats.
    pub heartbeat: Duration,
    /// Interval between scans for expired leases of dead workers.
    pub reclaim_every: Duration,
    /// Longest a job waits for its inputs in object storage ([`Delivery::remote`])
    /// while holding its slot, its lease renewed meanwhile; past it the job is released
    /// to be tried again, without costing an attempt.
    pub input_wait: Duration,
    /// Time in-flight jobs get to finish after shutdown is asked for.
    pub grace: Duration,
    /// Memory limits jobs are validated against.
    pub limits: Limits,
    /// Bytes of recent graph outputs kept in host memory for jobs that read them here
    /// (0 turns the cache off; see [`crate::worker::output_cache`]).
    pub cache_bytes: u64,
}

impl WorkerConfig {
    /// Defaults for a worker of `device`'s class: concurrency 1, and 64 more jobs
    /// estimated under 2 ms; 30 s leases.
    pub fn new(device: DeviceInfo) -> Self {
        WorkerConfig {
            id: unique_worker_id(device.class),
            lane: device.class,
            device,
            concurrency: 1,
            light_concurrency: 64,
            light_below: Duration::from_millis(2),
            batch: 64,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(500),
            heartbeat: Duration::from_secs(2),
            reclaim_every: Duration::from_secs(5),
            input_wait: DEFAULT_INPUT_WAIT,
            grace: Duration::from_secs(30),
            limits: Limits::detect(),
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

/// How long a job may wait for its inputs by default: two minutes, room for an object
/// store's own timeouts and retries (docs/object-storage.md) with a margin.
pub const DEFAULT_INPUT_WAIT: Duration = Duration::from_secs(120);

/// The output cache's default bound: 256 MiB, four 4096² float images.
pub const DEFAULT_CACHE_BYTES: u64 = 256 << 20;

/// Counters a running worker keeps (read them for metrics).
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Jobs completed.
    pub done: AtomicU64,
    /// Attempts that failed.
    pub failed: AtomicU64,
    /// Jobs running now.
    pub in_flight: AtomicU32,
}

/// What a worker did before it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerReport {
    /// Jobs completed.
    pub done: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Jobs given back unfinished at shutdown.
    pub released: u64,
}

/// How an attempt ended, as a worker reports it to its observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Result recorded.
    Succeeded,
    /// Failed; will be retried after a backoff.
    Retrying,
    /// Failed with a permanent error.
    Failed,
    /// Out of attempts: dead-lettered.
    Dead,
    /// Cancelled.
    Cancelled,
    /// The lease was lost (the job was taken over elsewhere); nothing recorded.
    LeaseLost,
}

impl Outcome {
    /// Lowercase name, for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Retrying => "retrying",
            Outcome::Failed => "failed",
            Outcome::Dead => "dead",
            Outcome::Cancelled => "cancelled",
            Outcome::LeaseLost => "lease-lost",
        }
    }
}

/// Receives a worker's events, for metrics (see the CLI's Prometheus exporter).
pub trait WorkerObserver: Send + Sync {
    /// An attempt of a job of `kind` ended; `timings` when it produced a result.
    fn attempt_ended(
        &self,
        kind: &str,
        lane: DeviceClass,
        outcome: Outcome,
        timings: Option<&crate::model::timing::Timings>,
    );
}

/// A worker serving one lane.
pub struct Worker {
    queue: Arc<dyn Queue>,
    registry: Arc<Registry>,
    /// Shared with every job's task (a clone per job would copy its strings).
    config: Arc<WorkerConfig>,
    stats: Arc<WorkerStats>,
    started_ms: u64,
    draining: Arc<AtomicBool>,
    observer: Option<Arc<dyn WorkerObserver>>,
    cache: Arc<OutputCache>,
}

/// Leases of running jobs with their cancel flags, so a drain can stop and release them.
type InFlight = Arc<Mutex<HashMap<JobId, (Lease, CancelFlag)>>>;

impl Worker {
    /// A worker over `queue` running the executors of `registry`.
    pub fn new(queue: Arc<dyn Queue>, registry: Arc<Registry>, config: WorkerConfig) -> Self {
        Worker {
            queue,
            registry,
            cache: Arc::new(OutputCache::new(config.cache_bytes)),
            config: Arc::new(config),
            stats: Arc::default(),
            started_ms: now_ms(),
            draining: Arc::default(),
            observer: None,
        }
    }

    /// Reports every attempt's end to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn WorkerObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The worker's live counters.
    pub fn stats(&self) -> Arc<WorkerStats> {
        self.stats.clone()
    }

    /// The worker's cache of graph outputs.
    pub fn cache(&self) -> Arc<OutputCache> {
        self.cache.clone()
    }

    /// The worker's configuration.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    fn info(&self) -> WorkerInfo {
        WorkerInfo {
            id: self.config.id.clone(),
            lane: self.config.lane,
            device: self.config.device.clone(),
            concurrency: self.config.concurrency as u32,
            in_flight: self.stats.in_flight.load(Ordering::Relaxed),
            jobs_done: self.stats.done.load(Ordering::Relaxed),
            jobs_failed: self.stats.failed.load(Ordering::Relaxed),
            started_ms: self.started_ms,
            last_seen_ms: now_ms(),
            cached_jobs: self.cache.jobs(),
            cache_bytes: self.cache.bytes(),
            locality: self.cache.capacity() > 0,
        }
    }

    async fn heartbeat(&self) {
        if let Err(e) = self.queue.heartbeat(&self.info()).await {
            tracing::warn!(worker = %self.config.id, error = %e, "heartbeat failed");
        }
    }

    /// Serves the lane until `shutdown` fires, then drains.
    pub async fn run(self, mut shutdown: Shutdown) -> WorkerReport {
        let cfg = &self.config;
        tracing::info!(worker = %cfg.id, lane = %cfg.lane, device = %cfg.device, concurrency = cfg.concurrency, "worker started");
        let mut slots = Slots::new(
            cfg.concurrency,
            cfg.light_concurrency,
            cfg.light_below.as_secs_f64(),
        );
        let inflight: InFlight = Arc::default();
        let mut tasks = JoinSet::new();
        let mut next_heartbeat = Instant::now();
        let mut next_reclaim = Instant::now();
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));

        while !shutdown.is_triggered() {
            while tasks.try_join_next().is_some() {}
            if Instant::now() >= next_heartbeat {
                self.heartbeat().await;
                next_heartbeat = Instant::now() + cfg.heartbeat;
            }
            if slots.filling() {
                let until = Instant::now() + Duration::from_millis(2);
                while slots.filling() && Instant::now() < until && !shutdown.is_triggered() {
                    tokio::select! {
                        _ = tasks.join_next() => {}
                        _ = shutdown.wait() => {}
                        _ = tokio::time::sleep_until(until) => {}
                    }
                }
            }
            let free = slots.room();
            if free == 0 {
                tokio::select! {
                    _ = tasks.join_next() => {}
                    _ = shutdown.wait() => {}
                    _ = tokio::time::sleep_until(next_heartbeat) => {}
                }
                continue;
            }
            let mut deliveries = Vec::new();
            if Instant::now() >= next_reclaim {
                next_reclaim = Instant::now() + cfg.reclaim_every;
                match self
                    .queue
                    .reclaim_expired(cfg.lane, &cfg.id, free, cfg.lease)
                    .await
                {
                    Ok(d) => {
                        if !d.is_empty() {
                            tracing::info!(worker = %cfg.id, count = d.len(), "reclaimed jobs with expired leases");
                        }
                        deliveries = d;
                    }
                    Err(e) => tracing::warn!(worker = %cfg.id, error = %e, "reclaim failed"),
                }
            }
            if deliveries.is_empty() {
                match self
                    .queue
                    .fetch(
                        cfg.lane,
                        &cfg.id,
                        free.min(cfg.batch.max(1)),
                        cfg.lease,
                        cfg.poll,
                    )
                    .await
                {
                    Ok(d) => {
                        deliveries = d;
                        backoff.reset();
                    }
                    Err(e) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(worker = %cfg.id, error = %e, retry_in = ?delay, "fetch failed");
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = shutdown.wait() => {}
                        }
                        continue;
                    }
                }
            }
            for delivery in deliveries {
                let ticket = slots.admit(&delivery.envelope.kind, delivery.estimate_s);
                let cancel = CancelFlag::new();
                inflight.lock().unwrap_or_else(|p| p.into_inner()).insert(
                    delivery.lease.job_id.clone(),
                    (delivery.lease.clone(), cancel.clone()),
                );
                let job = JobRun {
                    queue: self.queue.clone(),
                    registry: self.registry.clone(),
                    config: self.config.clone(),
                    stats: self.stats.clone(),
                    inflight: inflight.clone(),
                    cancel,
                    draining: self.draining.clone(),
                    observer: self.observer.clone(),
                    run_times: slots.run_times(),
                    cache: self.cache.clone(),
                };
                tasks.spawn(job.run(delivery, ticket));
            }
        }
        self.drain(tasks, inflight).await
    }

    async fn drain(self, mut tasks: JoinSet<()>, inflight: InFlight) -> WorkerReport {
        let cfg = &self.config;
        tracing::info!(worker = %cfg.id, in_flight = tasks.len(), grace = ?cfg.grace, "draining");
        let deadline = Instant::now() + cfg.grace;
        while !tasks.is_empty() {
            tokio::select! {
                _ = tasks.join_next() => {}
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        // Out of time: ask the unfinished jobs to stop (executors poll the flag between
        // steps, even on blocking threads), stop their tasks, and give them back.
        self.draining.store(true, Ordering::Release);
        let leftover: Vec<Lease> = inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, (lease, cancel))| {
                cancel.cancel();
                lease
            })
            .collect();
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        let mut released = 0;
        for lease in leftover {
            match self.queue.release(&lease).await {
                Ok(()) => released += 1,
                Err(e) => {
                    tracing::warn!(job = %lease.job_id, error = %e, "could not release; its lease will expire instead")
                }
            }
        }
        self.heartbeat().await;
        if let Err(e) = self.queue.deregister(&cfg.id).await {
            tracing::warn!(worker = %cfg.id, error = %e, "deregister failed");
        }
        let report = WorkerReport {
            done: self.stats.done.load(Ordering::Relaxed),
            failed: self.stats.failed.load(Ordering::Relaxed),
            released,
        };
        tracing::info!(worker = %cfg.id, done = report.done, failed = report.failed, released, "worker stopped");
        report
    }
}

/// Everything one job's task needs.
struct JobRun {
    queue: Arc<dyn Queue>,
    registry: Arc<Registry>,
    config: Arc<WorkerConfig>,
    stats: Arc<WorkerStats>,
    inflight: InFlight,
    cancel: CancelFlag,
    draining: Arc<AtomicBool>,
    observer: Option<Arc<dyn WorkerObserver>>,
    run_times: RunTimes,
    cache: Arc<OutputCache>,
}

/// Why a run produced nothing to record.
enum RunEnd {
    Finished(Box<Result<JobResult, JobError>>),
    LeaseLost,
}

impl JobRun {
    async fn run(self, delivery: Delivery, ticket: Ticket) {
        let Delivery {
            lease,
            envelope,
            remote,
            ..
        } = delivery;
        // No slot of its kind was free: wait for one, keeping the lease alive.
        let _permit = match ticket {
            Ticket::Ready(p) => p,
            Ticket::Wait(sem) => {
                let waited = tokio::select! {
                    p = sem.acquire_owned() => p.ok(),
                    () = keep_lease(self.queue.as_ref(), &lease, self.config.lease, &self.cancel) => None,
                };
                match waited {
                    Some(p) => p,
                    None => {
                        // Lease lost while waiting: another worker has the job now.
                        self.inflight
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&lease.job_id);
                        return;
                    }
                }
            }
        };
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let queue_wait_s =
            crate::model::envelope::now_us().saturating_sub(envelope.created_us) as f64 / 1e6;
        let end = match self.gather(&lease, &envelope, &remote).await {
            Gathered::Ready(ready) => {
                let started = std::time::Instant::now();
                let end = self.execute(&lease, &ready).await;
                self.run_times
                    .record(&envelope.kind, started.elapsed().as_secs_f64());
                end
            }
            Gathered::Failed(e) => RunEnd::Finished(Box::new(Err(e))),
            Gathered::LeaseLost => RunEnd::LeaseLost,
            Gathered::TooSlow => {
                tracing::warn!(job = %lease.job_id, wait = ?self.config.input_wait, "inputs in object storage not read within the input wait (--input-wait); released to be tried again, no attempt counted");
                if let Err(e) = self.queue.release(&lease).await {
                    tracing::warn!(job = %lease.job_id, error = %e, "could not release; its lease will expire instead");
                }
                self.finish(&lease);
                return;
            }
        };
        let finished = match end {
            RunEnd::LeaseLost => None,
            RunEnd::Finished(r) => Some(*r),
        };
        // Stopped by this worker's own drain, not by the user: give the job back.
        let drained = self.draining.load(Ordering::Acquire)
            && matches!(&finished, Some(Err(e)) if e.class == crate::model::error::ErrorClass::Cancelled);
        match finished {
            None => {
                tracing::warn!(job = %lease.job_id, "lease lost while running (reclaimed elsewhere); result dropped");
            }
            Some(Err(_)) if drained => {
                if let Err(e) = self.queue.release(&lease).await {
                    tracing::warn!(job = %lease.job_id, error = %e, "could not release; its lease will expire instead");
                }
            }
            Some(Ok(mut result)) => {
                result.timings.queue_wait_s = queue_wait_s;
                // Submit to result, stamped here from the envelope: queues keep no
                // per-job side tables for it.
                result.timings.total_s =
                    crate::model::envelope::now_us().saturating_sub(envelope.created_us) as f64
                        / 1e6;
                // Each result is recorded on its own call: the Redis queue already
                // group-commits concurrent completions, and a worker-side batcher
                // measured 10% slower end to end on the embedded queue.
                let result = self.graph_inputs().keep(&lease.job_id, &envelope, result);
                // Outputs may go to object storage first: the lease is kept meanwhile.
                let recorded = self
                    .leased(
                        &lease,
                        with_retries(|| self.queue.complete(&lease, result.clone())),
                    )
                    .await;
                match recorded {
                    Ok(()) => {
                        self.stats.done.fetch_add(1, Ordering::Relaxed);
                        self.observe(&envelope.kind, Outcome::Succeeded, Some(&result.timings));
                    }
                    Err(QueueError::LeaseLost(_)) => {
                        tracing::warn!(job = %lease.job_id, "finished after its lease was lost; result dropped")
                    }
                    Err(e) => {
                        tracing::error!(job = %lease.job_id, error = %e, "could not record result; the job will be re-run")
                    }
                }
            }
            Some(Err(error)) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                match with_retries(|| self.queue.fail(&lease, &error)).await {
                    Ok(outcome) => {
                        log_failure(&lease, &error, outcome);
                        let o = match outcome {
                            FailOutcome::Retrying { .. } => Outcome::Retrying,
                            FailOutcome::Failed => Outcome::Failed,
                            FailOutcome::Dead => Outcome::Dead,
                            FailOutcome::Cancelled => Outcome::Cancelled,
                        };
                        self.observe(&envelope.kind, o, None);
                    }
                    Err(e) => {
                        tracing::error!(job = %lease.job_id, error = %e, "could not record failure; the lease will expire")
                    }
                }
            }
        }
        self.finish(&lease);
    }

    /// The job no longer runs here.
    fn finish(&self, lease: &Lease) {
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&lease.job_id);
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// The job's inputs from outside the queue: its [`Delivery::remote`] objects (for at
    /// most [`WorkerConfig::input_wait`]), then its graph parents' outputs (read, or made
    /// again when their worker is gone). All in the job's own task while the lease is
    /// kept: a store that hangs holds this job's slot, never the worker.
    async fn gather(
        &self,
        lease: &Lease,
        envelope: &Arc<JobEnvelope>,
        remote: &[RemoteInput],
    ) -> Gathered {
        let read = async {
            let mut env = envelope.clone();
            if !remote.is_empty() {
                let load = self.queue.load_remote(lease, remote);
                let blobs = match tokio::time::timeout(self.config.input_wait, load).await {
                    Err(_) => return Gathered::TooSlow,
                    Ok(Err(e)) => return Gathered::Failed(e),
                    Ok(Ok(blobs)) => blobs,
                };
                let mut owned = (**envelope).clone();
                owned.blobs.extend(blobs);
                env = Arc::new(owned);
            }
            match self.graph_inputs().resolve(&env).await {
                Ok(env) => Gathered::Ready(env),
                Err(e) => Gathered::Failed(e),
            }
        };
        tokio::select! {
            g = read => g,
            () = keep_lease(self.queue.as_ref(), lease, self.config.lease, &self.cancel) => Gathered::LeaseLost,
        }
    }

    /// Runs `call` while renewing the lease. A lost lease does not stop the call: the
    /// queue's fenced write refuses it, and stopping it half-way could leave less behind
    /// to clean up, not more.
    async fn leased<T>(&self, lease: &Lease, call: impl std::future::Future<Output = T>) -> T {
        let mut call = std::pin::pin!(call);
        tokio::select! {
            r = call.as_mut() => return r,
            () = keep_lease(self.queue.as_ref(), lease, self.config.lease, &self.cancel) => {}
        }
        call.await
    }
}

/// What reading a job's inputs came to.
enum Gathered {
    Ready(Arc<JobEnvelope>),
    Failed(JobError),
    LeaseLost,
    /// Its object-storage inputs not read within [`WorkerConfig::input_wait`].
    TooSlow,
}

impl JobRun {
    /// Runs the job on this worker's executor for its kind, under its timeout, keeping
    /// the lease alive meanwhile.
    async fn execute(&self, lease: &Lease, envelope: &JobEnvelope) -> RunEnd {
        let Some(exec) = self.registry.executor(&envelope.kind, self.config.lane) else {
            return RunEnd::Finished(Box::new(Err(JobError::temporary(format!(
                "worker {} has no executor for kind `{}` on {}",
                self.config.id, envelope.kind, self.config.lane
            )))));
        };
        let ctx = ExecContext {
            job_id: lease.job_id.clone(),
            attempt: lease.attempt,
            cancel: self.cancel.clone(),
            limits: self.config.limits,
        };
        let timeout = envelope.timeout();
        let run = tokio::time::timeout(
            timeout,
            exec.execute(&envelope.payload, &envelope.blobs, &ctx),
        );
        tokio::select! {
            r = run => RunEnd::Finished(Box::new(r.unwrap_or_else(|_| {
                ctx.cancel.cancel();
                Err(JobError::timed_out(timeout))
            }))),
            () = keep_lease(self.queue.as_ref(), lease, self.config.lease, &ctx.cancel) => {
                ctx.cancel.cancel();
                RunEnd::LeaseLost
            }
        }
    }

    /// The worker's view of graph inputs and outputs (see [`crate::worker::graph_inputs`]).
    fn graph_inputs(&self) -> GraphInputs<'_> {
        GraphInputs {
            queue: self.queue.as_ref(),
            registry: &self.registry,
            cache: &self.cache,
            lane: self.config.lane,
            limits: self.config.limits,
            worker: &self.config.id,
            cancel: &self.cancel,
        }
    }

    fn observe(
        &self,
        kind: &str,
        outcome: Outcome,
        timings: Option<&crate::model::timing::Timings>,
    ) {
        if let Some(o) = &self.observer {
            o.attempt_ended(kind, self.config.lane, outcome, timings);
        }
    }
}

fn log_failure(lease: &Lease, error: &JobError, outcome: FailOutcome) {
    match outcome {
        FailOutcome::Retrying { attempts, delay } => {
            tracing::warn!(job = %lease.job_id, attempts, retry_in = ?delay, error = %error, "attempt failed; will retry")
        }
        FailOutcome::Failed => {
            tracing::warn!(job = %lease.job_id, error = %error, "job failed (permanent error)")
        }
        FailOutcome::Dead => {
            tracing::warn!(job = %lease.job_id, error = %error, "job dead-lettered (out of attempts)")
        }
        FailOutcome::Cancelled => tracing::info!(job = %lease.job_id, "job cancelled"),
    }
}

/// Renews `lease` every third of its length while the job runs; flags cancellation
/// when asked for. Returns only when the lease is lost.
async fn keep_lease(queue: &dyn Queue, lease: &Lease, length: Duration, cancel: &CancelFlag) {
    let period = (length / 3).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(period).await;
        match queue.renew(lease, length).await {
            Ok(outcome) => {
                if outcome.cancel_requested {
                    cancel.cancel();
                }
            }
            Err(QueueError::LeaseLost(_)) => return,
            Err(e) => {
                tracing::warn!(job = %lease.job_id, error = %e, "lease renewal failed; retrying")
            }
        }
    }
}

/// Retries a queue call on backend errors (a Redis blip must not waste a result):
/// up to 6 tries over about 6 seconds.
async fn with_retries<T, F, Fut>(mut call: F) -> Result<T, QueueError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, QueueError>>,
{
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(4));
    let mut tries = 0;
    let mut full_since: Option<std::time::Instant> = None;
    loop {
        match call().await {
            Err(QueueError::Backend(msg)) if tries < 5 => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %msg, retry_in = ?delay, "queue call failed; retrying");
                tokio::time::sleep(delay).await;
                tries += 1;
            }
            // Redis is out of memory: the outcome is kept here and written as soon as
            // memory frees (jobs ending free their inputs), rather than dropped for a
            // re-run that would need memory too. Said loudly, every 30 s.
            Err(QueueError::Full(msg)) => {
                let since = *full_since.get_or_insert_with(std::time::Instant::now);
                if tries % 60 == 0 {
                    tracing::error!(error = %msg, waiting_s = since.elapsed().as_secs(), "queue is full; holding the job's outcome until it can be stored");
                }
                tries += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => return other,
        }
    }
}
