//! The job envelope: what travels through the queue for every job.

use crate::model::device::DevicePref;
use crate::model::id::JobId;
use crate::model::job::Job;
use crate::model::tensor::{Blobs, detach_all};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The version of the envelope's JSON form (see `docs/wire-format.md`).
pub const WIRE_VERSION: u32 = 1;

/// How urgently a job should be fetched. Higher priorities overtake a backlog of lower
/// ones, but lower ones still get a share (see the queue's fetch order), so none starves.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Priority {
    /// Fetched before normal and low.
    High,
    /// The default.
    #[default]
    Normal,
    /// Background work.
    Low,
}

impl Priority {
    /// All priorities, most urgent first.
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

    /// Lowercase name, as used in keys and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }

    /// Index into [`Priority::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "high" => Ok(Priority::High),
            "normal" => Ok(Priority::Normal),
            "low" => Ok(Priority::Low),
            other => Err(format!(
                "unknown priority `{other}` (expected high, normal or low)"
            )),
        }
    }
}

fn default_version() -> u32 {
    WIRE_VERSION
}
fn default_max_attempts() -> u32 {
    3
}
fn default_timeout_ms() -> u64 {
    10 * 60 * 1000
}

/// One job as the queue carries it: a kind name, its JSON payload, binary blobs for
/// large tensors, and the delivery parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEnvelope {
    /// Wire-format version.
    #[serde(default = "default_version")]
    pub version: u32,
    /// Time-ordered unique id.
    #[serde(default)]
    pub id: JobId,
    /// The job kind's stable name (`matmul`, `vector-add`, ...).
    pub kind: String,
    /// The kind's parameters and inputs.
    pub payload: serde_json::Value,
    /// Large tensors referenced from the payload by name. They travel beside the JSON
    /// (in memory, or as binary Redis keys), never inside it.
    #[serde(skip)]
    pub blobs: Blobs,
    /// Fetch priority.
    #[serde(default)]
    pub priority: Priority,
    /// Where the job asks to run.
    #[serde(default)]
    pub device: DevicePref,
    /// Deliveries so far (a delivery is an attempt).
    #[serde(default)]
    pub attempts: u32,
    /// Deliveries allowed before the job is dead-lettered.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// How long one attempt may run before it is stopped, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Submit time, microseconds since the Unix epoch (stamped at submit if absent).
    #[serde(default)]
    pub created_us: u64,
    /// For an intermediate of a graph: its outputs stay in the cache of the worker that
    /// made it, not in the queue (a worker without them re-runs the job from its inputs,
    /// which are kept until they expire). Refused on a job nothing reads.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ephemeral: bool,
    /// A URL prefix (`s3://bucket/results/run-7`, `file:///srv/out`) the worker writes
    /// each output tensor to, as `<results_to>/<output path>.npy` (`c.npy`,
    /// `weights.0.npy`), for readers outside gpujobs. Needs the Redis queue with object
    /// storage, and the prefix among the worker's allowed ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_to: Option<String>,
}

impl JobEnvelope {
    /// Wraps a typed job: its tensors' values move into blobs, the rest becomes JSON.
    pub fn new<J: Job>(mut job: J) -> Result<Self, serde_json::Error> {
        let mut blobs = Blobs::new();
        detach_all(job.tensors_mut(), &mut blobs);
        Ok(JobEnvelope {
            version: WIRE_VERSION,
            id: JobId::new(),
            kind: J::KIND.to_string(),
            payload: serde_json::to_value(&job)?,
            blobs,
            priority: Priority::Normal,
            device: DevicePref::Auto,
            attempts: 0,
            max_attempts: default_max_attempts(),
            timeout_ms: default_timeout_ms(),
            created_us: now_us(),
            ephemeral: false,
            results_to: None,
        })
    }

    /// Sets the priority.
    pub fn with_priority(mut self, p: Priority) -> Self {
        self.priority = p;
        self
    }

    /// Pins or frees the device.
    pub fn with_device(mut self, d: DevicePref) -> Self {
        self.device = d;
        self
    }

    /// Sets how many deliveries are allowed before dead-letter (at least 1).
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Marks an intermediate of a graph ephemeral (see [`JobEnvelope::ephemeral`]).
    pub fn with_ephemeral(mut self, ephemeral: bool) -> Self {
        self.ephemeral = ephemeral;
        self
    }

    /// Asks for the outputs to be written under `url` (see [`JobEnvelope::results_to`]).
    pub fn with_results_to(mut self, url: impl Into<String>) -> Self {
        self.results_to = Some(url.into());
        self
    }

    /// Sets the per-attempt timeout.
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout_ms = t.as_millis().min(u128::from(u64::MAX)) as u64;
        self
    }

    /// The per-attempt timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Fills the fields an external submitter may leave out: a fresh id if none was
    /// given, the submit time, and attempts reset.
    pub fn stamp_for_submit(&mut self) {
        if self.id.as_str().is_empty() {
            self.id = JobId::new();
        }
        if self.created_us == 0 {
            self.created_us = now_us();
        }
        self.max_attempts = self.max_attempts.max(1);
        self.attempts = 0;
    }

    /// Names of the blobs the payload refers to (`{"shape": [..], "blob": "t0"}`
    /// anywhere in it): the binary keys a queue stores beside the envelope.
    pub fn blob_names(&self) -> Vec<String> {
        blob_names_in(&self.payload)
    }

    /// Total bytes of the blobs travelling with the job.
    pub fn blob_bytes(&self) -> u64 {
        self.blobs.values().map(|b| b.len() as u64 * 4).sum()
    }
}

/// Names of the blobs a payload or an output refers to: every `{"shape": [..], "blob":
/// "<name>"}` object anywhere in `v`, in document order.
pub fn blob_names_in(v: &serde_json::Value) -> Vec<String> {
    crate::model::tensor_json::blob_names(v)
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::blob_names_in;

    #[test]
    fn finds_blob_names_anywhere() {
        let v = serde_json::json!({"a": {"shape": [2], "blob": "t0"}, "data": {"x": {"shape": [1, 2], "blob": "t1"}}, "b": {"shape": [1], "synthetic": {"seed": 1}}, "c": {"blob": "no-shape"}});
        let mut names = blob_names_in(&v);
        names.sort();
        assert_eq!(names, vec!["t0", "t1"]);
    }
}
