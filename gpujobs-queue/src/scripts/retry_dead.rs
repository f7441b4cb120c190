//! `lua/retry_dead.lua`: re-submits a dead or failed job with fresh attempts.

use super::{Call, Lua, lua};
use crate::codec::{int, text};
use crate::keys::Keys;
use gpujobs_core::{JobId, QueueError};
use redis::{ScriptInvocation, Value};

pub(crate) struct RetryDead<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) id: &'a JobId,
    pub(crate) now_ms: u64,
}

impl Call for RetryDead<'_> {
    /// `false` when the job is not dead or failed (or its envelope is gone).
    type Reply = bool;
    const DOING: &'static str = "retrying a dead letter";

    const LUA: Lua = lua!("retry_dead");

    fn partition(&self) -> &Keys {
        self.keys
    }

    fn fill(&self, inv: &mut ScriptInvocation<'_>) {
        inv.key(self.keys.submit())
            .arg(self.id.as_str())
            .arg(self.now_ms);
    }

    fn reply(&self, v: Value) -> Result<bool, QueueError> {
        if let Some(unmet) = text(&v).and_then(|t| t.strip_prefix("unmet:").map(str::to_string)) {
            return Err(QueueError::Refused(format!(
                "job {} reads outputs of {unmet}, which have not succeeded: retry those first",
                self.id
            )));
        }
        Ok(int(&v) == Some(1))
    }
}
