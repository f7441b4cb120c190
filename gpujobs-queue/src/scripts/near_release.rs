//! `lua/near_release.lua`: a leaving worker hands back the jobs placed on it by
//! locality that it has not read.

use super::{Call, Scripts};
use crate::keys::Keys;
use gpujobs_core::{DeviceClass, QueueError};
use redis::{Script, ScriptInvocation, Value};

pub(crate) struct NearRelease<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) lane: DeviceClass,
    pub(crate) worker: &'a str,
    pub(crate) now_ms: u64,
}

impl Call for NearRelease<'_> {
    type Reply = ();
    const DOING: &'static str = "handing back jobs placed on a leaving worker";

    fn script(s: &Scripts) -> &Script {
        &s.near_release
    }

    fn partition(&self) -> &Keys {
        self.keys
    }

    fn fill(&self, inv: &mut ScriptInvocation<'_>) {
        inv.key(self.keys.near(self.lane, self.worker))
            .arg(self.lane.as_str())
            .arg(self.worker)
            .arg(self.now_ms);
    }

    /// 1 (handed back) or 0 (nothing placed on it); both are fine.
    fn reply(&self, _: Value) -> Result<(), QueueError> {
        Ok(())
    }
}
