//! Where the scheduler put a job and why: written by placement, recorded with the job
//! (its record and `gpujobs status` show it), and read by the queue, which offers a job
//! placed by locality to the named worker first.

use crate::model::device::DeviceClass;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a job was placed where it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlacementDecision {
    /// The chosen lane.
    pub lane: DeviceClass,
    /// Estimated seconds until the job would finish on each class considered
    /// (backlog share plus the job's own time).
    pub estimates: BTreeMap<DeviceClass, f64>,
    /// The job's own estimated run time on the chosen lane, in seconds.
    pub run_estimate_s: f64,
    /// One line for humans.
    pub reason: String,
    /// The cost model's name.
    pub model: String,
    /// The worker (consumer id) the job is offered to first because its cache holds
    /// the job's inputs; `None`: any worker of the lane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// How long only [`worker`](Self::worker) may take the job, in milliseconds; then
    /// any worker of the lane may.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub worker_wait_ms: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl PlacementDecision {
    /// The job's own run estimate if `lane` is the chosen lane.
    pub fn estimate_for(&self, lane: DeviceClass) -> Option<f64> {
        (lane == self.lane).then_some(self.run_estimate_s)
    }
}
