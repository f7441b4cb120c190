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
pub(crate) use complete::{Complete, Completion};
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

/// Helpers every script starts with.
const LIB: &str = include_str!("../../lua/lib.lua");

/// One script invocation: which script, its keys and arguments, and how to read its
/// reply. ARGV[1] (the partition's prefix) is added by the caller.
pub(crate) trait Call {
    /// What the reply means to the caller.
    type Reply;
    /// What the call does, for error messages ("placing jobs").
    const DOING: &'static str;
    /// The loaded script.
    fn script(s: &Scripts) -> &Script;
    /// The partition it runs in.
    fn partition(&self) -> &Keys;
    /// KEYS and ARGV after the prefix, in the order of the script's header.
    fn fill(&self, inv: &mut ScriptInvocation<'_>);
    /// Reads the script's reply.
    fn reply(&self, v: Value) -> Result<Self::Reply, QueueError>;
}

/// The loaded scripts (their SHA1s are computed once; Redis caches the bodies).
pub(crate) struct Scripts {
    submit: Script,
    place: Script,
    reject: Script,
    fetch: Script,
    begin: Script,
    reclaim: Script,
    renew: Script,
    complete: Script,
    fail: Script,
    release: Script,
    cancel: Script,
    retry_dead: Script,
    take: Script,
    submit_graph: Script,
    near_release: Script,
}

fn load(body: &str, events_max: u64, dead_max: u64) -> Script {
    Script::new(&with_lib(body, events_max, dead_max))
}

fn with_lib(body: &str, events_max: u64, dead_max: u64) -> String {
    let lib = LIB
        .replace("EVENTS_MAX", &events_max.to_string())
        .replace("DEAD_MAX", &dead_max.to_string());
    format!("{lib}\n{body}")
}

/// A script that Redis runs even when `used_memory` is over `maxmemory` (Redis 7 script
/// flags; the shebang must be the first line). Only for scripts that grow nothing: a
/// lease renewal rewrites a field of the same size, and refusing it while a full Redis
/// also refuses the job's result would let the job be taken over and run twice.
fn load_allow_oom(body: &str, events_max: u64, dead_max: u64) -> Script {
    Script::new(&format!(
        "#!lua flags=allow-oom\n{}",
        with_lib(body, events_max, dead_max)
    ))
}

impl Scripts {
    /// Loads every script, with the events and dead-letter caps built in.
    pub(crate) fn new(events_max: u64, dead_max: u64) -> Self {
        let s = |body| load(body, events_max, dead_max);
        Scripts {
            submit: s(include_str!("../../lua/submit.lua")),
            place: s(include_str!("../../lua/place.lua")),
            reject: s(include_str!("../../lua/reject.lua")),
            fetch: s(include_str!("../../lua/fetch.lua")),
            begin: s(include_str!("../../lua/begin.lua")),
            reclaim: s(include_str!("../../lua/reclaim.lua")),
            renew: load_allow_oom(include_str!("../../lua/renew.lua"), events_max, dead_max),
            complete: s(include_str!("../../lua/complete.lua")),
            fail: s(include_str!("../../lua/fail.lua")),
            release: s(include_str!("../../lua/release.lua")),
            cancel: s(include_str!("../../lua/cancel.lua")),
            retry_dead: s(include_str!("../../lua/retry_dead.lua")),
            take: s(include_str!("../../lua/take.lua")),
            submit_graph: s(include_str!("../../lua/submit_graph.lua")),
            near_release: s(include_str!("../../lua/near_release.lua")),
        }
    }
}

/// A reply that should have been an integer.
pub(crate) fn unexpected(doing: &str, v: &Value) -> QueueError {
    QueueError::Backend(format!("{doing}: unexpected script reply {v:?}"))
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
