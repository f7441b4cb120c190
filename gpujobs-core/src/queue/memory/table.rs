//! The embedded queue's job table: every job's state in one value, built once at submit
//! and changed in place, in shards chosen by the job's id so operations on different
//! jobs take different locks.
//!
//! Lock order, the one rule that keeps the queue free of deadlocks: shard locks come
//! first, either one shard or every shard in index order ([`AllShards`]); the other
//! locks of the queue (the submit queue, each lane, the dead letters, the workers) are
//! leaves, taken alone or while holding shards, never while holding another leaf.
//! Operations on one job (submit, place, fetch, complete, fail) hold its shard; those
//! that follow graph edges to other jobs (a graph submit, the ending of a job that has
//! children, a dead-letter retry) or scan every job (reclaim) hold every shard.

use super::super::types::Delivery;
use crate::model::device::DeviceClass;
use crate::model::envelope::JobEnvelope;
use crate::model::id::JobId;
use crate::model::state::JobRecord;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::time::Instant;

/// How many shards the table has: enough that the few tasks of one process (a
/// submitter, a scheduler, the workers) rarely meet on one.
pub(super) const SHARDS: usize = 16;

/// A worker's hold on a job, checked by every step of the attempt.
pub(super) struct ActiveLease {
    pub(super) lane: DeviceClass,
    pub(super) attempt: u32,
    pub(super) consumer: String,
    pub(super) deadline: Instant,
}

/// Everything the queue knows about one job.
pub(super) struct Job {
    pub(super) record: JobRecord,
    /// The envelope while the job may still run (kept for failed and dead jobs, for
    /// retry, and for ephemeral successes, which another worker may have to re-run).
    pub(super) env: Option<Arc<JobEnvelope>>,
    /// The attempt a worker holds.
    pub(super) lease: Option<ActiveLease>,
    /// The submit-queue entry a scheduler took it as, until placed or refused.
    pub(super) taken: Option<u64>,
    /// Its placement estimate (seconds) while counted in its lane's backlog.
    pub(super) on_lane: Option<f64>,
    /// Jobs of a graph waiting for its outputs (kept when it fails, so that retrying
    /// it makes its dependants wait again).
    pub(super) children: Vec<JobId>,
    /// For a job failed only because an ancestor did: that ancestor.
    pub(super) failed_by: Option<JobId>,
}

impl Job {
    pub(super) fn new(record: JobRecord, env: JobEnvelope) -> Box<Self> {
        Box::new(Job {
            record,
            env: Some(Arc::new(env)),
            lease: None,
            taken: None,
            on_lane: None,
            children: Vec::new(),
            failed_by: None,
        })
    }

    /// Hands the job to `consumer` until `deadline`, counting a delivery at `now` (ms
    /// since the epoch; both read once per batch by the caller); `estimate_s` is its
    /// placement estimate on `lane`. `None` when its envelope is gone (it cannot run).
    pub(super) fn deliver(
        &mut self,
        lane: DeviceClass,
        consumer: &str,
        (now, deadline): (u64, Instant),
        estimate_s: Option<f64>,
    ) -> Option<Delivery> {
        use super::super::types::Lease;
        use crate::model::state::JobState;
        let env = self.env.as_mut()?;
        let rec = &mut self.record;
        rec.attempts += 1;
        rec.state = JobState::Running;
        rec.started_ms = Some(now);
        rec.updated_ms = now;
        rec.worker = Some(consumer.to_string());
        // Copies the envelope only when a worker still holds the previous delivery's.
        Arc::make_mut(env).attempts = rec.attempts;
        let attempt = rec.attempts;
        self.lease = Some(ActiveLease {
            lane,
            attempt,
            consumer: consumer.to_string(),
            deadline,
        });
        Some(Delivery {
            lease: Lease {
                entry: format!("{}/{attempt}", rec.id),
                job_id: rec.id.clone(),
                lane,
                attempt,
                consumer: consumer.to_string(),
                results_to: None,
            },
            envelope: env.clone(),
            estimate_s,
            remote: Vec::new(),
        })
    }
}

/// One shard of the table.
#[derive(Default)]
pub(super) struct Shard {
    /// Boxed: a job is a few hundred bytes, and a growing map moves its values.
    pub(super) jobs: HashMap<JobId, Box<Job>>,
    /// The jobs of this shard a worker holds (what reclaim and the lane statistics
    /// look at, without scanning every job).
    pub(super) leased: HashSet<JobId>,
}

/// Jobs looked up by id: one shard (for an operation on one job) or all of them.
pub(super) trait Table {
    fn get(&self, id: &JobId) -> Option<&Job>;
    fn get_mut(&mut self, id: &JobId) -> Option<&mut Job>;
    /// Marks a job leased or not (kept beside the job, for reclaim).
    fn set_leased(&mut self, id: &JobId, leased: bool);
}

impl Table for Shard {
    fn get(&self, id: &JobId) -> Option<&Job> {
        self.jobs.get(id).map(|j| &**j)
    }
    fn get_mut(&mut self, id: &JobId) -> Option<&mut Job> {
        self.jobs.get_mut(id).map(|j| &mut **j)
    }
    fn set_leased(&mut self, id: &JobId, leased: bool) {
        if leased {
            self.leased.insert(id.clone());
        } else {
            self.leased.remove(id);
        }
    }
}

/// The shards.
pub(super) struct Shards {
    shards: Box<[Mutex<Shard>]>,
}

impl Default for Shards {
    fn default() -> Self {
        Shards {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }
}

/// Locks a mutex, going on after a panic elsewhere: no step leaves a shard half
/// changed in a way that matters more than stopping every worker would.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shards {
    /// A job's shard: FNV-1a of its id, cheaper than the maps' keyed hash (which
    /// still guards each shard's map against ids chosen to collide).
    fn index(&self, id: &JobId) -> usize {
        let h = id.as_str().bytes().fold(0x811C_9DC5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        h as usize % SHARDS
    }

    /// The shard of `id`, locked.
    pub(super) fn of(&self, id: &JobId) -> MutexGuard<'_, Shard> {
        lock(&self.shards[self.index(id)])
    }

    /// Every shard, locked in index order.
    pub(super) fn all(&self) -> AllShards<'_> {
        AllShards {
            guards: self.shards.iter().map(lock).collect(),
            shards: self,
        }
    }

    /// Each shard in turn, locked one at a time (for statistics and expiry, which need
    /// no single moment across shards).
    pub(super) fn each(&self, mut f: impl FnMut(&mut Shard)) {
        for s in self.shards.iter() {
            f(&mut lock(s));
        }
    }
}

/// Every shard locked: a view of the whole table.
pub(super) struct AllShards<'a> {
    guards: Vec<MutexGuard<'a, Shard>>,
    shards: &'a Shards,
}

impl AllShards<'_> {
    pub(super) fn contains(&self, id: &JobId) -> bool {
        self.get(id).is_some()
    }

    pub(super) fn insert(&mut self, id: JobId, job: Box<Job>) {
        let i = self.shards.index(&id);
        self.guards[i].jobs.insert(id, job);
    }

    /// The leased jobs of every shard.
    pub(super) fn leased(&self) -> impl Iterator<Item = &JobId> {
        self.guards.iter().flat_map(|g| g.leased.iter())
    }
}

impl Table for AllShards<'_> {
    fn get(&self, id: &JobId) -> Option<&Job> {
        self.guards[self.shards.index(id)].get(id)
    }
    fn get_mut(&mut self, id: &JobId) -> Option<&mut Job> {
        let i = self.shards.index(id);
        self.guards[i].get_mut(id)
    }
    fn set_leased(&mut self, id: &JobId, leased: bool) {
        let i = self.shards.index(id);
        self.guards[i].set_leased(id, leased);
    }
}
