//! Jobs that ended, read from the streams the scripts already write: `<p>:finished`
//! (one entry per `complete` call, a field per job that succeeded) and `<p>:events`
//! (`failed`, `dead`, `cancelled`, among non-terminal states). A client waiting on many
//! jobs reads these instead of asking each job's state again and again: a few `XREAD`s
//! per round whatever the number of jobs, where polling cost a command per job.
//!
//! The streams are capped (about 100,000 entries each), so a reader that falls far
//! behind can miss entries; callers keep a slow poll of the states as a safety net
//! (`gpujobs wait` does), which also notices records that expired.

use super::RedisQueue;
use crate::codec::stream_reply;
use crate::connection::backend;
use gpujobs_core::{JobId, JobState, QueueError};

/// Where a reader of the ended-jobs streams stands: the last entry read of each
/// partition's `finished` and `events` streams.
#[derive(Debug, Clone)]
pub struct EndedCursor {
    /// Per partition: (`finished` id, `events` id).
    at: Vec<(String, String)>,
}

impl RedisQueue {
    /// A cursor that starts with the entries written from `since_ms` (milliseconds
    /// since the Unix epoch, by Redis's clock; pass a margin for clock skew: earlier
    /// entries of other jobs are simply read and ignored).
    pub fn ended_cursor(&self, since_ms: u64) -> EndedCursor {
        let start = format!("{}-0", since_ms.saturating_sub(1));
        EndedCursor {
            at: vec![(start.clone(), start); self.shared.parts.len()],
        }
    }

    /// The jobs that ended after `cursor` (at most `count` entries per stream and
    /// partition), advancing it: `Succeeded` from the finished stream, `Failed`,
    /// `Dead` and `Cancelled` from the events stream. A failure read from the stream
    /// may be older than a retry of the job (a dead letter retried since), so those are
    /// checked against the job's state now and reported only if it is still terminal,
    /// with that state (a success is final). A job may appear twice (retried and ended
    /// again); callers keep the states of the jobs they wait for. One `XREAD` per
    /// partition, and one read of state per failure.
    pub async fn ended_since(
        &self,
        cursor: &mut EndedCursor,
        count: usize,
    ) -> Result<Vec<(JobId, JobState)>, QueueError> {
        let mut out = Vec::new();
        let mut failures = Vec::new();
        for (keys, (fin, ev)) in self.shared.parts.iter().zip(cursor.at.iter_mut()) {
            let (finished, events) = (keys.finished(), keys.events());
            let reply: redis::Value = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(count.max(1))
                .arg("STREAMS")
                .arg(&finished)
                .arg(&events)
                .arg(&*fin)
                .arg(&*ev)
                .query_async(&mut self.conn())
                .await
                .map_err(backend("reading the ended jobs"))?;
            for entry in stream_reply(&reply) {
                if entry.stream == finished {
                    for (id, _worker) in &entry.fields {
                        if let Some(id) = JobId::parse(id) {
                            out.push((id, JobState::Succeeded));
                        }
                    }
                    *fin = entry.id;
                } else {
                    let state = entry.text("state").parse::<JobState>().ok();
                    let id = JobId::parse(&entry.text("id"));
                    if let (Some(id), Some(state)) = (id, state)
                        && state.is_terminal()
                    {
                        failures.push(id);
                    }
                    *ev = entry.id;
                }
            }
        }
        if !failures.is_empty() {
            let now = self.states(&failures).await?;
            for (id, state) in failures.into_iter().zip(now) {
                if let Some(state) = state.filter(|s| s.is_terminal()) {
                    out.push((id, state));
                }
            }
        }
        Ok(out)
    }
}
