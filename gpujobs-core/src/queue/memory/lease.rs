//! The embedded queue's worker role: leases (fetch, renew, reclaim) and the ends of an
//! attempt (complete, fail with retry or dead-letter, release).

use super::super::lane::LaneQueue;
use super::table::{AllShards, Table};
use super::{MemoryQueue, lane_index};
use crate::model::device::DeviceClass;
use crate::model::envelope::{now_ms, now_us};
use crate::model::error::{ErrorClass, JobError, QueueError};
use crate::model::id::JobId;
use crate::model::state::{JobResult, JobState};
use crate::queue::LeaseQueue;
use crate::queue::types::{DeadLetter, Delivery, FailOutcome, Lease, RenewOutcome};
use async_trait::async_trait;
use std::time::Duration;
use tokio::time::Instant;

#[async_trait]
impl LeaseQueue for MemoryQueue {
    async fn fetch(
        &self,
        lane: DeviceClass,
        consumer: &str,
        max: usize,
        lease: Duration,
        wait: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        let deadline = Instant::now() + wait;
        let max = max.max(1);
        let got = self
            .wait_until(&self.lane_ready[lane_index(lane)], deadline, || {
                let mut out = Vec::new();
                let mut taken_s = 0.0;
                let wake = loop {
                    // Ids off the lane under its lock, then each job under its shard's.
                    let (ids, wake) = {
                        let mut q = self.lane(lane);
                        q.take_backlog(std::mem::take(&mut taken_s));
                        let now = Instant::now();
                        q.promote_due(now);
                        q.expire_near(now);
                        let mut ids = Vec::with_capacity(max - out.len());
                        while ids.len() < max - out.len() {
                            match q.pop_near(consumer).or_else(|| q.pop()) {
                                Some(id) => ids.push(id),
                                None => break,
                            }
                        }
                        let wake = [q.next_due(), q.next_near_due()]
                            .into_iter()
                            .flatten()
                            .min();
                        (ids, wake)
                    };
                    if ids.is_empty() {
                        break wake;
                    }
                    let at = (now_ms(), Instant::now() + lease);
                    for id in ids {
                        let mut shard = self.jobs.of(&id);
                        let Some(job) = shard.jobs.get_mut(&id) else {
                            continue;
                        };
                        if job.record.state != JobState::Placed {
                            continue;
                        }
                        let estimate = job.on_lane.take();
                        taken_s += estimate.unwrap_or(0.0);
                        if let Some(d) = job.deliver(lane, consumer, at, estimate) {
                            shard.leased.insert(id);
                            out.push(d);
                        }
                    }
                    if out.len() >= max {
                        break wake;
                    }
                };
                if taken_s != 0.0 {
                    self.lane(lane).take_backlog(taken_s);
                }
                ((!out.is_empty()).then_some(out), wake)
            })
            .await;
        Ok(got.unwrap_or_default())
    }

    async fn renew(&self, lease: &Lease, extend: Duration) -> Result<RenewOutcome, QueueError> {
        let mut shard = self.jobs.of(&lease.job_id);
        Self::check_lease(&*shard, lease)?;
        let job = shard
            .jobs
            .get_mut(&lease.job_id)
            .ok_or_else(|| QueueError::LeaseLost(lease.job_id.to_string()))?;
        if let Some(a) = job.lease.as_mut() {
            a.deadline = Instant::now() + extend;
        }
        Ok(RenewOutcome {
            cancel_requested: job.record.cancel_requested,
        })
    }

    async fn complete(&self, lease: &Lease, result: JobResult) -> Result<(), QueueError> {
        let now = now_ms();
        let mut result = Some(result);
        let done = self.with_job(&lease.job_id, |t| {
            Self::check_lease(t, lease)?;
            if let (Some(job), Some(mut result)) = (t.get_mut(&lease.job_id), result.take()) {
                let rec = &mut job.record;
                result.timings.total_s = now_us().saturating_sub(rec.created_us) as f64 / 1e6;
                rec.result = Some(result);
                rec.error = None;
            }
            self.finish(t, &lease.job_id, JobState::Succeeded);
            Ok(())
        });
        self.sweep(now);
        done
    }

    async fn fail(&self, lease: &Lease, error: &JobError) -> Result<FailOutcome, QueueError> {
        let now = now_ms();
        let id = &lease.job_id;
        let outcome = self.with_job(id, |t| {
            Self::check_lease(t, lease)?;
            let Some(job) = t.get_mut(id) else {
                return Err(QueueError::NotFound(id.to_string()));
            };
            job.lease = None;
            let rec = &mut job.record;
            rec.error = Some(error.clone());
            rec.updated_ms = now_ms();
            let (attempts, max, priority) = (rec.attempts, rec.max_attempts, rec.priority);
            let kind = rec.kind.clone();
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
                self.finish(t, id, JobState::Cancelled);
                return Ok(FailOutcome::Cancelled);
            }
            if error.class == ErrorClass::Permanent {
                self.finish(t, id, JobState::Failed);
                self.dead_letter(letter(error.message.clone()));
                return Ok(FailOutcome::Failed);
            }
            if attempts >= max {
                self.finish(t, id, JobState::Dead);
                self.dead_letter(letter(format!(
                    "failed on all {max} attempts; last error: {}",
                    error.message
                )));
                return Ok(FailOutcome::Dead);
            }
            let delay = self.config.retry.delay(attempts, id.as_str());
            let due = Instant::now() + delay;
            self.back_on_lane(t, id, lease.lane, |q, id| q.push_delayed(id, priority, due));
            Ok(FailOutcome::Retrying { attempts, delay })
        });
        if matches!(outcome, Ok(FailOutcome::Retrying { .. })) {
            self.lane_ready[lane_index(lease.lane)].notify_waiters();
        }
        self.sweep(now);
        outcome
    }

    async fn release(&self, lease: &Lease) -> Result<(), QueueError> {
        let now = now_ms();
        let id = &lease.job_id;
        let requeued = self.with_job(id, |t| -> Result<bool, QueueError> {
            Self::check_lease(t, lease)?;
            let Some(job) = t.get_mut(id) else {
                return Ok(false);
            };
            job.lease = None;
            let rec = &mut job.record;
            rec.attempts = rec.attempts.saturating_sub(1);
            if rec.cancel_requested {
                self.finish(t, id, JobState::Cancelled);
                return Ok(false);
            }
            rec.updated_ms = now;
            let priority = rec.priority;
            // It was next in line: back at the head of its priority.
            self.back_on_lane(t, id, lease.lane, |q, id| q.push_front(id, priority));
            Ok(true)
        })?;
        if requeued {
            self.lane_ready[lane_index(lease.lane)].notify_waiters();
        }
        self.sweep(now);
        Ok(())
    }

    async fn reclaim_expired(
        &self,
        lane: DeviceClass,
        consumer: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        let (now, started_ms) = (Instant::now(), now_ms());
        self.lane(lane).expire_near(now);
        let mut out = Vec::new();
        {
            let mut all = self.jobs.all();
            let mut expired: Vec<(Instant, JobId)> = all
                .leased()
                .filter_map(|id| {
                    let a = all.get(id)?.lease.as_ref()?;
                    (a.lane == lane && a.deadline <= now).then(|| (a.deadline, id.clone()))
                })
                .collect();
            expired.sort();
            for (_, id) in expired {
                if let Some(d) = self.reclaim_one(&mut all, &id, lane, consumer, lease, &out, max) {
                    out.push(d);
                }
            }
        }
        self.sweep(started_ms);
        Ok(out)
    }
}

impl MemoryQueue {
    /// Puts job `id`, whose attempt ended without ending the job (a retry, a release),
    /// back on `lane`: placed, no longer leased, its placement estimate counted in the
    /// lane's backlog again; `push` puts it in the lane's order.
    fn back_on_lane(
        &self,
        t: &mut dyn Table,
        id: &JobId,
        lane: DeviceClass,
        push: impl FnOnce(&mut LaneQueue, JobId),
    ) {
        let Some(job) = t.get_mut(id) else {
            return;
        };
        job.record.state = JobState::Placed;
        let estimate = job
            .record
            .placement
            .as_ref()
            .and_then(|p| p.estimate_for(lane))
            .unwrap_or(0.0);
        job.on_lane = Some(estimate);
        t.set_leased(id, false);
        let mut q = self.lane(lane);
        q.add_backlog(estimate);
        push(&mut q, id.clone());
    }

    /// Job `id`'s lease lapsed: it ends (cancelled, or dead when out of attempts) or is
    /// delivered again to `consumer` (while `out` holds fewer than `max` deliveries;
    /// beyond that it stays expired for the next reclaim, by this or another worker).
    #[allow(clippy::too_many_arguments)]
    fn reclaim_one(
        &self,
        all: &mut AllShards<'_>,
        id: &JobId,
        lane: DeviceClass,
        consumer: &str,
        lease: Duration,
        out: &[Delivery],
        max: usize,
    ) -> Option<Delivery> {
        let job = all.get_mut(id)?;
        let holder = job.lease.as_ref()?.consumer.clone();
        let rec = &mut job.record;
        if rec.cancel_requested {
            self.finish(all, id, JobState::Cancelled);
            return None;
        }
        if rec.attempts >= rec.max_attempts {
            let reason = format!(
                "lease expired on attempt {} of {} (worker {holder} stopped renewing it)",
                rec.attempts, rec.max_attempts
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
            self.finish(all, id, JobState::Dead);
            self.dead_letter(letter);
            return None;
        }
        if out.len() >= max {
            return None;
        }
        job.deliver(lane, consumer, (now_ms(), Instant::now() + lease), None)
    }
}
