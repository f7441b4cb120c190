//! Which form of submit entry a client writes.
//!
//! A client's submit stores the envelope in the job's record (`env`), so the submit
//! entry need only name the job: `job` = `{"id": "<id>", "ref": true}` instead of the
//! envelope, which halves
//! what a queued job costs Redis and what each submit writes. Schedulers older than
//! that form parse every `job` field as an envelope and refuse this one. So a client
//! writes id-only entries only while it can see that every scheduler reading the
//! namespace understands them:
//!
//! - a scheduler that does says so in the hash `{<ns>}:readers` (field: its consumer
//!   id, value: when, ms), renewed every half scheduler lease while it takes entries;
//! - every consumer of the submit stream's `schedulers` group that has read within the
//!   last two scheduler leases (`XINFO CONSUMERS`, idle time) must be listed there
//!   with a time as recent.
//!
//! No scheduler seen, an older one seen, or a Redis that refuses `XINFO`: whole
//! entries, which every version reads. The client looks again every [`RECHECK`];
//! `gpujobs doctor` names the older schedulers it sees
//! ([`RedisQueue::older_schedulers`]). Redis lists a consumer only once it has been
//! delivered an entry, and before 7.2 its idle time counts from its last delivery, so
//! an older scheduler that has taken nothing for two leases is not seen. For what gets
//! past the look, the id-only entry is itself a `job` field, `{"id": .., "ref": true}`:
//! an older scheduler refuses it as not a valid envelope, under its id, so the job is
//! `dead` with that error (not silently stuck), doctor lists it
//! ([`Diagnosis::refs_refused`](super::Diagnosis::refs_refused)), and `dead-letter
//! retry` runs it from the envelope its record kept. docs/wire-format.md tells
//! operators to upgrade schedulers before clients.

use super::{RedisQueue, Shared, lock};
use crate::codec::consumers_idle;
use crate::connection::backend;
use crate::keys::SCHEDULERS;
use gpujobs_core::QueueError;
use gpujobs_core::model::envelope::now_ms;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a client keeps its answer before looking at the schedulers again.
pub(crate) const RECHECK: Duration = Duration::from_secs(10);

/// A client's cached answer: may it write id-only entries?
#[derive(Default)]
pub(crate) struct EntryForm {
    last: Mutex<Option<(Instant, bool)>>,
}

/// The schedulers of the namespace as a client sees them.
struct Readers {
    /// Consumers of the submit stream that read recently, with their idle ms.
    active: Vec<(String, i64)>,
    /// Schedulers that said they read id-only entries, with when (ms since the epoch).
    announced: HashMap<String, u64>,
}

impl EntryForm {
    /// Whether submits may append id-only entries now.
    pub(crate) async fn by_ref(&self, shared: &Shared) -> bool {
        if let Some((at, answer)) = *lock(&self.last)
            && at.elapsed() < RECHECK
        {
            return answer;
        }
        let answer = match Readers::read(shared).await {
            Ok(r) => r.older(shared).is_empty() && r.any_fresh(shared),
            Err(e) => {
                tracing::debug!(error = %e, "cannot see the schedulers; writing whole submit entries");
                false
            }
        };
        *lock(&self.last) = Some((Instant::now(), answer));
        answer
    }

    /// Drops the cached answer, so the next submit looks again (a scheduler in this
    /// process just announced itself: its own submits need not wait for [`RECHECK`]).
    pub(crate) fn forget(&self) {
        *lock(&self.last) = None;
    }
}

impl Readers {
    /// Recent enough to count: two scheduler leases.
    fn window_ms(shared: &Shared) -> i64 {
        2 * shared.cfg.scheduler_lease.as_millis() as i64
    }

    async fn read(shared: &Shared) -> Result<Readers, QueueError> {
        let keys = &shared.parts[0];
        let consumers: redis::Value = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(keys.submit())
            .arg(SCHEDULERS)
            .query_async(&mut shared.conn())
            .await
            .map_err(backend("listing the schedulers"))?;
        let announced: HashMap<String, u64> = redis::cmd("HGETALL")
            .arg(keys.readers())
            .query_async(&mut shared.conn())
            .await
            .map_err(backend("listing the schedulers"))?;
        let window = Self::window_ms(shared);
        let active = consumers_idle(&consumers)
            .into_iter()
            .filter(|(_, idle)| *idle < window)
            .collect();
        Ok(Readers { active, announced })
    }

    /// Active consumers that have not said (recently) that they read id-only entries.
    fn older(&self, shared: &Shared) -> Vec<(String, i64)> {
        let since = now_ms().saturating_sub(Self::window_ms(shared) as u64);
        self.active
            .iter()
            .filter(|(name, _)| self.announced.get(name).is_none_or(|&at| at < since))
            .cloned()
            .collect()
    }

    /// Whether some scheduler said so recently (else none runs: an older one could
    /// start first).
    fn any_fresh(&self, shared: &Shared) -> bool {
        let since = now_ms().saturating_sub(Self::window_ms(shared) as u64);
        self.announced.values().any(|&at| at >= since)
    }
}

impl RedisQueue {
    /// Says that scheduler `consumer` reads id-only entries, and forgets schedulers that
    /// have not said so for an hour (scheduler ids are new with every process).
    pub(super) async fn announce_reader(&self, consumer: &str) -> Result<(), QueueError> {
        let key = self.shared.parts[0].readers();
        let now = now_ms();
        let mut conn = self.conn();
        let all: HashMap<String, u64> = redis::pipe()
            .cmd("HSET")
            .arg(&key)
            .arg(consumer)
            .arg(now)
            .ignore()
            .cmd("HGETALL")
            .arg(&key)
            .query_async::<(HashMap<String, u64>,)>(&mut conn)
            .await
            .map_err(backend("announcing the scheduler"))?
            .0;
        let stale: Vec<&String> = all
            .iter()
            .filter(|(_, at)| at.saturating_add(3_600_000) < now)
            .map(|(name, _)| name)
            .collect();
        if !stale.is_empty() {
            redis::cmd("HDEL")
                .arg(&key)
                .arg(stale)
                .query_async::<()>(&mut conn)
                .await
                .map_err(backend("announcing the scheduler"))?;
        }
        self.shared.entry_form.forget();
        Ok(())
    }

    /// Schedulers reading the submit stream now that do not read id-only entries (a
    /// gpujobs older than them), with their idle ms: while one runs, clients write
    /// whole `job` entries. Empty when Redis will not say.
    pub async fn older_schedulers(&self) -> Vec<(String, i64)> {
        match Readers::read(&self.shared).await {
            Ok(r) => r.older(&self.shared),
            Err(_) => Vec::new(),
        }
    }
}
