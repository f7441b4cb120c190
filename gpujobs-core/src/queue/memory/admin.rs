//! The embedded queue's operator role: dead letters and their retry, worker heartbeats,
//! lane statistics.

use super::table::{Table, lock};
use super::{MemoryQueue, lane_index};
use crate::model::device::DeviceClass;
use crate::model::envelope::now_ms;
use crate::model::error::QueueError;
use crate::model::id::JobId;
use crate::model::state::JobState;
use crate::queue::AdminQueue;
use crate::queue::types::{DeadLetter, LaneStats, WorkerInfo};
use async_trait::async_trait;
use std::sync::Arc;

#[async_trait]
impl AdminQueue for MemoryQueue {
    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        Ok(lock(&self.dead).iter().rev().take(max).cloned().collect())
    }

    async fn retry_dead(&self, id: &JobId) -> Result<bool, QueueError> {
        {
            let mut all = self.jobs.all();
            if !lock(&self.dead).iter().any(|d| d.id == id.as_str()) {
                return Ok(false);
            }
            let unmet: Vec<String> = all
                .get(id)
                .map(|j| j.record.parents.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|p| all.get(p).map(|j| j.record.state) != Some(JobState::Succeeded))
                .map(|p| p.to_string())
                .collect();
            if !unmet.is_empty() {
                return Err(QueueError::Refused(format!(
                    "job {id} reads outputs of {}, which have not succeeded: retry those first",
                    unmet.join(", ")
                )));
            }
            let Some(job) = all.get_mut(id) else {
                return Ok(false);
            };
            let Some(env) = job.env.as_mut() else {
                return Ok(false);
            };
            Arc::make_mut(env).attempts = 0;
            let rec = &mut job.record;
            rec.state = JobState::Queued;
            rec.attempts = 0;
            rec.error = None;
            rec.finished_ms = None;
            rec.cancel_requested = false;
            rec.updated_ms = now_ms();
            lock(&self.dead).retain(|d| d.id != id.as_str());
            lock(&self.submitted).push_back(id.clone());
            self.revive_dependants(&mut all, id);
        }
        self.submit_ready.notify_waiters();
        Ok(true)
    }

    async fn heartbeat(&self, info: &WorkerInfo) -> Result<(), QueueError> {
        let mut info = info.clone();
        info.last_seen_ms = now_ms();
        lock(&self.workers).insert(info.id.clone(), info);
        Ok(())
    }

    async fn deregister(&self, worker_id: &str) -> Result<(), QueueError> {
        lock(&self.workers).remove(worker_id);
        // Jobs placed on it by locality go to their lanes at once.
        for (li, lane) in self.lanes.iter().enumerate() {
            if lock(lane).release_near(worker_id) {
                self.lane_ready[li].notify_waiters();
            }
        }
        Ok(())
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>, QueueError> {
        let cutoff = now_ms().saturating_sub(self.config.worker_ttl.as_millis() as u64);
        let mut v: Vec<WorkerInfo> = lock(&self.workers)
            .values()
            .filter(|w| w.last_seen_ms >= cutoff)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }

    async fn lane_stats(&self) -> Result<Vec<LaneStats>, QueueError> {
        let mut in_flight = [0u64; 2];
        self.jobs.each(|shard| {
            for id in &shard.leased {
                if let Some(a) = shard.jobs.get(id).and_then(|j| j.lease.as_ref()) {
                    in_flight[lane_index(a.lane)] += 1;
                }
            }
        });
        Ok(DeviceClass::ALL
            .iter()
            .map(|&lane| {
                let q = self.lane(lane);
                LaneStats {
                    lane,
                    ready: q.ready_len() as u64,
                    delayed: q.delayed_len() as u64,
                    in_flight: in_flight[lane_index(lane)],
                    backlog_s: q.backlog_s(),
                }
            })
            .collect())
    }
}
