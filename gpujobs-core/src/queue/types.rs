//! Values exchanged with a [`super::Queue`].

use crate::model::device::{DeviceClass, DeviceInfo};
use crate::model::envelope::JobEnvelope;
use crate::model::id::JobId;
use crate::model::state::JobState;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// A submitted entry taken by the scheduler.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The queue's handle for the entry (a stream id in Redis).
    pub entry: String,
    /// The job, or why the entry could not be read as one (shared, not copied, between
    /// the queue and its scheduler).
    pub job: Result<Arc<JobEnvelope>, String>,
    /// The raw entry, kept for the dead-letter record when it could not be read.
    pub raw: Option<String>,
    /// The job's id when the entry names a valid one, even if the rest of it could
    /// not be read: a refused entry then leaves a `dead` record a client can find.
    pub id: Option<JobId>,
    /// For a graph job released by its parents: each parent and the worker that ran
    /// it (whose output cache holds its output), for placement by locality.
    pub holders: Vec<(JobId, String)>,
}

/// A worker's right to run a job until `deadline` (renewable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The job.
    pub job_id: JobId,
    /// The lane it was fetched from.
    pub lane: DeviceClass,
    /// The delivery this lease belongs to (1 for the first); fences stale workers.
    pub attempt: u32,
    /// The worker holding it.
    pub consumer: String,
    /// The queue's handle for the lane entry (a stream id in Redis).
    pub entry: String,
    /// Where the job asked for its outputs (`results_to`), as the queue checked and
    /// normalised it at delivery; it travels with the lease to the completion, which
    /// writes the outputs there. `None`: results stay in the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_to: Option<String>,
}

/// A job handed to a worker.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The lease to complete, fail, renew or release.
    pub lease: Lease,
    /// The job, with `attempts` already counting this delivery (shared, not copied,
    /// between the queue and its worker).
    pub envelope: Arc<JobEnvelope>,
    /// The scheduler's estimate of the job's run time on this lane, seconds, when the
    /// queue knows it (a worker runs jobs estimated tiny under a wider limit).
    pub estimate_s: Option<f64>,
    /// Inputs the queue left unread because they live outside it (object storage): the
    /// envelope's payload already names them as blobs, and
    /// [`super::LeaseQueue::load_remote`] reads them. A worker reads them in the job's
    /// own task, keeping the lease, so a slow store holds up only the jobs that need
    /// it, never the loop that fetches, renews and heart-beats. Empty for most jobs and
    /// for queues that keep everything themselves.
    pub remote: Vec<RemoteInput>,
}

/// One input of a delivered job that lives outside the queue (see [`Delivery::remote`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteInput {
    /// The blob name the job's payload refers to it by (`t0`, `url:0`).
    pub blob: String,
    /// Where it lives (`s3://bucket/key`, `file:///path`).
    pub url: String,
    /// How many values its tensor's shape holds, when the job stated a shape for the
    /// object (a `url` tensor): an object of another size fails the job.
    pub numel: Option<usize>,
}

/// What [`super::LeaseQueue::renew`] learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RenewOutcome {
    /// The job was cancelled: the worker should stop it and report `JobError::cancelled`.
    pub cancel_requested: bool,
}

/// What happened to a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Back on its lane after `delay`.
    Retrying {
        /// Attempts used so far.
        attempts: u32,
        /// Backoff before it becomes fetchable.
        delay: Duration,
    },
    /// Ended as failed (permanent error), kept in dead-letter.
    Failed,
    /// Out of attempts, dead-lettered.
    Dead,
    /// Ended as cancelled.
    Cancelled,
}

/// What [`super::SubmitQueue::cancel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job had not started; it never will.
    Cancelled,
    /// The job is running; its worker has been asked to stop it.
    Requested,
    /// The job had already ended in this state.
    AlreadyFinished(JobState),
    /// No such job.
    NotFound,
}

/// A job (or unreadable entry) in the dead-letter list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The job id, or the raw entry's id when it could not be read.
    pub id: String,
    /// Its kind, if known.
    pub kind: Option<String>,
    /// Why it is here.
    pub reason: String,
    /// Attempts it used.
    pub attempts: u32,
    /// When it arrived (ms since epoch).
    pub at_ms: u64,
    /// The raw entry, for entries that could not be read as a job.
    pub raw: Option<String>,
}

/// A worker's announcement of itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Unique consumer name (host, pid and a random suffix).
    pub id: String,
    /// The lane it serves.
    pub lane: DeviceClass,
    /// Its device.
    pub device: DeviceInfo,
    /// Jobs it runs at once.
    pub concurrency: u32,
    /// Jobs running now.
    pub in_flight: u32,
    /// Jobs completed.
    pub jobs_done: u64,
    /// Attempts that failed.
    pub jobs_failed: u64,
    /// Start time (ms since epoch).
    pub started_ms: u64,
    /// Last heartbeat (ms since epoch).
    pub last_seen_ms: u64,
    /// Graph jobs whose outputs its cache holds, most recently used first (at most
    /// [`crate::worker::output_cache::ADVERTISED_JOBS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cached_jobs: Vec<crate::model::id::JobId>,
    /// Bytes its output cache holds.
    #[serde(default)]
    pub cache_bytes: u64,
    /// It takes part in placement by locality: it reads the jobs placed on it (its
    /// near stream) before its lane's and caches outputs. A worker whose heartbeat
    /// lacks it (another implementation) is never sent a job by locality.
    #[serde(default)]
    pub locality: bool,
}

/// The state of one lane.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LaneStats {
    /// The lane.
    pub lane: DeviceClass,
    /// Jobs ready to fetch.
    pub ready: u64,
    /// Jobs waiting out a retry backoff.
    pub delayed: u64,
    /// Jobs leased to workers.
    pub in_flight: u64,
    /// Sum of the placement estimates of ready and delayed jobs, in seconds.
    pub backlog_s: f64,
}

/// What the queue has of a parent job's output ([`super::GraphQueue::read_output`]).
#[derive(Debug, Clone)]
pub enum ParentOutput {
    /// The tensor.
    Ready(crate::model::tensor::Tensor),
    /// The parent succeeded with an ephemeral output that only this worker held.
    HeldBy(String),
    /// Not available: the parent is unknown (or its record expired), has not
    /// succeeded, or its output has no such tensor.
    Missing,
}
