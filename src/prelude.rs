//! What a crate that adds its own job kind, or holds a concrete queue, needs in one
//! import: `use gpujobs::prelude::*;`. The queue's role traits are here so that their
//! methods can be called on a `MemoryQueue` or `RedisQueue` (an `Arc<dyn Queue>` needs
//! none of them).
//!
//! A kind is a serde type, so the crate also depends on `serde` with its `derive`
//! feature (`cargo add serde --features derive`): serde's derives must name the `serde`
//! crate from the crate that uses them. The user guide's snippet is compiled in CI
//! against exactly `gpujobs`, `tokio` and `serde`.

pub use crate::async_trait;
pub use gpujobs_core::queue::{
    AdminQueue, GraphQueue, LeaseQueue, Queue, ScheduleQueue, SubmitQueue,
};
pub use gpujobs_core::{
    Check, Cost, DeviceInfo, ExecContext, Execution, Executor, Job, JobError, JobOutput, Limits,
    Registry, StageTimes, Tensor, ValidationError, WorkerConfig,
};
