//! `lua/fail.lua`: records a failed attempt.

use super::{Call, Fence, Lua, lua, ms};
use crate::codec::text;
use crate::keys::Keys;
use gpujobs_core::queue::FailOutcome;
use gpujobs_core::{DeviceClass, JobError, QueueError};
use redis::{ScriptInvocation, Value};
use std::time::Duration;

pub(crate) struct Fail<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) fence: Fence<'a>,
    pub(crate) lane: DeviceClass,
    pub(crate) error: &'a JobError,
    pub(crate) error_json: String,
    /// Backoff before a retry.
    pub(crate) delay: Duration,
    pub(crate) now_ms: u64,
    pub(crate) ttl_ms: u64,
}

impl Call for Fail<'_> {
    type Reply = FailOutcome;
    const DOING: &'static str = "recording a failure";

    const LUA: Lua = lua!("fail");

    fn partition(&self) -> &Keys {
        self.keys
    }

    fn fill(&self, inv: &mut ScriptInvocation<'_>) {
        self.fence
            .fill(inv)
            .key(self.keys.delayed(self.lane))
            .arg(&self.error_json)
            .arg(self.error.class.as_str())
            .arg(ms(self.delay))
            .arg(self.now_ms)
            .arg(self.ttl_ms)
            .arg(self.lane.as_str())
            .arg(&self.error.message);
    }

    fn reply(&self, v: Value) -> Result<FailOutcome, QueueError> {
        match text(&v).as_deref() {
            Some("retrying") => Ok(FailOutcome::Retrying {
                attempts: self.fence.attempt,
                delay: self.delay,
            }),
            Some("failed") => Ok(FailOutcome::Failed),
            Some("dead") => Ok(FailOutcome::Dead),
            Some("cancelled") => Ok(FailOutcome::Cancelled),
            _ => Err(QueueError::LeaseLost(self.fence.id.to_string())),
        }
    }
}
