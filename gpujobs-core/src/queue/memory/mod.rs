//! The embedded in-memory queue: the Redis queue's semantics in one process.
//!
//! It backs `gpujobs demo` and `gpujobs run`, the tests of everything above the queue,
//! and services that embed the library without Redis. Jobs live in a table split into
//! shards by id (`table`), the submit queue and each lane behind their own locks, so a
//! submitter, a scheduler and workers on different cores rarely wait for each other; no
//! lock is held across an `.await`. Waiting (for submits, for ready jobs, for results)
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
mod table;

use super::lane::LaneQueue;
use super::types::{DeadLetter, Lease, WorkerInfo};
use crate::model::device::DeviceClass;
use crate::model::envelope::{JobEnvelope, now_ms};
use crate::model::error::{QueueError, ValidationError};
use crate::model::id::JobId;
use crate::model::retry::RetryPolicy;
use crate::model::state::JobState;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use table::{Shards, Table, lock};
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

/// The embedded queue.
pub struct MemoryQueue {
    jobs: Shards,
    submitted: Mutex<VecDeque<JobId>>,
    lanes: [Mutex<LaneQueue>; 2],
    dead: Mutex<VecDeque<DeadLetter>>,
    workers: Mutex<HashMap<String, WorkerInfo>>,
    next_entry: AtomicU64,
    next_sweep_ms: AtomicU64,
    /// A job ended since the last sweep: only endings sweep, as each ending once did
    /// under the one lock (a reclaim that ends nothing must not take away a result its
    /// waiter has not read yet).
    ended: AtomicBool,
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
            jobs: Shards::default(),
            submitted: Mutex::default(),
            lanes: Default::default(),
            dead: Mutex::default(),
            workers: Mutex::default(),
            next_entry: AtomicU64::new(0),
            next_sweep_ms: AtomicU64::new(0),
            ended: AtomicBool::new(false),
            config,
            submit_ready: Notify::new(),
            lane_ready: [Notify::new(), Notify::new()],
            changed: Notify::new(),
        }
    }

    fn lane(&self, lane: DeviceClass) -> MutexGuard<'_, LaneQueue> {
        lock(&self.lanes[lane_index(lane)])
    }

    /// Runs `op` on the table with the shard of `id` locked, or with every shard locked
    /// when the job has graph children (its ending may reach them). Only a graph submit
    /// adds children, and it holds every shard, so the check cannot go stale under `op`.
    fn with_job<R>(&self, id: &JobId, mut op: impl FnMut(&mut dyn Table) -> R) -> R {
        {
            let mut shard = self.jobs.of(id);
            if shard.jobs.get(id).is_none_or(|j| j.children.is_empty()) {
                return op(&mut *shard);
            }
        }
        op(&mut self.jobs.all())
    }

    /// Waits for `notify` (registered before `check` runs, so no wake-up is lost) until
    /// `check` yields a value or `deadline` passes; `next_wake` lets `check` ask to be
    /// re-run earlier (a delayed job coming due).
    async fn wait_until<T>(
        &self,
        notify: &Notify,
        deadline: Instant,
        mut check: impl FnMut() -> (Option<T>, Option<Instant>),
    ) -> Option<T> {
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (value, next_wake) = check();
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

    /// Ends job `id` in `state` (a terminal one): its lane backlog, its envelope (kept
    /// while it may run again), and the jobs of a graph that wait on it.
    fn finish(&self, t: &mut dyn Table, id: &JobId, state: JobState) {
        let now = now_ms();
        let Some(job) = t.get_mut(id) else {
            return;
        };
        let rec = &mut job.record;
        rec.state = state;
        rec.updated_ms = now;
        rec.finished_ms = Some(now);
        if let (Some(est), Some(lane)) = (job.on_lane.take(), rec.lane) {
            self.lane(lane).take_backlog(est);
        }
        // An ephemeral output lives in its worker's cache only: the envelope stays, so
        // another worker can re-run the job from it.
        let held = rec.result.as_ref().is_some_and(|r| r.held_by.is_some());
        if (state == JobState::Succeeded && !held) || state == JobState::Cancelled {
            job.env = None;
        }
        job.lease = None;
        t.set_leased(id, false);
        match state {
            JobState::Succeeded => self.release_children(t, id),
            JobState::Failed | JobState::Dead | JobState::Cancelled => {
                self.fail_dependants(t, id, state)
            }
            _ => {}
        }
        self.ended.store(true, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    fn dead_letter(&self, letter: DeadLetter) {
        let mut dead = lock(&self.dead);
        dead.retain(|d| d.id != letter.id);
        dead.push_back(letter);
        // A job whose letter is dropped here expires with its record (`sweep`).
        while dead.len() > self.config.max_dead_letters {
            dead.pop_front();
        }
    }

    /// Drops records that finished longer than `finished_ttl` before `now`, except dead
    /// letters, after a job ended (at most every 10 s, or every `finished_ttl` when that
    /// is shorter, so a short TTL frees results, and the pooled buffers they hold,
    /// promptly). Called with no lock held, after an operation that may have ended jobs,
    /// with the time read before it: what that operation ended is never older than
    /// `now`, so even with a zero TTL its waiter reads it (a later ending sweeps it).
    fn sweep(&self, now: u64) {
        if !self.ended.load(Ordering::Relaxed) {
            return;
        }
        let due = self.next_sweep_ms.load(Ordering::Relaxed);
        let ttl = self.config.finished_ttl.as_millis() as u64;
        let next = now + ttl.min(10_000);
        if now < due
            || self
                .next_sweep_ms
                .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.ended.store(false, Ordering::Relaxed);
        let dead: HashSet<String> = lock(&self.dead).iter().map(|d| d.id.clone()).collect();
        self.jobs.each(|shard| {
            shard.jobs.retain(|id, job| {
                let r = &job.record;
                !(r.state.is_terminal()
                    && r.finished_ms.is_some_and(|f| f + ttl < now)
                    && !dead.contains(id.as_str()))
            })
        });
    }

    /// Checks that `lease` is the job's current lease.
    fn check_lease(t: &dyn Table, lease: &Lease) -> Result<(), QueueError> {
        match t.get(&lease.job_id).and_then(|j| j.lease.as_ref()) {
            Some(a) if a.attempt == lease.attempt && a.consumer == lease.consumer => Ok(()),
            _ => Err(QueueError::LeaseLost(lease.job_id.to_string())),
        }
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
