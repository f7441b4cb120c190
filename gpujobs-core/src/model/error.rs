//! Errors of the core crate.
//!
//! Three families, because they are handled in three different places:
//! - [`ValidationError`]: a job that can never run as given (bad shape, absurd size).
//!   It is refused at submit, and a worker that still meets one fails the job for good.
//! - [`JobError`]: what an executor returns when a run fails. It carries an
//!   [`ErrorClass`] so the queue knows whether retrying can help (the way opendal marks
//!   errors temporary or permanent): a bad shape is permanent, an out-of-memory or a
//!   lost connection is temporary. Retries belong to the queue alone.
//! - [`QueueError`]: the queue itself could not do what was asked.

use serde::{Deserialize, Serialize};

/// Why a job was refused before it ran.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// Two operands that must agree in some dimension do not.
    #[error("shape mismatch: {0}")]
    ShapeMismatch(String),
    /// An operand has a zero dimension or no elements.
    #[error("empty input: {0}")]
    Empty(String),
    /// A tensor's data length disagrees with its declared shape.
    #[error("tensor `{name}` declares shape {shape:?} ({expected} elements) but holds {actual}")]
    DataLength {
        /// Which operand.
        name: String,
        /// The declared shape.
        shape: Vec<usize>,
        /// Elements the shape implies.
        expected: usize,
        /// Elements present.
        actual: usize,
    },
    /// The job would need more memory than this machine (or the configured limit) allows.
    #[error("job needs {needed} bytes of memory, more than the limit of {limit} bytes ({what})")]
    TooLarge {
        /// Bytes the job would allocate.
        needed: u128,
        /// The limit it was checked against.
        limit: u64,
        /// What was being sized.
        what: String,
    },
    /// A parameter is out of its allowed range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor has the wrong number of dimensions.
    #[error("tensor `{name}` must have rank {expected}, got shape {shape:?}")]
    Rank {
        /// Which operand.
        name: String,
        /// Expected rank.
        expected: usize,
        /// The shape given.
        shape: Vec<usize>,
    },
    /// Classification labels are not integers in `0..classes`.
    #[error("label {label} at row {row} is not an integer class in 0..{classes}")]
    LabelOutOfRange {
        /// The offending value.
        label: f32,
        /// Its row.
        row: usize,
        /// Number of classes.
        classes: usize,
    },
    /// A value that must be finite is NaN or infinite (training data, where one NaN
    /// silently ruins every weight it reaches).
    #[error("{name} holds {value} at {at}: {why}")]
    NonFinite {
        /// Which operand.
        name: String,
        /// Where, in the user's terms ("row 12, column 3").
        at: String,
        /// The value.
        value: f32,
        /// Why it must be finite.
        why: String,
    },
    /// A tensor refers to a blob that did not travel with the job.
    #[error("tensor refers to blob `{0}`, which is missing")]
    MissingBlob(String),
    /// A `url` tensor reached an executor unread: only workers of the Redis queue built
    /// with object storage read them.
    #[error(
        "tensor at `{0}` was not fetched: `url` tensors are read by workers of the Redis \
         queue built with object storage (feature `objects`)"
    )]
    NotFetched(String),
    /// The payload is not valid for this kind.
    #[error("payload does not describe a `{kind}` job: {reason}")]
    Payload {
        /// The job kind.
        kind: String,
        /// The parser's message.
        reason: String,
    },
    /// No executor or kind of this name is known.
    #[error("unknown job kind `{0}`")]
    UnknownKind(String),
    /// A job graph cannot run as given (a cycle, an input naming a job outside it).
    #[error("{0}")]
    Graph(#[from] crate::model::graph::GraphError),
}

/// Whether retrying a failed job can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorClass {
    /// The job will fail the same way every time (bad input): never retried.
    Permanent,
    /// The failure may pass (out of device memory, lost connection, timeout): retried
    /// with backoff until the job's attempts run out.
    Temporary,
    /// The job was cancelled on request: neither retried nor dead-lettered.
    Cancelled,
}

impl ErrorClass {
    /// Lowercase name, as on the wire (`permanent`, `temporary`, `cancelled`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Permanent => "permanent",
            ErrorClass::Temporary => "temporary",
            ErrorClass::Cancelled => "cancelled",
        }
    }
}

impl std::str::FromStr for ErrorClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "permanent" => ErrorClass::Permanent,
            "temporary" => ErrorClass::Temporary,
            "cancelled" => ErrorClass::Cancelled,
            other => return Err(format!("unknown error class `{other}`")),
        })
    }
}

/// A failed run of a job, as an executor or the worker reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    /// Whether a retry can help.
    pub class: ErrorClass,
    /// A one-line, human-readable reason.
    pub message: String,
}

impl JobError {
    /// A failure that will repeat on every attempt.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Permanent,
            message: message.into(),
        }
    }

    /// A failure that may pass on another attempt.
    pub fn temporary(message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Temporary,
            message: message.into(),
        }
    }

    /// The job stopped because it was cancelled.
    pub fn cancelled() -> Self {
        Self {
            class: ErrorClass::Cancelled,
            message: "cancelled on request".into(),
        }
    }

    /// The job ran past its timeout (temporary: another attempt may be faster).
    pub fn timed_out(limit: std::time::Duration) -> Self {
        Self::temporary(format!("timed out after {:.3} s", limit.as_secs_f64()))
    }
}

impl From<ValidationError> for JobError {
    fn from(e: ValidationError) -> Self {
        JobError::permanent(e.to_string())
    }
}

/// The queue could not carry out an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// No job with this id is known (never submitted, or its record expired).
    #[error("no job with id {0}")]
    NotFound(String),
    /// The caller's lease is no longer valid: the job was reclaimed by another worker,
    /// cancelled, or already finished. The caller must drop its result.
    #[error("lease on job {0} was lost (reclaimed, cancelled or finished elsewhere)")]
    LeaseLost(String),
    /// The job was refused at submit.
    #[error("job refused: {0}")]
    Invalid(#[from] ValidationError),
    /// The backend (Redis, ...) failed; usually temporary.
    #[error("queue backend error: {0}")]
    Backend(String),
    /// A value could not be encoded or decoded.
    #[error("serialization error: {0}")]
    Serde(#[from] serde_json::Error),
    /// The backend is out of memory, or above the high-water mark it keeps for the
    /// results of jobs already accepted: new submissions are refused until jobs finish
    /// (which frees their inputs) or the operator adds memory. Nothing accepted is lost;
    /// retrying later can help.
    #[error("queue is full: {0}")]
    Full(String),
    /// The operation can never succeed on this job as asked (say, retrying a job whose
    /// inputs were freed when it ended).
    #[error("{0}")]
    Refused(String),
    /// The queue has been closed.
    #[error("queue is closed")]
    Closed,
    /// The queue's settings do not fit what its backend holds (a partition count that
    /// differs from the stored one, a malformed URL or namespace): retrying cannot help.
    #[error("queue misconfigured: {0}")]
    Misconfigured(String),
}
