//! `lua/fetch.lua`: promotes due retries, reads and begins a worker's batch in one call.

use super::{Call, Lua, lua, unexpected};
use crate::codec::{Begun, begun_rows, int};
use crate::keys::Keys;
use gpujobs_core::{DeviceClass, QueueError};
use redis::{ScriptInvocation, Value};

/// Retries promoted per call at most (the rest on the next call).
const PROMOTE_LIMIT: u32 = 256;

pub(crate) struct Fetch<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) lane: DeviceClass,
    pub(crate) consumer: &'a str,
    pub(crate) now_ms: u64,
    pub(crate) lease_ms: u64,
    /// Re-read this consumer's own pending entries instead of new ones (after a
    /// restart under the same name, or a lost reply).
    pub(crate) own: bool,
    /// Slots for high, normal and low priority (the weighted round-robin's share).
    pub(crate) quotas: [usize; 3],
    pub(crate) max: usize,
}

/// What a fetch found.
pub(crate) struct Fetched {
    /// Deliveries begun (and entries dropped or dead-lettered on the way).
    pub(crate) rows: Vec<Begun>,
    /// When the earliest retry of the lane comes due (ms since the epoch).
    pub(crate) next_due_ms: Option<u64>,
}

impl Call for Fetch<'_> {
    type Reply = Fetched;
    const DOING: &'static str = "fetching jobs";

    const LUA: Lua = lua!("fetch");

    fn partition(&self) -> &Keys {
        self.keys
    }

    fn fill(&self, inv: &mut ScriptInvocation<'_>) {
        for s in self.keys.lane_streams(self.lane) {
            inv.key(s);
        }
        inv.key(self.keys.delayed(self.lane))
            .key(self.keys.near(self.lane, self.consumer))
            .arg(self.lane.as_str())
            .arg(self.consumer)
            .arg(self.now_ms)
            .arg(self.lease_ms)
            .arg(u8::from(self.own))
            .arg(self.quotas[0])
            .arg(self.quotas[1])
            .arg(self.quotas[2])
            .arg(self.max.max(1))
            .arg(PROMOTE_LIMIT);
    }

    fn reply(&self, v: Value) -> Result<Fetched, QueueError> {
        match &v {
            Value::Array(parts) if parts.len() == 2 => Ok(Fetched {
                next_due_ms: int(&parts[0]).and_then(|d| u64::try_from(d).ok()),
                rows: begun_rows(&parts[1]),
            }),
            _ => Err(unexpected(Self::DOING, &v)),
        }
    }
}
