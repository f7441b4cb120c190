//! What a crate that adds its own job kind needs, in one import:
//! `use gpujobs::prelude::*;`.
//!
//! A kind is a serde type, so the crate also depends on `serde` with its `derive`
//! feature (`cargo add serde --features derive`): serde's derives must name the `serde`
//! crate from the crate that uses them. The user guide's snippet is compiled in CI
//! against exactly `gpujobs`, `tokio` and `serde`.

pub use crate::async_trait;
pub use gpujobs_core::{
    Check, Cost, DeviceInfo, ExecContext, Execution, Executor, Job, JobError, JobOutput, Limits,
    Registry, StageTimes, Tensor, ValidationError, WorkerConfig,
};
