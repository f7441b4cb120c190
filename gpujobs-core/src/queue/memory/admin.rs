//! The embedded queue's operator role: dead letters and their retry, worker heartbeats,
//! lane statistics.

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
