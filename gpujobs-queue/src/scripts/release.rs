//! `lua/release.lua`: gives a job back without counting the attempt.

use super::{Call, Fence, Lua, lua};
use crate::codec::int;
use crate::keys::Keys;
use gpujobs_core::{DeviceClass, QueueError};
use redis::{ScriptInvocation, Value};

pub(crate) struct Release<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) fence: Fence<'a>,
    pub(crate) lane: DeviceClass,
    pub(crate) now_ms: u64,
    pub(crate) ttl_ms: u64,
}

impl Call for Release<'_> {
    type Reply = ();
    const DOING: &'static str = "releasing a job";

    const LUA: Lua = lua!("release");

    fn partition(&self) -> &Keys {
        self.keys
    }

    fn fill(&self, inv: &mut ScriptInvocation<'_>) {
        self.fence
            .fill(inv)
            .arg(self.lane.as_str())
            .arg(self.now_ms)
            .arg(self.ttl_ms);
    }

    fn reply(&self, v: Value) -> Result<(), QueueError> {
        match int(&v) {
            Some(-1) => Err(QueueError::LeaseLost(self.fence.id.to_string())),
            _ => Ok(()),
        }
    }
}
