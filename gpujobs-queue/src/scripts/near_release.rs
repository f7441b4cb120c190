//! `lua/near_release.lua`: hands jobs placed on a worker by locality to their lane: a
//! leaving worker's unread ones, or (no worker) every unread one past its wait.

use super::{Call, Lua, lua};
use crate::keys::Keys;
use gpujobs_core::{DeviceClass, QueueError};
use redis::{ScriptInvocation, Value};

pub(crate) struct NearRelease<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) lane: DeviceClass,
    /// The leaving worker; `None`: sweep every near stream of the lane.
    pub(crate) worker: Option<&'a str>,
    pub(crate) now_ms: u64,
}

impl Call for NearRelease<'_> {
    type Reply = ();
    const DOING: &'static str = "handing jobs placed by locality to their lane";

    const LUA: Lua = lua!("near_release");

    fn partition(&self) -> &Keys {
        self.keys
    }

    fn fill(&self, inv: &mut ScriptInvocation<'_>) {
        match self.worker {
            Some(w) => inv.key(self.keys.near(self.lane, w)),
            None => inv.key(self.keys.near_workers(self.lane)),
        };
        inv.arg(self.lane.as_str())
            .arg(self.worker.unwrap_or(""))
            .arg(self.now_ms);
    }

    /// Always 1.
    fn reply(&self, _: Value) -> Result<(), QueueError> {
        Ok(())
    }
}
