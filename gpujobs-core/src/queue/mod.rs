//! The `Queue` trait: the durable hand-offs between clients, the scheduler and workers.
//!
//! Semantics every implementation keeps (the embedded [`MemoryQueue`] and the Redis
//! queue alike, checked by one conformance suite):
//! - **At-least-once.** A job leaves a lane only when a worker completes it, fails it
//!   for good, or its attempts run out. A worker that dies loses its leases, which
//!   expire and are reclaimed by another worker.
//! - **Attempts are deliveries.** Every fetch or reclaim of a job counts one attempt;
//!   after `max_attempts` deliveries the job is dead-lettered with its last error.
//! - **Leases are fenced.** A worker whose lease was reclaimed cannot complete the job
//!   any more ([`crate::QueueError::LeaseLost`]), so a result is recorded once.
//! - **Retries back off.** A temporary failure puts the job back on its lane after the
//!   [`crate::RetryPolicy`] delay; a permanent one ends it as failed.
//! - **Priorities overtake without starving.** See the implementation's fetch order.
//! - **Cancel.** A queued job that is cancelled never runs; a running one is told
//!   through [`RenewOutcome::cancel_requested`].

mod admin;
pub mod client;
mod graph;
mod lane;
mod lease;
mod memory;
mod schedule;
mod submit;
mod types;
pub mod validated;

pub use admin::AdminQueue;
pub use graph::GraphQueue;
pub use lease::LeaseQueue;
pub use memory::{MemoryQueue, MemoryQueueConfig};
pub use schedule::ScheduleQueue;
pub use submit::SubmitQueue;
pub use types::{
    CancelOutcome, DeadLetter, Delivery, FailOutcome, Incoming, LaneStats, Lease, ParentOutput,
    RemoteInput, RenewOutcome, WorkerInfo,
};

/// Fetch weights of high, normal and low priority: of every 10 jobs a busy worker
/// fetches, 6 are high, 3 normal and 1 low while all three have work, so urgent jobs
/// overtake a backlog and low ones still move. Every queue implementation uses these.
pub const FETCH_WEIGHTS: [i64; 3] = [6, 3, 1];

/// A whole queue: every role. Clients, schedulers and workers hold an
/// `Arc<dyn Queue>` (or a `Q: Queue`) and call any role's methods on it; code that
/// holds a concrete queue imports the role traits it calls (`gpujobs::prelude::*`
/// brings them all). Every type that implements the five roles is a `Queue`.
pub trait Queue: SubmitQueue + GraphQueue + ScheduleQueue + LeaseQueue + AdminQueue {}

impl<T> Queue for T where
    T: SubmitQueue + GraphQueue + ScheduleQueue + LeaseQueue + AdminQueue + ?Sized
{
}
