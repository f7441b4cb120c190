//! `lua/submit.lua`: records a batch of new jobs and appends them to the submit stream.

use super::{Call, Lua, lua, unexpected};
use crate::codec::{int, text};
use crate::keys::Keys;
use gpujobs_core::{JobEnvelope, QueueError};
use redis::{ScriptInvocation, Value};

/// One job of a submit batch: its envelope and the envelope's JSON.
pub(crate) struct NewJob {
    pub(crate) env: JobEnvelope,
    pub(crate) env_json: String,
}

pub(crate) struct Submit<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) now_ms: u64,
    /// Share of `maxmemory` above which submits are refused (0: never).
    pub(crate) high_water: f64,
    /// The wake-up channel to announce the jobs on ('' for none: one partition).
    pub(crate) wake: &'a str,
    /// Write id-only entries (`job` = `{"id": .., "ref": true}`) instead of envelopes (see
    /// `queue/entry_form.rs`).
    pub(crate) by_ref: bool,
    pub(crate) jobs: &'a [NewJob],
}

impl Call for Submit<'_> {
    /// Per job: `false` when a job with this id already existed (it runs once).
    type Reply = Vec<bool>;
    const DOING: &'static str = "submitting";

    const LUA: Lua = lua!("submit");

    fn partition(&self) -> &Keys {
        self.keys
    }

    fn fill(&self, inv: &mut ScriptInvocation<'_>) {
        inv.key(self.keys.submit())
            .key(self.keys.counts())
            .arg(self.now_ms)
            .arg(self.high_water)
            .arg(self.wake)
            .arg(u8::from(self.by_ref));
        for j in self.jobs {
            j.fill(inv);
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

impl NewJob {
    /// The job's eight submit arguments: id, envelope JSON, kind, priority, device,
    /// max_attempts, created_us, input blob names (a JSON list).
    pub(crate) fn fill(&self, inv: &mut ScriptInvocation<'_>) {
        let e = &self.env;
        inv.arg(e.id.as_str())
            .arg(&self.env_json)
            .arg(&e.kind)
            .arg(e.priority.as_str())
            .arg(e.device.as_str())
            .arg(e.max_attempts)
            .arg(e.created_us)
            .arg(super::input_blobs_json(e));
    }
}

/// `QueueError::Full` when a submit script refused its batch above the high-water mark
/// (`{'full', used, max}`), else `Ok`.
pub(crate) fn full_or(v: &Value, high_water: f64) -> Result<(), QueueError> {
    if let Value::Array(items) = v
        && items.first().and_then(text).as_deref() == Some("full")
    {
        let mib = |i: usize| {
            items
                .get(i)
                .and_then(text)
                .and_then(|t| t.parse::<f64>().ok())
                .unwrap_or(0.0)
                / (1u64 << 20) as f64
        };
        return Err(QueueError::Full(format!(
            "Redis holds {:.0} MiB of its maxmemory of {:.0} MiB, above the high-water \
                 mark of {:.0}% kept for the results of jobs already accepted; submit again \
                 when jobs finish (their inputs are freed), or raise maxmemory",
            mib(1),
            mib(2),
            100.0 * high_water
        )));
    }
    Ok(())
}
