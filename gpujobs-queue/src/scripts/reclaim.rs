//! `lua/reclaim.lua`: claims deliveries whose worker stopped renewing their lease.

use super::{Call, Lua, lua};
use crate::codec::{Begun, begun_rows};
use crate::keys::Keys;
use gpujobs_core::{DeviceClass, QueueError};
use redis::{ScriptInvocation, Value};

pub(crate) struct Reclaim<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) lane: DeviceClass,
    pub(crate) consumer: &'a str,
    pub(crate) now_ms: u64,
    pub(crate) lease_ms: u64,
    pub(crate) max: usize,
}

impl Call for Reclaim<'_> {
    type Reply = Vec<Begun>;
    const DOING: &'static str = "reclaiming expired leases";

    const LUA: Lua = lua!("reclaim");

    fn partition(&self) -> &Keys {
        self.keys
    }

    fn fill(&self, inv: &mut ScriptInvocation<'_>) {
        for s in self.keys.lane_streams(self.lane) {
            inv.key(s);
        }
        inv.arg(self.lane.as_str())
            .arg(self.consumer)
            .arg(self.now_ms)
            .arg(self.lease_ms)
            .arg(self.max);
    }

    fn reply(&self, v: Value) -> Result<Vec<Begun>, QueueError> {
        Ok(begun_rows(&v))
    }
}
