//! The embedded in-memory queue: the Redis queue's semantics in one process.
//!
//! It backs `gpujobs demo` and `gpujobs run`, the tests of everything above the queue,
//! and services that embed the library without Redis. State lives behind one mutex that
//! is never held across an `.await`; waiting (for submits, for ready jobs, for results)
//! uses `Notify`, so idle consumers cost nothing. Durability ends with the process.
//!
//! This file holds the state and the steps every role shares (finishing a job, leasing
//! it, dead-lettering it); each role of [`crate::queue`] is implemented in the file of
//! its name.

mod admin;
mod graph;
mod lease;
mod schedule;
mod submit;

use super::lane::LaneQueue;
use super::types::{DeadLetter, Delivery, Lease, WorkerInfo};
use crate::model::device::DeviceClass;
use crate::model::envelope::{JobEnvelope, now_ms};
use crate::model::error::{QueueError, ValidationError};
use crate::model::id::JobId;
use crate::model::retry::RetryPolicy;
use crate::model::state::{JobRecord, JobState};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Settings of the embedded queue.
#[derive(Debug, Clone)]
pub struct MemoryQueueConfig {
    /// Backoff between attempts.
    pub retry: RetryPolicy,
    /// A worker without a heartbeat for this long is considered gone.
    pub worker_ttl: Duration,
    /// Records of finished jobs are dropped this long after they finish.
    pub finished_ttl: Duration,
    /// At most this many dead letters are kept (oldest dropped first).
    pub max_dead_letters: usize,
}

impl Default for MemoryQueueConfig {
    fn default() -> Self {
        MemoryQueueConfig {
            retry: RetryPolicy::default(),
            worker_ttl: Duration::from_secs(15),
            finished_ttl: Duration::from_secs(3600),
            max_dead_letters: 10_000,
        }
    }
}

struct ActiveLease {
    lane: DeviceClass,
    attempt: u32,
    consumer: String,
    deadline: Instant,
}

#[derive(Default)]
struct Inner {
    records: HashMap<JobId, JobRecord>,
    /// Envelopes of jobs not yet succeeded (kept for failed and dead ones, for retry).
    jobs: HashMap<JobId, Arc<JobEnvelope>>,
    submitted: VecDeque<JobId>,
    taken: HashMap<String, JobId>,
    lanes: [LaneQueue; 2],
    leases: HashMap<JobId, ActiveLease>,
    dead: VecDeque<DeadLetter>,
    workers: HashMap<String, WorkerInfo>,
    /// Graph edges: the jobs waiting for each job's outputs (kept when the job fails,
    /// so that retrying it makes its dependants wait again).
    children: HashMap<JobId, Vec<JobId>>,
    /// Jobs failed only because an ancestor did: that ancestor.
    failed_by: HashMap<JobId, JobId>,
    next_entry: u64,
    next_sweep_ms: u64,
}

/// The embedded queue.
pub struct MemoryQueue {
    inner: Mutex<Inner>,
    config: MemoryQueueConfig,
    submit_ready: Notify,
    lane_ready: [Notify; 2],
    changed: Notify,
}

impl std::fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryQueue")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::new(MemoryQueueConfig::default())
    }
}

fn lane_index(lane: DeviceClass) -> usize {
    match lane {
        DeviceClass::Cpu => 0,
        DeviceClass::Gpu => 1,
    }
}

impl MemoryQueue {
    /// A queue with the given settings.
    pub fn new(config: MemoryQueueConfig) -> Self {
        MemoryQueue {
            inner: Mutex::new(Inner::default()),
            config,
            submit_ready: Notify::new(),
            lane_ready: [Notify::new(), Notify::new()],
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the state half-changed in a way
        // that matters more than stopping every worker would, so keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for `notify` (registered before `check` runs, so no wake-up is lost) until
    /// `check` yields a value or `deadline` passes; `next_wake` lets `check` ask to be
    /// re-run earlier (a delayed job coming due).
    async fn wait_until<T>(
        &self,
        notify: &Notify,
        deadline: Instant,
        mut check: impl FnMut(&mut Inner) -> (Option<T>, Option<Instant>),
    ) -> Option<T> {
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (value, next_wake) = check(&mut self.lock());
            if value.is_some() {
                return value;
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let wake = next_wake.map_or(deadline, |w| w.min(deadline));
            let _ = tokio::time::timeout_at(wake, notified).await;
        }
    }

    fn finish(&self, inner: &mut Inner, id: &JobId, state: JobState) {
        let now = now_ms();
        if let Some(rec) = inner.records.get_mut(id) {
            rec.state = state;
            rec.updated_ms = now;
            rec.finished_ms = Some(now);
        }
        for lane in &mut inner.lanes {
            lane.estimates.remove(id);
        }
        // An ephemeral output lives in its worker's cache only: the envelope stays, so
        // another worker can re-run the job from it.
        let held = inner
            .records
            .get(id)
            .and_then(|r| r.result.as_ref())
            .is_some_and(|r| r.held_by.is_some());
        if (state == JobState::Succeeded && !held) || state == JobState::Cancelled {
            inner.jobs.remove(id);
        }
        match state {
            JobState::Succeeded => self.release_children(inner, id),
            JobState::Failed | JobState::Dead | JobState::Cancelled => {
                self.fail_dependants(inner, id, state)
            }
            _ => {}
        }
        self.sweep(inner, now);
        self.changed.notify_waiters();
    }

    fn dead_letter(&self, inner: &mut Inner, letter: DeadLetter) {
        inner.dead.retain(|d| d.id != letter.id);
        inner.dead.push_back(letter);
        while inner.dead.len() > self.config.max_dead_letters {
            if let Some(id) = inner.dead.pop_front().and_then(|old| JobId::parse(&old.id)) {
                inner.jobs.remove(&id);
            }
        }
    }

    /// Drops records that finished longer than `finished_ttl` ago (at most every 10 s,
    /// or every `finished_ttl` when that is shorter, so a short TTL frees results, and
    /// the pooled buffers they hold, promptly).
    fn sweep(&self, inner: &mut Inner, now: u64) {
        if now < inner.next_sweep_ms {
            return;
        }
        let ttl = self.config.finished_ttl.as_millis() as u64;
        inner.next_sweep_ms = now + ttl.min(10_000);
        let dead: std::collections::HashSet<String> =
            inner.dead.iter().map(|d| d.id.clone()).collect();
        let expired: Vec<JobId> = inner
            .records
            .values()
            .filter(|r| {
                r.state.is_terminal()
                    && r.finished_ms.is_some_and(|f| f + ttl < now)
                    && !dead.contains(r.id.as_str())
            })
            .map(|r| r.id.clone())
            .collect();
        for id in expired {
            inner.records.remove(&id);
            inner.jobs.remove(&id);
            inner.children.remove(&id);
            inner.failed_by.remove(&id);
        }
    }

    /// Checks that `lease` is the job's current lease.
    fn check_lease(inner: &Inner, lease: &Lease) -> Result<(), QueueError> {
        match inner.leases.get(&lease.job_id) {
            Some(a) if a.attempt == lease.attempt && a.consumer == lease.consumer => Ok(()),
            _ => Err(QueueError::LeaseLost(lease.job_id.to_string())),
        }
    }

    /// Leases `id` to `consumer`, counting a delivery.
    fn deliver(
        inner: &mut Inner,
        id: &JobId,
        lane: DeviceClass,
        consumer: &str,
        lease: Duration,
        estimate_s: Option<f64>,
    ) -> Option<Delivery> {
        let rec = inner.records.get_mut(id)?;
        let env = inner.jobs.get_mut(id)?;
        rec.attempts += 1;
        rec.state = JobState::Running;
        rec.started_ms = Some(now_ms());
        rec.updated_ms = now_ms();
        rec.worker = Some(consumer.to_string());
        // Copies the envelope only when a worker still holds the previous delivery's.
        Arc::make_mut(env).attempts = rec.attempts;
        let attempt = rec.attempts;
        inner.leases.insert(
            id.clone(),
            ActiveLease {
                lane,
                attempt,
                consumer: consumer.to_string(),
                deadline: Instant::now() + lease,
            },
        );
        let entry = format!("{id}/{attempt}");
        Some(Delivery {
            lease: Lease {
                job_id: id.clone(),
                lane,
                attempt,
                consumer: consumer.to_string(),
                entry,
                results_to: None,
            },
            envelope: env.clone(),
            estimate_s,
            remote: Vec::new(),
        })
    }
}

/// Outputs written to a URL need object storage, which only the Redis queue has: said
/// at submit rather than silently ignored.
fn refuse_results_to(job: &JobEnvelope) -> Result<(), QueueError> {
    match &job.results_to {
        None => Ok(()),
        Some(url) => Err(QueueError::Invalid(ValidationError::InvalidParameter {
            name: "results_to".into(),
            reason: format!(
                "writing outputs to {url} needs the Redis queue built with object storage \
                 (feature `objects`); the embedded queue keeps results in memory"
            ),
        })),
    }
}
