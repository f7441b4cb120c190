//! The Lua scripts, one per operation (`gpujobs-queue/lua/<operation>.lua`, each with a
//! header naming its KEYS and ARGV), and one typed call per script: the call's struct is
//! the only way to run it, so arguments cannot drift out of line with the script.
//!
//! Every hand-off of a job is one of these scripts, so it happens entirely or not at
//! all. A script runs inside one partition (see [`crate::keys`]).

mod begin;
mod cancel;
mod complete;
mod fail;
mod fetch;
mod near_release;
mod place;
mod reclaim;
mod reject;
mod release;
mod renew;
mod retry_dead;
mod submit;
mod submit_graph;
mod take;

pub(crate) use begin::Begin;
pub(crate) use cancel::Cancel;
pub(crate) use complete::{Complete, Completion, OutputBlob};
pub(crate) use fail::Fail;
pub(crate) use fetch::Fetch;
pub(crate) use near_release::NearRelease;
pub(crate) use place::{Place, PlaceJob};
pub(crate) use reclaim::Reclaim;
pub(crate) use reject::Reject;
pub(crate) use release::Release;
pub(crate) use renew::Renew;
pub(crate) use retry_dead::RetryDead;
pub(crate) use submit::{NewJob, Submit};
pub(crate) use submit_graph::SubmitGraph;
pub(crate) use take::Take;

use crate::keys::Keys;
use gpujobs_core::QueueError;
use redis::{Script, ScriptInvocation, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Helpers every script starts with.
const LIB: &str = include_str!("../../lua/lib.lua");

/// One script invocation: which script, its keys and arguments, and how to read its
/// reply. ARGV[1] (the partition's prefix) is added by the caller.
pub(crate) trait Call {
    /// What the reply means to the caller.
    type Reply;
    /// What the call does, for error messages ("placing jobs").
    const DOING: &'static str;
    /// Its script: `lua!("<operation>")` names `lua/<operation>.lua`.
    const LUA: Lua;
    /// Whether Redis runs it even above `maxmemory` (Redis 7 script flags). Only for
    /// scripts that grow nothing: a lease renewal rewrites a field of the same size, and
    /// refusing it while a full Redis also refuses the job's result would let the job be
    /// taken over and run twice.
    const ALLOW_OOM: bool = false;
    /// The partition it runs in.
    fn partition(&self) -> &Keys;
    /// KEYS and ARGV after the prefix, in the order of the script's header.
    fn fill(&self, inv: &mut ScriptInvocation<'_>);
    /// Reads the script's reply.
    fn reply(&self, v: Value) -> Result<Self::Reply, QueueError>;
}

/// A script's name and body, as `lua!` makes them.
pub(crate) type Lua = (&'static str, &'static str);

/// `lua!("renew")`: the name and body of `gpujobs-queue/lua/renew.lua`. A new operation
/// is that file and a Rust file whose `Call` names it: the scripts are loaded by name
/// on first use, with no list to keep in step.
macro_rules! lua {
    ($name:literal) => {
        ($name, include_str!(concat!("../../lua/", $name, ".lua")))
    };
}
pub(crate) use lua;

/// The scripts of one queue, each prepared (lib.lua prepended, the caps built in, its
/// SHA1 computed) on first use and kept; Redis caches the bodies.
pub(crate) struct Scripts {
    events_max: u64,
    dead_max: u64,
    loaded: RwLock<HashMap<&'static str, Arc<Script>>>,
}

impl Scripts {
    /// Scripts with the events and dead-letter caps built in.
    pub(crate) fn new(events_max: u64, dead_max: u64) -> Self {
        Scripts {
            events_max,
            dead_max,
            loaded: RwLock::default(),
        }
    }

    /// The prepared script of call `C`.
    pub(crate) fn get<C: Call>(&self) -> Arc<Script> {
        let (name, body) = C::LUA;
        if let Some(s) = self
            .loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return s.clone();
        }
        let lib = LIB
            .replace("EVENTS_MAX", &self.events_max.to_string())
            .replace("DEAD_MAX", &self.dead_max.to_string());
        // The shebang with flags must be the script's first line.
        let flags = if C::ALLOW_OOM {
            "#!lua flags=allow-oom\n"
        } else {
            ""
        };
        let script = Arc::new(Script::new(&format!("{flags}{lib}\n{body}")));
        self.loaded
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name)
            .or_insert(script)
            .clone()
    }
}

/// A reply that should have been an integer.
pub(crate) fn unexpected(doing: &str, v: &Value) -> QueueError {
    QueueError::Backend(format!("{doing}: unexpected script reply {v:?}"))
}

/// The names of a job's input blobs as the JSON list scripts keep in its record
/// (`blobs`), from the one walk over its tensors: how `drop_inputs` in `lib.lua` knows
/// what to delete without parsing the envelope.
pub(crate) fn input_blobs_json(env: &gpujobs_core::JobEnvelope) -> String {
    let names = gpujobs_core::model::tensor_json::blob_names(&env.payload);
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
}

/// Millisecond durations as script arguments.
pub(crate) fn ms(d: std::time::Duration) -> u64 {
    d.as_millis() as u64
}

/// What fences a worker's calls on a job: its lane entry, consumer and attempt.
pub(crate) struct Fence<'a> {
    pub(crate) stream: &'a str,
    pub(crate) entry: &'a str,
    pub(crate) consumer: &'a str,
    pub(crate) attempt: u32,
    pub(crate) id: &'a str,
}

impl<'a> Fence<'a> {
    /// KEYS[1] (the lane stream) and ARGV 2–5 (entry, consumer, attempt, id): how every
    /// fenced script (`renew`, `fail`, `release`) starts.
    pub(crate) fn fill<'i, 's>(
        &self,
        inv: &'i mut ScriptInvocation<'s>,
    ) -> &'i mut ScriptInvocation<'s> {
        inv.key(self.stream)
            .arg(self.entry)
            .arg(self.consumer)
            .arg(self.attempt)
            .arg(self.id)
    }

    /// The fence of a lease (its entry is `<stream>|<entry id>`).
    pub(crate) fn of(lease: &'a gpujobs_core::queue::Lease) -> Result<Self, QueueError> {
        let (stream, entry) = lease
            .entry
            .rsplit_once('|')
            .ok_or_else(|| QueueError::LeaseLost(lease.job_id.to_string()))?;
        Ok(Fence {
            stream,
            entry,
            consumer: &lease.consumer,
            attempt: lease.attempt,
            id: lease.job_id.as_str(),
        })
    }
}
