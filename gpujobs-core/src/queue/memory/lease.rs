//! The embedded queue's worker role: leases (fetch, renew, reclaim) and the ends of an
//! attempt (complete, fail with retry or dead-letter, release).

use super::{Inner, MemoryQueue, lane_index};
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
}

impl MemoryQueue {
    /// Records a success under the lock the caller holds.
    pub(super) fn complete_locked(
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
