//! `lua/take.lua`: a scheduler's take of new submit entries, bounded by bytes.

use super::{Call, Lua, lua};
use crate::codec::{Entry, entries_of};
use crate::keys::Keys;
use gpujobs_core::QueueError;
use redis::{ScriptInvocation, Value};

pub(crate) struct Take<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) consumer: &'a str,
    /// Most entries.
    pub(crate) max: usize,
    /// Most bytes of entry bodies (`RedisConfig::take_batch_bytes`).
    pub(crate) budget: u64,
    /// Largest entry allowed (`RedisConfig::max_entry_bytes`).
    pub(crate) largest: u64,
}

impl Call for Take<'_> {
    type Reply = Vec<Entry>;
    const DOING: &'static str = "taking submitted jobs";

    const LUA: Lua = lua!("take");

    fn partition(&self) -> &Keys {
        self.keys
    }

    fn fill(&self, inv: &mut ScriptInvocation<'_>) {
        inv.key(self.keys.submit())
            .arg(self.consumer)
            .arg(self.max.max(1))
            .arg(self.budget.max(1))
            .arg(self.largest.max(1));
    }

    fn reply(&self, v: Value) -> Result<Vec<Entry>, QueueError> {
        Ok(entries_of(&self.keys.submit(), &v))
    }
}
