//! `lua/begin.lua`: starts the deliveries a blocking read handed to a worker.

use super::{Call, Lua, lua};
use crate::codec::{Begun, Entry, begun_rows};
use crate::keys::Keys;
use gpujobs_core::{DeviceClass, QueueError};
use redis::{ScriptInvocation, Value};

pub(crate) struct Begin<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) lane: DeviceClass,
    pub(crate) consumer: &'a str,
    pub(crate) now_ms: u64,
    pub(crate) lease_ms: u64,
    /// The entries read (each knows its stream).
    pub(crate) entries: &'a [Entry],
}

impl Call for Begin<'_> {
    type Reply = Vec<Begun>;
    const DOING: &'static str = "starting jobs";

    const LUA: Lua = lua!("begin");

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
            .arg(self.lease_ms);
        for e in self.entries {
            inv.arg(&e.stream)
                .arg(&e.id)
                .arg(e.field("id").unwrap_or(b""));
        }
    }

    fn reply(&self, v: Value) -> Result<Vec<Begun>, QueueError> {
        Ok(begun_rows(&v))
    }
}
