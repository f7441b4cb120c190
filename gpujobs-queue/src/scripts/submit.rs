//! `lua/submit.lua`: records a batch of new jobs and appends them to the submit stream.

use super::{Call, Scripts, unexpected};
use crate::keys::Keys;
use crate::read::int;
use gpujobs_core::{JobEnvelope, QueueError};
use redis::{Script, ScriptInvocation, Value};

/// One job of a submit batch: its envelope and the envelope's JSON.
pub(crate) struct NewJob {
    pub(crate) env: JobEnvelope,
    pub(crate) env_json: String,
}

pub(crate) struct Submit<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) now_ms: u64,
    pub(crate) jobs: &'a [NewJob],
}

impl Call for Submit<'_> {
    /// Per job: `false` when a job with this id already existed (it runs once).
    type Reply = Vec<bool>;
    const DOING: &'static str = "submitting";

    fn script(s: &Scripts) -> &Script {
        &s.submit
    }

    fn partition(&self) -> &Keys {
        self.keys
    }

    fn fill(&self, inv: &mut ScriptInvocation<'_>) {
        inv.key(self.keys.submit())
            .key(self.keys.counts())
            .arg(self.now_ms);
        for j in self.jobs {
            let e = &j.env;
            inv.arg(e.id.as_str())
                .arg(&j.env_json)
                .arg(&e.kind)
                .arg(e.priority.as_str())
                .arg(e.device.as_str())
                .arg(e.max_attempts)
                .arg(e.created_us);
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
