//! `lua/renew.lua`: extends a lease; reports a cancellation request.

use super::{Call, Fence, Lua, lua, unexpected};
use crate::codec::int;
use crate::keys::Keys;
use gpujobs_core::QueueError;
use gpujobs_core::queue::RenewOutcome;
use redis::{ScriptInvocation, Value};

pub(crate) struct Renew<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) fence: Fence<'a>,
    pub(crate) lease_ms: u64,
}

impl Call for Renew<'_> {
    type Reply = RenewOutcome;
    const DOING: &'static str = "renewing a lease";

    const LUA: Lua = lua!("renew");
    const ALLOW_OOM: bool = true;

    fn partition(&self) -> &Keys {
        self.keys
    }

    fn fill(&self, inv: &mut ScriptInvocation<'_>) {
        self.fence.fill(inv).arg(self.lease_ms);
    }

    fn reply(&self, v: Value) -> Result<RenewOutcome, QueueError> {
        match int(&v) {
            Some(-1) => Err(QueueError::LeaseLost(self.fence.id.to_string())),
            Some(c) => Ok(RenewOutcome {
                cancel_requested: c == 1,
            }),
            None => Err(unexpected(Self::DOING, &v)),
        }
    }
}
