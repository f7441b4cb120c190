//! Job states, results and the per-job record a queue keeps.

use crate::model::decision::PlacementDecision;
use crate::model::device::{DeviceClass, DeviceInfo, DevicePref};
use crate::model::envelope::{JobEnvelope, Priority};
use crate::model::error::JobError;
use crate::model::fingerprint::Fingerprint;
use crate::model::id::JobId;
use crate::model::tensor::Blobs;
use crate::model::timing::Timings;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a job is in its life.
///
/// ```text
/// waiting ──inputs exist──┐
///    │                     ▼
///    │   queued ──scheduler──> placed ──worker──> running ──> succeeded
///    │      │                    ▲  │                │ └────> failed     (permanent error)
///    │      │                    │  │                ├──────> dead       (attempts exhausted)
///    │      │                    └──┴── retry ◄──────┘
///    │      └──────── cancel ─────────────────────────────> cancelled
///    └── a parent failed, died or was cancelled ──────────> failed
/// ```
///
/// Only jobs of a graph wait: one whose input names another job's output (see
/// [`crate::model::graph`]) is `waiting` until every such parent has succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    /// In a graph, waiting for the jobs whose outputs it reads to succeed.
    Waiting,
    /// Submitted, waiting for the scheduler.
    Queued,
    /// On a device lane, waiting for a worker (also while waiting out a retry backoff).
    Placed,
    /// Leased by a worker.
    Running,
    /// Finished with a result.
    Succeeded,
    /// Failed with an error that retrying cannot fix; kept in the dead-letter list.
    Failed,
    /// Failed on every allowed attempt, or refused by the scheduler; in the dead-letter list.
    Dead,
    /// Cancelled before or while running.
    Cancelled,
}

impl JobState {
    /// Whether the job has finished for good.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Dead | JobState::Cancelled
        )
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Waiting => "waiting",
            JobState::Queued => "queued",
            JobState::Placed => "placed",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }
}

impl std::str::FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "waiting" => JobState::Waiting,
            "queued" => JobState::Queued,
            "placed" => JobState::Placed,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "dead" => JobState::Dead,
            "cancelled" => JobState::Cancelled,
            other => return Err(format!("unknown job state `{other}`")),
        })
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a successful job produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// The kind's output as JSON; large tensors refer to `blobs`.
    pub output: serde_json::Value,
    /// Output tensors' data.
    #[serde(skip)]
    pub blobs: Blobs,
    /// One line describing the output, for listings.
    pub summary: String,
    /// A fingerprint of the output's numbers, to compare devices.
    pub fingerprint: Fingerprint,
    /// The device that ran it.
    pub device: DeviceInfo,
    /// Where the time went.
    pub timings: Timings,
    /// The worker whose cache alone holds the output tensors, for a job of a graph
    /// marked ephemeral: the queue stores no blobs for it, and a worker that needs them
    /// and cannot get them from that worker re-runs the job from its inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
}

impl JobResult {
    /// Decodes the output into the kind's output type, resolving blobs.
    pub fn decode<O: crate::model::job::JobOutput>(
        &self,
    ) -> Result<O, crate::model::error::ValidationError> {
        let mut out: O = serde_json::from_value(self.output.clone()).map_err(|e| {
            crate::model::error::ValidationError::Payload {
                kind: "output".into(),
                reason: e.to_string(),
            }
        })?;
        crate::model::tensor::resolve_all(out.tensors_mut(), &self.blobs)?;
        Ok(out)
    }
}

/// Everything a queue knows about one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job's id.
    pub id: JobId,
    /// Its kind.
    pub kind: String,
    /// Current state.
    pub state: JobState,
    /// Fetch priority.
    pub priority: Priority,
    /// Requested device.
    pub device: DevicePref,
    /// The lane it was placed on.
    pub lane: Option<DeviceClass>,
    /// Deliveries so far.
    pub attempts: u32,
    /// Deliveries allowed.
    pub max_attempts: u32,
    /// Submit time (µs since epoch).
    pub created_us: u64,
    /// Last change (ms since epoch).
    pub updated_ms: u64,
    /// When the current or last attempt started (ms since epoch).
    pub started_ms: Option<u64>,
    /// When it reached a terminal state (ms since epoch).
    pub finished_ms: Option<u64>,
    /// The worker holding or last holding it.
    pub worker: Option<String>,
    /// Why the scheduler put it where it did.
    pub placement: Option<PlacementDecision>,
    /// The result, once succeeded.
    pub result: Option<JobResult>,
    /// The last error, if any attempt failed.
    pub error: Option<JobError>,
    /// Whether cancellation was asked for while it ran.
    pub cancel_requested: bool,
    /// The jobs whose outputs it reads (graph jobs only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<JobId>,
    /// How many of `parents` have not succeeded yet (0 once it left `waiting`).
    #[serde(default)]
    pub waiting_on: u32,
}

impl JobRecord {
    /// The record of a freshly submitted job.
    pub fn submitted(env: &JobEnvelope) -> Self {
        let parents = crate::model::graph::parents_of(env);
        JobRecord {
            id: env.id.clone(),
            kind: env.kind.clone(),
            priority: env.priority,
            device: env.device,
            lane: None,
            attempts: 0,
            max_attempts: env.max_attempts,
            created_us: env.created_us,
            updated_ms: env.created_us / 1000,
            started_ms: None,
            finished_ms: None,
            worker: None,
            placement: None,
            result: None,
            error: None,
            cancel_requested: false,
            // A graph submit sets `waiting` and the count; a lone submit is queued.
            state: JobState::Queued,
            waiting_on: 0,
            parents,
        }
    }
}
