//! `lua/place.lua`: forwards a batch of submitted jobs to their lanes.

use super::{Call, Lua, lua};
use crate::keys::Keys;
use gpujobs_core::{DeviceClass, JobEnvelope, QueueError};
use redis::{ScriptInvocation, Value};

/// One job of a placement batch.
pub(crate) struct PlaceJob<'a> {
    /// Its submit-stream entry.
    pub(crate) entry: &'a str,
    pub(crate) env: &'a JobEnvelope,
    pub(crate) lane: DeviceClass,
    pub(crate) decision_json: String,
    /// The placement's run estimate, seconds (added to the lane's backlog).
    pub(crate) est_s: f64,
    /// The worker holding its inputs, offered the job alone for `wait_ms` (locality).
    pub(crate) worker: Option<&'a str>,
    pub(crate) wait_ms: u64,
}

pub(crate) struct Place<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) now_ms: u64,
    /// The wake-up channel to announce the lanes that got jobs on ('' for none).
    pub(crate) wake: &'a str,
    pub(crate) jobs: &'a [PlaceJob<'a>],
}

impl Call for Place<'_> {
    type Reply = ();
    const DOING: &'static str = "placing jobs";

    const LUA: Lua = lua!("place");

    fn partition(&self) -> &Keys {
        self.keys
    }

    fn fill(&self, inv: &mut ScriptInvocation<'_>) {
        inv.key(self.keys.submit()).arg(self.now_ms).arg(self.wake);
        for j in self.jobs {
            inv.arg(j.entry)
                .arg(j.env.id.as_str())
                .arg(&j.env.kind)
                .arg(j.env.priority.as_str())
                .arg(j.env.device.as_str())
                .arg(j.env.max_attempts)
                .arg(j.env.created_us)
                .arg(j.lane.as_str())
                .arg(&j.decision_json)
                .arg(format!("{:.9}", j.est_s.max(0.0)))
                .arg(j.worker.unwrap_or(""))
                .arg(j.wait_ms)
                .arg(super::input_blobs_json(j.env));
        }
    }

    /// Per job 1 (placed) or 0 (dropped: cancelled or placed before); both are fine.
    fn reply(&self, _: Value) -> Result<(), QueueError> {
        Ok(())
    }
}
