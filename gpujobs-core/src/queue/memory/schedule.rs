//! The embedded queue's scheduler role: take submitted jobs, place them on lanes (or on
//! a worker's near queue, by locality), reject those that cannot run.

use super::{MemoryQueue, lane_index};
use crate::model::decision::PlacementDecision;
use crate::model::envelope::now_ms;
use crate::model::error::{JobError, QueueError};
use crate::model::state::JobState;
use crate::queue::ScheduleQueue;
use crate::queue::types::{DeadLetter, Incoming};
use async_trait::async_trait;
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
}
