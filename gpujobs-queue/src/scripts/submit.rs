//! `lua/submit.lua`: records a new job and appends it to the submit stream.

use super::{Call, Scripts, unexpected};
use crate::keys::Keys;
use crate::read::int;
use gpujobs_core::{JobEnvelope, QueueError};
use redis::{Script, ScriptInvocation, Value};

pub(crate) struct Submit<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) env: &'a JobEnvelope,
    pub(crate) env_json: &'a str,
    pub(crate) now_ms: u64,
}

impl Call for Submit<'_> {
    /// `false` when a job with this id already exists (it runs once).
    type Reply = bool;
    const DOING: &'static str = "submitting";

    fn script(s: &Scripts) -> &Script {
        &s.submit
    }

    fn partition(&self) -> &Keys {
        self.keys
    }

    fn fill(&self, inv: &mut ScriptInvocation<'_>) {
        let e = self.env;
        inv.key(self.keys.submit())
            .arg(e.id.as_str())
            .arg(self.env_json)
            .arg(&e.kind)
            .arg(e.priority.as_str())
            .arg(e.device.as_str())
            .arg(e.max_attempts)
            .arg(e.created_us)
            .arg(self.now_ms);
    }

    fn reply(&self, v: Value) -> Result<bool, QueueError> {
        int(&v)
            .map(|n| n == 1)
            .ok_or_else(|| unexpected(Self::DOING, &v))
    }
}
