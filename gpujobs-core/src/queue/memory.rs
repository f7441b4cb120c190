//! The embedded in-memory queue: the Redis queue's semantics in one process.
//!
//! It backs `gpujobs demo` and `gpujobs run`, the tests of everything above the queue,
//! and services that embed the library without Redis. State lives behind one mutex that
//! is never held across an `.await`; waiting (for submits, for ready jobs, for results)
//! uses `Notify`, so idle consumers cost nothing. Durability ends with the process.

use super::Queue;
use super::lane::LaneQueue;
use super::types::{
    CancelOutcome, DeadLetter, Delivery, FailOutcome, Incoming, LaneStats, Lease, RenewOutcome,
    WorkerInfo,
};
use crate::device::DeviceClass;
use crate::envelope::{JobEnvelope, now_ms, now_us};
use crate::error::{ErrorClass, JobError, QueueError, ValidationError};
use crate::id::JobId;
use crate::placement::PlacementDecision;
use crate::retry::RetryPolicy;
use crate::state::{JobRecord, JobResult, JobState};
use async_trait::async_trait;
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

    /// A parent succeeded: each child that now has every input is queued.
    fn release_children(&self, inner: &mut Inner, id: &JobId) {
        let Some(children) = inner.children.remove(id) else {
            return;
        };
        let mut released = false;
        for child in children {
            let Some(rec) = inner.records.get_mut(&child) else {
                continue;
            };
            if rec.state != JobState::Waiting {
                continue;
            }
            rec.waiting_on = rec.waiting_on.saturating_sub(1);
            if rec.waiting_on == 0 {
                rec.state = JobState::Queued;
                rec.updated_ms = now_ms();
                inner.submitted.push_back(child);
                released = true;
            }
        }
        if released {
            self.submit_ready.notify_waiters();
        }
    }

    /// Each succeeded parent of `id` and the worker that ran it.
    fn holders(inner: &Inner, id: &JobId) -> Vec<(JobId, String)> {
        let Some(rec) = inner.records.get(id) else {
            return Vec::new();
        };
        rec.parents
            .iter()
            .filter_map(|p| {
                let parent = inner.records.get(p)?;
                let worker = parent.worker.clone()?;
                (parent.state == JobState::Succeeded).then(|| (p.clone(), worker))
            })
            .collect()
    }

    /// `id` is retried: the jobs that failed only because it did (directly or through
    /// others) wait for it again, unless another of their parents ended without a
    /// result.
    fn revive_dependants(inner: &mut Inner, id: &JobId) {
        let mut stack = inner.children.get(id).cloned().unwrap_or_default();
        while let Some(child) = stack.pop() {
            if !inner.failed_by.contains_key(&child) {
                continue;
            }
            let Some(parents) = inner.records.get(&child).map(|r| r.parents.clone()) else {
                continue;
            };
            let states: Vec<Option<JobState>> = parents
                .iter()
                .map(|p| inner.records.get(p).map(|r| r.state))
                .collect();
            let broken = states.iter().any(|s| {
                matches!(
                    s,
                    None | Some(JobState::Failed | JobState::Dead | JobState::Cancelled)
                )
            });
            if broken {
                continue;
            }
            let waiting = states
                .iter()
                .filter(|s| **s != Some(JobState::Succeeded))
                .count() as u32;
            inner.failed_by.remove(&child);
            inner.dead.retain(|d| d.id != child.as_str());
            if let Some(rec) = inner.records.get_mut(&child) {
                rec.state = JobState::Waiting;
                rec.waiting_on = waiting;
                rec.error = None;
                rec.finished_ms = None;
                rec.updated_ms = now_ms();
            }
            stack.extend(inner.children.get(&child).cloned().unwrap_or_default());
        }
    }

    /// A parent ended without a result: every job waiting on it, directly or through
    /// other jobs, ends `failed` naming it (and is dead-lettered, as failed jobs are).
    fn fail_dependants(&self, inner: &mut Inner, root: &JobId, state: JobState) {
        let mut stack: Vec<(JobId, JobId)> = inner
            .children
            .get(root)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c, root.clone()))
            .collect();
        let now = now_ms();
        while let Some((child, parent)) = stack.pop() {
            let Some(rec) = inner.records.get_mut(&child) else {
                continue;
            };
            if rec.state != JobState::Waiting {
                continue;
            }
            let reason = dependant_failure(&parent, root, state);
            rec.state = JobState::Failed;
            rec.error = Some(JobError::permanent(reason.clone()));
            rec.updated_ms = now;
            rec.finished_ms = Some(now);
            let kind = rec.kind.clone();
            self.dead_letter(
                inner,
                DeadLetter {
                    id: child.to_string(),
                    kind: Some(kind),
                    reason,
                    attempts: 0,
                    at_ms: now,
                    raw: None,
                },
            );
            inner.failed_by.insert(child.clone(), root.clone());
            for grandchild in inner.children.get(&child).cloned().unwrap_or_default() {
                stack.push((grandchild, child.clone()));
            }
        }
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
            },
            envelope: env.clone(),
            estimate_s,
        })
    }
}

/// Why a job of a graph failed without running: its parent `parent` cannot give it an
/// input because `root` ended in `state` (the same text as the Redis queue's).
pub(crate) fn dependant_failure(parent: &JobId, root: &JobId, state: JobState) -> String {
    if parent == root {
        format!("parent job {root} ended {state}")
    } else {
        format!("parent job {parent} cannot run: job {root} ended {state}")
    }
}

impl MemoryQueue {
    /// Records a success under the lock the caller holds.
    fn complete_locked(
        &self,
        inner: &mut Inner,
        lease: &Lease,
        mut result: JobResult,
    ) -> Result<(), QueueError> {
        Self::check_lease(inner, lease)?;
        inner.leases.remove(&lease.job_id);
        if let Some(rec) = inner.records.get_mut(&lease.job_id) {
            result.timings.total_s = now_us().saturating_sub(rec.created_us) as f64 / 1e6;
            rec.result = Some(result);
            rec.error = None;
        }
        self.finish(inner, &lease.job_id, JobState::Succeeded);
        Ok(())
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

#[async_trait]
impl Queue for MemoryQueue {
    async fn submit(&self, mut job: JobEnvelope) -> Result<JobId, QueueError> {
        refuse_results_to(&job)?;
        job.stamp_for_submit();
        let id = job.id.clone();
        {
            let mut inner = self.lock();
            // Submitting the same id twice is a no-op, so clients may retry a submit.
            if inner.records.contains_key(&id) {
                return Ok(id);
            }
            inner.records.insert(id.clone(), JobRecord::submitted(&job));
            inner.jobs.insert(id.clone(), Arc::new(job));
            inner.submitted.push_back(id.clone());
        }
        self.submit_ready.notify_waiters();
        Ok(id)
    }

    async fn submit_graph(&self, jobs: Vec<JobEnvelope>) -> Result<Vec<JobId>, QueueError> {
        jobs.iter().try_for_each(refuse_results_to)?;
        let order = crate::graph::order(&jobs).map_err(ValidationError::from)?;
        let ids: Vec<JobId> = jobs.iter().map(|j| j.id.clone()).collect();
        let mut slots: Vec<Option<JobEnvelope>> = jobs.into_iter().map(Some).collect();
        {
            let mut inner = self.lock();
            let mut ended_parents = Vec::new();
            for i in order {
                let Some(mut job) = slots[i].take() else {
                    continue;
                };
                job.stamp_for_submit();
                let id = job.id.clone();
                if inner.records.contains_key(&id) {
                    continue;
                }
                let mut rec = JobRecord::submitted(&job);
                let mut waiting_on = 0;
                for parent in &rec.parents {
                    let state = inner.records.get(parent).map(|p| p.state);
                    match state {
                        Some(JobState::Succeeded) => {}
                        Some(s) if s.is_terminal() => ended_parents.push((parent.clone(), s)),
                        _ => {}
                    }
                    if state != Some(JobState::Succeeded) {
                        waiting_on += 1;
                        inner
                            .children
                            .entry(parent.clone())
                            .or_default()
                            .push(id.clone());
                    }
                }
                rec.waiting_on = waiting_on;
                rec.state = if waiting_on == 0 {
                    inner.submitted.push_back(id.clone());
                    JobState::Queued
                } else {
                    JobState::Waiting
                };
                inner.records.insert(id.clone(), rec);
                inner.jobs.insert(id, Arc::new(job));
            }
            // A resubmitted graph whose parent has already failed: its new children fail.
            for (parent, state) in ended_parents {
                self.fail_dependants(&mut inner, &parent, state);
            }
        }
        self.submit_ready.notify_waiters();
        self.changed.notify_waiters();
        Ok(ids)
    }

    async fn status(&self, id: &JobId) -> Result<Option<JobRecord>, QueueError> {
        Ok(self.lock().records.get(id).cloned())
    }

    async fn job_inputs(&self, id: &JobId) -> Result<Option<JobEnvelope>, QueueError> {
        Ok(self.lock().jobs.get(id).map(|e| (**e).clone()))
    }

    async fn cancel(&self, id: &JobId) -> Result<CancelOutcome, QueueError> {
        let mut inner = self.lock();
        let Some(rec) = inner.records.get_mut(id) else {
            return Ok(CancelOutcome::NotFound);
        };
        match rec.state {
            s if s.is_terminal() => Ok(CancelOutcome::AlreadyFinished(s)),
            JobState::Running => {
                rec.cancel_requested = true;
                Ok(CancelOutcome::Requested)
            }
            _ => {
                let lane = rec.lane;
                inner.submitted.retain(|j| j != id);
                inner.taken.retain(|_, j| j != id);
                if let Some(lane) = lane {
                    inner.lanes[lane_index(lane)].remove(id);
                }
                self.finish(&mut inner, id, JobState::Cancelled);
                Ok(CancelOutcome::Cancelled)
            }
        }
    }

    async fn wait(&self, id: &JobId, timeout: Duration) -> Result<Option<JobRecord>, QueueError> {
        let deadline = Instant::now() + timeout;
        let done = self
            .wait_until(&self.changed, deadline, |inner| {
                match inner.records.get(id) {
                    Some(r) if !r.state.is_terminal() => (None, None),
                    other => (Some(other.cloned()), None),
                }
            })
            .await;
        match done {
            Some(rec) => Ok(rec),
            None => self.status(id).await,
        }
    }

    async fn take_submitted(
        &self,
        _consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Incoming>, QueueError> {
        let deadline = Instant::now() + wait;
        let taken = self
            .wait_until(&self.submit_ready, deadline, |inner| {
                let mut out = Vec::new();
                while out.len() < max.max(1) {
                    let Some(id) = inner.submitted.pop_front() else {
                        break;
                    };
                    let Some(env) = inner.jobs.get(&id).cloned() else {
                        continue;
                    };
                    inner.next_entry += 1;
                    let entry = format!("s{}", inner.next_entry);
                    inner.taken.insert(entry.clone(), id.clone());
                    let holders = Self::holders(inner, &id);
                    out.push(Incoming {
                        entry,
                        job: Ok(env),
                        raw: None,
                        id: Some(id),
                        holders,
                    });
                }
                ((!out.is_empty()).then_some(out), None)
            })
            .await;
        Ok(taken.unwrap_or_default())
    }

    async fn place(
        &self,
        incoming: &Incoming,
        decision: PlacementDecision,
    ) -> Result<(), QueueError> {
        let lane = decision.lane;
        {
            let mut inner = self.lock();
            let id = inner
                .taken
                .remove(&incoming.entry)
                .ok_or_else(|| QueueError::NotFound(incoming.entry.clone()))?;
            let Some(rec) = inner.records.get_mut(&id) else {
                return Ok(());
            };
            if rec.state.is_terminal() {
                return Ok(());
            }
            let estimate = decision.estimate_for(lane).unwrap_or(0.0);
            rec.state = JobState::Placed;
            rec.lane = Some(lane);
            rec.updated_ms = now_ms();
            let priority = rec.priority;
            rec.placement = Some(decision);
            let near = rec.placement.as_ref().and_then(|d| {
                let wait = Duration::from_millis(d.worker_wait_ms);
                Some((d.worker.clone()?, Instant::now() + wait))
            });
            let q = &mut inner.lanes[lane_index(lane)];
            q.estimates.insert(id.clone(), estimate);
            match near {
                Some((worker, until)) => q.push_near(&worker, id, priority, until),
                None => q.push(id, priority),
            }
        }
        self.lane_ready[lane_index(lane)].notify_waiters();
        Ok(())
    }

    async fn reject(&self, incoming: &Incoming, reason: &str) -> Result<(), QueueError> {
        let mut inner = self.lock();
        let id = inner.taken.remove(&incoming.entry);
        let (id_text, kind) = match &id {
            Some(id) => (
                id.to_string(),
                inner.records.get(id).map(|r| r.kind.clone()),
            ),
            None => (incoming.entry.clone(), None),
        };
        if let Some(id) = &id {
            if let Some(rec) = inner.records.get_mut(id) {
                rec.error = Some(JobError::permanent(reason));
            }
            self.finish(&mut inner, id, JobState::Dead);
        }
        let letter = DeadLetter {
            id: id_text,
            kind,
            reason: reason.to_string(),
            attempts: 0,
            at_ms: now_ms(),
            raw: incoming.raw.clone(),
        };
        self.dead_letter(&mut inner, letter);
        Ok(())
    }

    async fn fetch(
        &self,
        lane: DeviceClass,
        consumer: &str,
        max: usize,
        lease: Duration,
        wait: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        let deadline = Instant::now() + wait;
        let li = lane_index(lane);
        let got = self
            .wait_until(&self.lane_ready[li], deadline, |inner| {
                let now = Instant::now();
                inner.lanes[li].promote_due(now);
                inner.lanes[li].expire_near(now);
                let mut out = Vec::new();
                while out.len() < max.max(1) {
                    let next = inner.lanes[li].pop_near(consumer);
                    let Some(id) = next.or_else(|| inner.lanes[li].pop()) else {
                        break;
                    };
                    let placed = inner
                        .records
                        .get(&id)
                        .is_some_and(|r| r.state == JobState::Placed);
                    if !placed {
                        continue;
                    }
                    let estimate = inner.lanes[li].estimates.remove(&id);
                    if let Some(d) = Self::deliver(inner, &id, lane, consumer, lease, estimate) {
                        out.push(d);
                    }
                }
                let lane_q = &inner.lanes[li];
                let wake = [lane_q.next_due(), lane_q.next_near_due()]
                    .into_iter()
                    .flatten()
                    .min();
                ((!out.is_empty()).then_some(out), wake)
            })
            .await;
        Ok(got.unwrap_or_default())
    }

    async fn renew(&self, lease: &Lease, extend: Duration) -> Result<RenewOutcome, QueueError> {
        let mut inner = self.lock();
        Self::check_lease(&inner, lease)?;
        if let Some(a) = inner.leases.get_mut(&lease.job_id) {
            a.deadline = Instant::now() + extend;
        }
        let cancel_requested = inner
            .records
            .get(&lease.job_id)
            .is_some_and(|r| r.cancel_requested);
        Ok(RenewOutcome { cancel_requested })
    }

    async fn complete(&self, lease: &Lease, result: JobResult) -> Result<(), QueueError> {
        let mut inner = self.lock();
        self.complete_locked(&mut inner, lease, result)
    }

    /// One lock for the whole batch.
    async fn complete_batch(&self, batch: Vec<(Lease, JobResult)>) -> Vec<Result<(), QueueError>> {
        let mut inner = self.lock();
        batch
            .into_iter()
            .map(|(lease, result)| self.complete_locked(&mut inner, &lease, result))
            .collect()
    }

    async fn fail(&self, lease: &Lease, error: &JobError) -> Result<FailOutcome, QueueError> {
        let mut inner = self.lock();
        Self::check_lease(&inner, lease)?;
        inner.leases.remove(&lease.job_id);
        let id = lease.job_id.clone();
        let Some(rec) = inner.records.get_mut(&id) else {
            return Err(QueueError::NotFound(id.to_string()));
        };
        rec.error = Some(error.clone());
        rec.updated_ms = now_ms();
        let (attempts, max, priority, kind) = (
            rec.attempts,
            rec.max_attempts,
            rec.priority,
            rec.kind.clone(),
        );
        let cancelled = error.class == ErrorClass::Cancelled || rec.cancel_requested;
        let letter = |reason: String| DeadLetter {
            id: id.to_string(),
            kind: Some(kind.clone()),
            reason,
            attempts,
            at_ms: now_ms(),
            raw: None,
        };
        if cancelled {
            self.finish(&mut inner, &id, JobState::Cancelled);
            return Ok(FailOutcome::Cancelled);
        }
        if error.class == ErrorClass::Permanent {
            self.finish(&mut inner, &id, JobState::Failed);
            self.dead_letter(&mut inner, letter(error.message.clone()));
            return Ok(FailOutcome::Failed);
        }
        if attempts >= max {
            self.finish(&mut inner, &id, JobState::Dead);
            self.dead_letter(
                &mut inner,
                letter(format!(
                    "failed on all {max} attempts; last error: {}",
                    error.message
                )),
            );
            return Ok(FailOutcome::Dead);
        }
        let delay = self.config.retry.delay(attempts, id.as_str());
        rec.state = JobState::Placed;
        let li = lane_index(lease.lane);
        let estimate = rec
            .placement
            .as_ref()
            .and_then(|p| p.estimate_for(lease.lane))
            .unwrap_or(0.0);
        inner.lanes[li].estimates.insert(id.clone(), estimate);
        inner.lanes[li].push_delayed(id, priority, Instant::now() + delay);
        drop(inner);
        self.lane_ready[li].notify_waiters();
        Ok(FailOutcome::Retrying { attempts, delay })
    }

    async fn release(&self, lease: &Lease) -> Result<(), QueueError> {
        let li = lane_index(lease.lane);
        {
            let mut inner = self.lock();
            Self::check_lease(&inner, lease)?;
            inner.leases.remove(&lease.job_id);
            let Some(rec) = inner.records.get_mut(&lease.job_id) else {
                return Ok(());
            };
            rec.attempts = rec.attempts.saturating_sub(1);
            if rec.cancel_requested {
                let id = lease.job_id.clone();
                self.finish(&mut inner, &id, JobState::Cancelled);
                return Ok(());
            }
            rec.state = JobState::Placed;
            rec.updated_ms = now_ms();
            let priority = rec.priority;
            let estimate = rec
                .placement
                .as_ref()
                .and_then(|p| p.estimate_for(lease.lane))
                .unwrap_or(0.0);
            inner.lanes[li]
                .estimates
                .insert(lease.job_id.clone(), estimate);
            inner.lanes[li].push_front(lease.job_id.clone(), priority);
        }
        self.lane_ready[li].notify_waiters();
        Ok(())
    }

    async fn release_overdue_near(&self) -> Result<(), QueueError> {
        let now = Instant::now();
        let mut inner = self.lock();
        for (li, lane) in inner.lanes.iter_mut().enumerate() {
            if lane.expire_near(now) {
                self.lane_ready[li].notify_waiters();
            }
        }
        Ok(())
    }

    async fn reclaim_expired(
        &self,
        lane: DeviceClass,
        consumer: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        let mut inner = self.lock();
        let now = Instant::now();
        inner.lanes[lane_index(lane)].expire_near(now);
        let mut expired: Vec<(Instant, JobId)> = inner
            .leases
            .iter()
            .filter(|(_, a)| a.lane == lane && a.deadline <= now)
            .map(|(id, a)| (a.deadline, id.clone()))
            .collect();
        expired.sort();
        let mut out = Vec::new();
        for (_, id) in expired {
            let Some(old) = inner.leases.remove(&id) else {
                continue;
            };
            let Some(rec) = inner.records.get_mut(&id) else {
                continue;
            };
            if rec.cancel_requested {
                self.finish(&mut inner, &id, JobState::Cancelled);
                continue;
            }
            if rec.attempts >= rec.max_attempts {
                let reason = format!(
                    "lease expired on attempt {} of {} (worker {} stopped renewing it)",
                    rec.attempts, rec.max_attempts, old.consumer
                );
                rec.error = Some(JobError::temporary(reason.clone()));
                let letter = DeadLetter {
                    id: id.to_string(),
                    kind: Some(rec.kind.clone()),
                    reason,
                    attempts: rec.attempts,
                    at_ms: now_ms(),
                    raw: None,
                };
                self.finish(&mut inner, &id, JobState::Dead);
                self.dead_letter(&mut inner, letter);
                continue;
            }
            if out.len() >= max {
                // Leave it expired for the next reclaim, by this or another worker.
                inner.leases.insert(id, old);
                continue;
            }
            if let Some(d) = Self::deliver(&mut inner, &id, lane, consumer, lease, None) {
                out.push(d);
            }
        }
        Ok(out)
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        Ok(self.lock().dead.iter().rev().take(max).cloned().collect())
    }

    async fn retry_dead(&self, id: &JobId) -> Result<bool, QueueError> {
        {
            let mut inner = self.lock();
            let Some(pos) = inner.dead.iter().position(|d| d.id == id.as_str()) else {
                return Ok(false);
            };
            let unmet: Vec<String> = inner
                .records
                .get(id)
                .map(|r| r.parents.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|p| inner.records.get(p).map(|r| r.state) != Some(JobState::Succeeded))
                .map(|p| p.to_string())
                .collect();
            if !unmet.is_empty() {
                return Err(QueueError::Refused(format!(
                    "job {id} reads outputs of {}, which have not succeeded: retry those first",
                    unmet.join(", ")
                )));
            }
            let Some(env) = inner.jobs.get_mut(id) else {
                return Ok(false);
            };
            Arc::make_mut(env).attempts = 0;
            let Some(rec) = inner.records.get_mut(id) else {
                return Ok(false);
            };
            rec.state = JobState::Queued;
            rec.attempts = 0;
            rec.error = None;
            rec.finished_ms = None;
            rec.cancel_requested = false;
            rec.updated_ms = now_ms();
            inner.dead.remove(pos);
            inner.submitted.push_back(id.clone());
            Self::revive_dependants(&mut inner, id);
        }
        self.submit_ready.notify_waiters();
        Ok(true)
    }

    async fn heartbeat(&self, info: &WorkerInfo) -> Result<(), QueueError> {
        let mut info = info.clone();
        info.last_seen_ms = now_ms();
        self.lock().workers.insert(info.id.clone(), info);
        Ok(())
    }

    async fn deregister(&self, worker_id: &str) -> Result<(), QueueError> {
        let mut inner = self.lock();
        inner.workers.remove(worker_id);
        // Jobs placed on it by locality go to their lanes at once.
        for (li, lane) in inner.lanes.iter_mut().enumerate() {
            if lane.release_near(worker_id) {
                self.lane_ready[li].notify_waiters();
            }
        }
        Ok(())
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>, QueueError> {
        let cutoff = now_ms().saturating_sub(self.config.worker_ttl.as_millis() as u64);
        let mut v: Vec<WorkerInfo> = self
            .lock()
            .workers
            .values()
            .filter(|w| w.last_seen_ms >= cutoff)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }

    async fn lane_stats(&self) -> Result<Vec<LaneStats>, QueueError> {
        let inner = self.lock();
        Ok(DeviceClass::ALL
            .iter()
            .map(|&lane| {
                let q = &inner.lanes[lane_index(lane)];
                LaneStats {
                    lane,
                    ready: q.ready_len() as u64,
                    delayed: q.delayed_len() as u64,
                    in_flight: inner.leases.values().filter(|a| a.lane == lane).count() as u64,
                    backlog_s: q.backlog_s(),
                }
            })
            .collect())
    }
}
