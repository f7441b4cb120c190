//! `lua/cancel.lua`: cancels a job before or while it runs.

use super::{Call, Lua, lua};
use crate::codec::text;
use crate::keys::Keys;
use gpujobs_core::queue::CancelOutcome;
use gpujobs_core::{JobId, JobState, QueueError};
use redis::{ScriptInvocation, Value};

pub(crate) struct Cancel<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) id: &'a JobId,
    pub(crate) now_ms: u64,
    pub(crate) ttl_ms: u64,
}

impl Call for Cancel<'_> {
    type Reply = CancelOutcome;
    const DOING: &'static str = "cancelling";

    const LUA: Lua = lua!("cancel");

    fn partition(&self) -> &Keys {
        self.keys
    }

    fn fill(&self, inv: &mut ScriptInvocation<'_>) {
        inv.key(self.keys.job(self.id))
            .arg(self.id.as_str())
            .arg(self.now_ms)
            .arg(self.ttl_ms);
    }

    fn reply(&self, v: Value) -> Result<CancelOutcome, QueueError> {
        let r = text(&v).unwrap_or_default();
        Ok(match r.as_str() {
            "notfound" => CancelOutcome::NotFound,
            "requested" => CancelOutcome::Requested,
            "cancelled" => CancelOutcome::Cancelled,
            other => CancelOutcome::AlreadyFinished(
                other
                    .trim_start_matches("finished:")
                    .parse::<JobState>()
                    .unwrap_or(JobState::Cancelled),
            ),
        })
    }
}
