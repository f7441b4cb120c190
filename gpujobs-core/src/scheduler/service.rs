//! The scheduler loop: takes submitted jobs, validates them, places each on a lane,
//! and forwards it. Several schedulers may share one queue.

use crate::exec::registry::Registry;
use crate::model::device::DeviceClass;
use crate::model::error::QueueError;
use crate::model::limits::Limits;
use crate::model::retry::Backoff;
use crate::queue::{Incoming, Queue};
use crate::scheduler::locality::HeldInputs;
use crate::scheduler::placement::{ClusterFacts, LiveWorker, Placement, PlacementDecision};
use crate::shutdown::Shutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How a scheduler behaves.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Consumer name in the submit group.
    pub id: String,
    /// Most entries taken per call.
    pub batch: usize,
    /// How long one take waits for submissions.
    pub poll: Duration,
    /// How often live workers and lane backlogs are re-read.
    pub facts_every: Duration,
    /// Memory limits jobs are validated against.
    pub limits: Limits,
    /// How often jobs placed on a worker by locality and not taken by it in time are
    /// moved to their lane ([`crate::queue::ScheduleQueue::release_overdue_near`]).
    pub near_sweep_every: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            id: crate::model::id::unique_worker_id(DeviceClass::Cpu).replace("-cpu-", "-sched-"),
            batch: 256,
            poll: Duration::from_millis(500),
            facts_every: Duration::from_millis(250),
            limits: Limits::detect(),
            near_sweep_every: Duration::from_secs(1),
        }
    }
}

/// What a scheduler did before it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SchedulerReport {
    /// Jobs placed on a lane.
    pub placed: u64,
    /// Entries dead-lettered as invalid.
    pub rejected: u64,
}

/// Receives a scheduler's decisions, for metrics.
pub trait SchedulerObserver: Send + Sync {
    /// A job was placed on `lane`.
    fn placed(&self, lane: DeviceClass);
    /// A job was placed on `lane`, on the worker holding its inputs (after
    /// [`placed`](Self::placed) for the same job). The default ignores it.
    fn placed_by_locality(&self, lane: DeviceClass) {
        let _ = lane;
    }
    /// An entry was dead-lettered as invalid.
    fn rejected(&self);
}

/// Places submitted jobs on lanes.
pub struct Scheduler {
    queue: Arc<dyn Queue>,
    registry: Arc<Registry>,
    placement: Arc<dyn Placement>,
    config: SchedulerConfig,
    observer: Option<Arc<dyn SchedulerObserver>>,
}

impl Scheduler {
    /// A scheduler validating with `registry`'s kinds and placing with `placement`.
    pub fn new(
        queue: Arc<dyn Queue>,
        registry: Arc<Registry>,
        placement: Arc<dyn Placement>,
        config: SchedulerConfig,
    ) -> Self {
        Scheduler {
            queue,
            registry,
            placement,
            config,
            observer: None,
        }
    }

    /// Reports every decision to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn SchedulerObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Reads live worker slots and lane backlogs.
    pub async fn facts(&self) -> Result<ClusterFacts, QueueError> {
        let mut facts = ClusterFacts::default();
        for w in self.queue.workers().await? {
            let slots = w.concurrency.max(1);
            *facts.slots.entry(w.lane).or_insert(0) += slots;
            // Only workers that read the jobs placed on them can be placed on.
            if w.locality {
                let free_slots = slots.saturating_sub(w.in_flight);
                let lane = w.lane;
                facts.workers.insert(
                    w.id,
                    LiveWorker {
                        lane,
                        slots,
                        free_slots,
                    },
                );
            }
        }
        for lane in self.queue.lane_stats().await? {
            facts.backlog_s.insert(lane.lane, lane.backlog_s);
        }
        Ok(facts)
    }

    /// Runs until `shutdown` fires. Queue errors are logged and retried with backoff.
    pub async fn run(self, mut shutdown: Shutdown) -> SchedulerReport {
        let mut report = SchedulerReport::default();
        let mut facts = ClusterFacts::default();
        let mut facts_at: Option<Instant> = None;
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
        let mut swept_at = Instant::now();
        tracing::info!(scheduler = %self.config.id, "scheduler started");
        while !shutdown.is_triggered() {
            if swept_at.elapsed() >= self.config.near_sweep_every {
                swept_at = Instant::now();
                if let Err(e) = self.queue.release_overdue_near().await {
                    tracing::warn!(error = %e, "moving overdue jobs placed by locality failed");
                }
            }
            let taken = match self
                .queue
                .take_submitted(&self.config.id, self.config.batch, self.config.poll)
                .await
            {
                Ok(t) => {
                    backoff.reset();
                    t
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in = ?delay, "taking submissions failed");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.wait() => {}
                    }
                    continue;
                }
            };
            // Re-read when stale, and always while no worker is known (at start-up the
            // first heartbeats may land just after the first read).
            let stale = facts_at.is_none_or(|t| t.elapsed() >= self.config.facts_every)
                || facts.slots.is_empty();
            if stale && !taken.is_empty() {
                match self.facts().await {
                    Ok(f) => {
                        facts = f;
                        facts_at = Some(Instant::now());
                    }
                    Err(e) => tracing::warn!(error = %e, "could not read cluster facts"),
                }
            }
            // Decide every entry first (cheap, in order, so backlog estimates add up),
            // then hand them off: placements in one batch, rejections one by one.
            let mut placements = Vec::new();
            let mut rejects = JoinSet::new();
            for incoming in taken {
                match self.decide(&incoming, &mut facts) {
                    Action::Place(d) => {
                        if let Some(o) = &self.observer {
                            o.placed(d.lane);
                            if d.worker.is_some() {
                                o.placed_by_locality(d.lane);
                            }
                        }
                        placements.push((incoming, *d));
                    }
                    Action::Reject(why) => {
                        if let Some(o) = &self.observer {
                            o.rejected();
                        }
                        let queue = self.queue.clone();
                        rejects.spawn(async move {
                            let entry = incoming.entry.clone();
                            (entry, retrying(|| queue.reject(&incoming, &why)).await)
                        });
                    }
                }
            }
            if !placements.is_empty() {
                let n = placements.len() as u64;
                match retrying(|| self.queue.place_batch(&placements)).await {
                    Ok(()) => report.placed += n,
                    Err(e) => {
                        tracing::warn!(error = %e, jobs = n, "placing failed; another scheduler will take the entries over")
                    }
                }
            }
            while let Some(done) = rejects.join_next().await {
                match done {
                    Ok((_, Ok(()))) => report.rejected += 1,
                    Ok((entry, Err(e))) => {
                        tracing::warn!(%entry, error = %e, "rejecting failed; another scheduler will take the entry over")
                    }
                    Err(e) => tracing::error!(error = %e, "hand-off task failed"),
                }
            }
        }
        tracing::info!(scheduler = %self.config.id, placed = report.placed, rejected = report.rejected, "scheduler stopped");
        report
    }

    /// What to do with one entry: reject it (why) or place it (where).
    fn decide(&self, incoming: &Incoming, facts: &mut ClusterFacts) -> Action {
        let env = match &incoming.job {
            Ok(env) => env,
            Err(reason) => {
                tracing::warn!(entry = %incoming.entry, %reason, "unreadable submission dead-lettered");
                return Action::Reject(reason.clone());
            }
        };
        match self
            .registry
            .inspect(&env.kind, &env.payload, &env.blobs, &self.config.limits)
        {
            Err(e) => {
                tracing::warn!(job = %env.id, kind = %env.kind, error = %e, "invalid job dead-lettered");
                Action::Reject(e.to_string())
            }
            Ok(inspection) => {
                let decision = if incoming.holders.is_empty() {
                    self.placement.place(env, &inspection.cost, facts)
                } else {
                    facts.credit_holders(&incoming.holders);
                    let held = HeldInputs::of(env, &incoming.holders);
                    self.placement
                        .place_near(env, &inspection.cost, facts, &held)
                };
                *facts.backlog_s.entry(decision.lane).or_insert(0.0) += decision.run_estimate_s;
                if let Some(w) = &decision.worker {
                    facts.take_slot(w);
                }
                tracing::debug!(job = %env.id, lane = %decision.lane, reason = %decision.reason, "placed");
                Action::Place(Box::new(decision))
            }
        }
    }
}

/// The scheduler's verdict on one entry.
enum Action {
    Reject(String),
    Place(Box<PlacementDecision>),
}

/// Runs a hand-off until it succeeds or about 30 s of retries pass. A hand-off is
/// idempotent (the queue checks the job's state), so a failed one (say, Redis
/// restarting) is tried again.
async fn retrying<F, Fut>(mut call: F) -> Result<(), QueueError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), QueueError>>,
{
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut attempt = 0;
    loop {
        match call().await {
            Err(e) if attempt < 7 => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?delay, "hand-off failed; retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}
