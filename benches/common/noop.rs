//! The no-op job the queue benches share: nothing runs, so only queue overhead is
//! measured.

use async_trait::async_trait;
use gpujobs::{
    Cost, DeviceClass, DeviceInfo, ExecContext, Execution, Executor, Job, JobError, JobOutput,
    Limits, StageTimes, ValidationError,
};
use serde::{Deserialize, Serialize};

/// A job that does nothing, so only queue overhead is measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Noop;

/// Its output: nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NoopOut;

impl JobOutput for NoopOut {
    fn summary(&self) -> String {
        String::new()
    }
}

impl Job for Noop {
    const KIND: &'static str = "noop";
    type Output = NoopOut;
    fn validate(&self, _: &Limits) -> Result<(), ValidationError> {
        Ok(())
    }
    fn cost(&self) -> Cost {
        Cost::default()
    }
    fn size_label(&self) -> String {
        "noop".into()
    }
}

/// Runs it on the CPU, instantly.
pub(crate) struct NoopExec;

impl NoopExec {
    /// The device it claims to run on.
    pub(crate) fn device(&self) -> DeviceInfo {
        DeviceInfo {
            class: DeviceClass::Cpu,
            name: "noop".into(),
            ordinal: 0,
        }
    }
}

#[async_trait]
impl Executor<Noop> for NoopExec {
    async fn run(&self, _: Noop, _: &ExecContext) -> Result<Execution<NoopOut>, JobError> {
        Ok(Execution {
            output: NoopOut,
            times: StageTimes::default(),
        })
    }
}
