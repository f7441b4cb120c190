//! `lua/reject.lua`: dead-letters a submitted entry that cannot run.

use super::{Call, Lua, lua};
use crate::keys::Keys;
use gpujobs_core::QueueError;
use redis::{ScriptInvocation, Value};

pub(crate) struct Reject<'a> {
    pub(crate) keys: &'a Keys,
    /// Its submit-stream entry.
    pub(crate) entry: &'a str,
    /// The job's id when the entry had a readable one ('' otherwise).
    pub(crate) id: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) reason: &'a str,
    /// An excerpt of the raw entry, for the dead letter.
    pub(crate) raw: &'a str,
    pub(crate) now_ms: u64,
    pub(crate) error_json: &'a str,
}

impl Call for Reject<'_> {
    type Reply = ();
    const DOING: &'static str = "dead-lettering an entry";

    const LUA: Lua = lua!("reject");

    fn partition(&self) -> &Keys {
        self.keys
    }

    fn fill(&self, inv: &mut ScriptInvocation<'_>) {
        inv.key(self.keys.submit())
            .arg(self.entry)
            .arg(self.id)
            .arg(self.kind)
            .arg(self.reason)
            .arg(self.raw)
            .arg(self.now_ms)
            .arg(self.error_json);
    }

    fn reply(&self, _: Value) -> Result<(), QueueError> {
        Ok(())
    }
}
