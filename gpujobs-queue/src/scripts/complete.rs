//! `lua/complete.lua`: records the results of a batch of jobs.

use super::{Call, Fence, Lua, lua, unexpected};
use crate::codec::int;
use crate::keys::Keys;
use gpujobs_core::QueueError;
use redis::{ScriptInvocation, Value};

/// One job's result, with the lease that fences it.
pub(crate) struct Completion {
    pub(crate) stream: String,
    pub(crate) entry: String,
    pub(crate) consumer: String,
    pub(crate) attempt: u32,
    pub(crate) id: String,
    pub(crate) result_json: String,
    /// Keep the job's input blobs: its output is ephemeral (held by its worker only),
    /// and another worker may have to re-run it from them.
    pub(crate) keep_inputs: bool,
    /// The attempt's output blobs, `(staged key, blob key)`: renamed into place when the
    /// result is recorded, deleted when the lease was lost.
    pub(crate) staged: Vec<(String, String)>,
}

impl Completion {
    pub(crate) fn new(
        fence: &Fence<'_>,
        result_json: String,
        keep_inputs: bool,
        staged: Vec<(String, String)>,
    ) -> Self {
        Completion {
            stream: fence.stream.to_string(),
            entry: fence.entry.to_string(),
            consumer: fence.consumer.to_string(),
            attempt: fence.attempt,
            id: fence.id.to_string(),
            result_json,
            keep_inputs,
            staged,
        }
    }
}

pub(crate) struct Complete<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) now_ms: u64,
    pub(crate) ttl_ms: u64,
    pub(crate) jobs: &'a [Completion],
}

impl Call for Complete<'_> {
    /// Per job: recorded (`true`) or lease lost.
    type Reply = Vec<bool>;
    const DOING: &'static str = "completing jobs";

    const LUA: Lua = lua!("complete");

    fn partition(&self) -> &Keys {
        self.keys
    }

    fn fill(&self, inv: &mut ScriptInvocation<'_>) {
        inv.key(self.keys.counts())
            .arg(self.now_ms)
            .arg(self.ttl_ms);
        for j in self.jobs {
            inv.arg(&j.stream)
                .arg(&j.entry)
                .arg(&j.consumer)
                .arg(j.attempt)
                .arg(&j.id)
                .arg(&j.result_json)
                .arg(u8::from(j.keep_inputs))
                .arg(j.staged.len());
            for (staged, key) in &j.staged {
                inv.arg(staged).arg(key);
            }
        }
    }

    fn reply(&self, v: Value) -> Result<Vec<bool>, QueueError> {
        match &v {
            Value::Array(items) if items.len() == self.jobs.len() => {
                Ok(items.iter().map(|x| int(x) == Some(1)).collect())
            }
            _ => Err(unexpected(Self::DOING, &v)),
        }
    }
}
