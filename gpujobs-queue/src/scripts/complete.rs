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
    /// The attempt's output blobs, written only if its lease holds.
    pub(crate) outputs: Vec<OutputBlob>,
}

/// One output blob of a completion.
pub(crate) enum OutputBlob {
    /// Its value, set at `key` by the script.
    Inline { key: String, value: Vec<u8> },
    /// Written before the call at `staged`: renamed to `key` when the result is
    /// recorded, deleted when the lease was lost.
    Staged { staged: String, key: String },
}

impl Completion {
    pub(crate) fn new(
        fence: &Fence<'_>,
        result_json: String,
        keep_inputs: bool,
        outputs: Vec<OutputBlob>,
    ) -> Self {
        Completion {
            stream: fence.stream.to_string(),
            entry: fence.entry.to_string(),
            consumer: fence.consumer.to_string(),
            attempt: fence.attempt,
            id: fence.id.to_string(),
            result_json,
            keep_inputs,
            outputs,
        }
    }
}

pub(crate) struct Complete<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) now_ms: u64,
    pub(crate) ttl_ms: u64,
    /// Succeeded jobs this partition keeps (0: no count).
    pub(crate) keep: u64,
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
            .arg(self.ttl_ms)
            .arg(self.keep);
        for j in self.jobs {
            inv.arg(&j.stream)
                .arg(&j.entry)
                .arg(&j.consumer)
                .arg(j.attempt)
                .arg(&j.id)
                .arg(&j.result_json)
                .arg(u8::from(j.keep_inputs));
            let inline = j
                .outputs
                .iter()
                .filter(|o| matches!(o, OutputBlob::Inline { .. }))
                .count();
            inv.arg(inline).arg(j.outputs.len() - inline);
            for o in &j.outputs {
                if let OutputBlob::Inline { key, value } = o {
                    inv.arg(key).arg(&value[..]);
                }
            }
            for o in &j.outputs {
                if let OutputBlob::Staged { staged, key } = o {
                    inv.arg(staged).arg(key);
                }
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
