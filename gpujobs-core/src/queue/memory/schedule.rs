//! The embedded queue's scheduler role: take submitted jobs, place them on lanes (or on
//! a worker's near queue, by locality), reject those that cannot run.

use super::table::lock;
use super::{MemoryQueue, lane_index};
use crate::model::decision::PlacementDecision;
use crate::model::device::DeviceClass;
use crate::model::envelope::now_ms;
use crate::model::error::{JobError, QueueError};
use crate::model::id::JobId;
use crate::model::state::JobState;
use crate::queue::ScheduleQueue;
use crate::queue::types::{DeadLetter, Incoming};
use async_trait::async_trait;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

#[async_trait]
impl ScheduleQueue for MemoryQueue {
    async fn take_submitted(
        &self,
        _consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Incoming>, QueueError> {
        let deadline = Instant::now() + wait;
        let max = max.max(1);
        let taken = self
            .wait_until(&self.submit_ready, deadline, || {
                let mut out = Vec::new();
                while out.len() < max {
                    let ids: Vec<JobId> = {
                        let mut q = lock(&self.submitted);
                        let n = (max - out.len()).min(q.len());
                        q.drain(..n).collect()
                    };
                    if ids.is_empty() {
                        break;
                    }
                    for id in ids {
                        if let Some(incoming) = self.take_one(id) {
                            out.push(incoming);
                        }
                    }
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
        if let Some(lane) = self.place_one(incoming, decision)? {
            self.lane_ready[lane_index(lane)].notify_waiters();
        }
        Ok(())
    }

    /// One wake-up per lane for the whole batch, so an idle worker wakes to find all
    /// of it rather than the first job.
    async fn place_batch(&self, batch: &[(Incoming, PlacementDecision)]) -> Result<(), QueueError> {
        let mut woken = [false; 2];
        let mut outcome = Ok(());
        for (incoming, decision) in batch {
            match self.place_one(incoming, decision.clone()) {
                Ok(Some(lane)) => woken[lane_index(lane)] = true,
                Ok(None) => {}
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        for (li, woken) in woken.into_iter().enumerate() {
            if woken {
                self.lane_ready[li].notify_waiters();
            }
        }
        outcome
    }

    async fn reject(&self, incoming: &Incoming, reason: &str) -> Result<(), QueueError> {
        let now = now_ms();
        let entry = entry_number(&incoming.entry);
        let mut kind = None;
        let mut ended = false;
        if let Some(id) = &incoming.id {
            self.with_job(id, |t| {
                let Some(job) = t.get_mut(id) else {
                    return;
                };
                if entry.is_none() || job.taken != entry {
                    return;
                }
                job.taken = None;
                job.record.error = Some(JobError::permanent(reason));
                kind = Some(job.record.kind.clone());
                ended = true;
                self.finish(t, id, JobState::Dead);
            });
        }
        let id_text = match (&incoming.id, ended) {
            (Some(id), true) => id.to_string(),
            _ => incoming.entry.clone(),
        };
        self.dead_letter(DeadLetter {
            id: id_text,
            kind,
            reason: reason.to_string(),
            attempts: 0,
            at_ms: now_ms(),
            raw: incoming.raw.clone(),
        });
        self.sweep(now);
        Ok(())
    }

    async fn release_overdue_near(&self) -> Result<(), QueueError> {
        let now = Instant::now();
        for (li, lane) in self.lanes.iter().enumerate() {
            if lock(lane).expire_near(now) {
                self.lane_ready[li].notify_waiters();
            }
        }
        Ok(())
    }
}

impl MemoryQueue {
    /// Places a taken job on its lane (or a worker's near queue) without waking the
    /// lane's readers; the lane, or `None` when the job ended meanwhile.
    fn place_one(
        &self,
        incoming: &Incoming,
        decision: PlacementDecision,
    ) -> Result<Option<DeviceClass>, QueueError> {
        let lane = decision.lane;
        let not_taken = || QueueError::NotFound(incoming.entry.clone());
        let id = incoming.id.as_ref().ok_or_else(not_taken)?;
        let mut shard = self.jobs.of(id);
        let job = shard.jobs.get_mut(id).ok_or_else(not_taken)?;
        if job.taken.is_none() || job.taken != entry_number(&incoming.entry) {
            return Err(not_taken());
        }
        job.taken = None;
        let rec = &mut job.record;
        if rec.state.is_terminal() {
            return Ok(None);
        }
        let estimate = decision.estimate_for(lane).unwrap_or(0.0);
        rec.state = JobState::Placed;
        rec.lane = Some(lane);
        rec.updated_ms = now_ms();
        let priority = rec.priority;
        let near = decision.worker.clone().map(|w| {
            let wait = Duration::from_millis(decision.worker_wait_ms);
            (w, Instant::now() + wait)
        });
        rec.placement = Some(decision);
        job.on_lane = Some(estimate);
        let mut q = self.lane(lane);
        q.add_backlog(estimate);
        match near {
            Some((worker, until)) => q.push_near(&worker, id.clone(), priority, until),
            None => q.push(id.clone(), priority),
        }
        Ok(Some(lane))
    }

    /// Hands job `id`, just taken off the submit queue, to a scheduler; `None` when it
    /// no longer waits to be placed (cancelled since).
    fn take_one(&self, id: JobId) -> Option<Incoming> {
        let (env, n, graph) = {
            let mut shard = self.jobs.of(&id);
            let job = shard.jobs.get_mut(&id)?;
            if job.record.state != JobState::Queued {
                return None;
            }
            let env = job.env.clone()?;
            let n = self.next_entry.fetch_add(1, Ordering::Relaxed) + 1;
            job.taken = Some(n);
            let parents = &job.record.parents;
            (env, n, (!parents.is_empty()).then(|| parents.clone()))
        };
        let holders = graph.map(|p| self.holders(&p)).unwrap_or_default();
        Some(Incoming {
            entry: format!("s{n}"),
            job: Ok(env),
            raw: None,
            id: Some(id),
            holders,
        })
    }
}

/// The number of a submit-queue entry (`s<n>`) handed out by `take_submitted`.
fn entry_number(entry: &str) -> Option<u64> {
    entry.strip_prefix('s')?.parse().ok()
}
