//! `lua/submit_graph.lua`: records the jobs of a graph, waiting ones and ready ones, in
//! one step.

use super::submit::{NewJob, full_or};
use super::{Call, Lua, lua, unexpected};
use crate::codec::int;
use crate::keys::Keys;
use gpujobs_core::QueueError;
use redis::{ScriptInvocation, Value};

/// A graph's jobs, parents before children, with each job's parents.
pub(crate) struct SubmitGraph<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) now_ms: u64,
    /// Share of `maxmemory` above which submits are refused (0: never).
    pub(crate) high_water: f64,
    /// Write id-only entries for the jobs queued at once (see `queue/entry_form.rs`).
    pub(crate) by_ref: bool,
    pub(crate) jobs: &'a [(NewJob, String)],
}

impl Call for SubmitGraph<'_> {
    /// Per job: `false` when a job with this id already existed (it runs once).
    type Reply = Vec<bool>;
    const DOING: &'static str = "submitting a graph";

    const LUA: Lua = lua!("submit_graph");

    fn partition(&self) -> &Keys {
        self.keys
    }

    fn fill(&self, inv: &mut ScriptInvocation<'_>) {
        inv.key(self.keys.submit())
            .key(self.keys.counts())
            .arg(self.now_ms)
            .arg(self.high_water)
            .arg(u8::from(self.by_ref));
        for (j, parents) in self.jobs {
            j.fill(inv);
            inv.arg(parents);
        }
    }

    fn reply(&self, v: Value) -> Result<Vec<bool>, QueueError> {
        full_or(&v, self.high_water)?;
        match &v {
            Value::Array(items) if items.len() == self.jobs.len() => {
                Ok(items.iter().map(|x| int(x) == Some(1)).collect())
            }
            _ => Err(unexpected(Self::DOING, &v)),
        }
    }
}
