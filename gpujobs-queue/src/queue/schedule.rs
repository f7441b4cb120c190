//! The scheduler's side: take submitted entries, place them on lanes in batches,
//! dead-letter the ones that cannot run.
//!
//! An [`Incoming`]'s entry is `<partition>|<stream entry id>`.

use super::signalled::Found;
use super::wakeup::Topic;
use super::{RedisQueue, Role, lock};
use crate::codec::{Entry, entries_of};
use crate::codec::{excerpt, parse_submission, ref_of};
use crate::connection::{backend, ensure_groups, is_nogroup};
use crate::keys::{Keys, SCHEDULERS, partition_of};
use crate::scripts::NearRelease;
use crate::scripts::{Place, PlaceJob, Reject, Take, ms};
use async_trait::async_trait;
use gpujobs_core::DeviceClass;
use gpujobs_core::model::envelope::now_ms;
use gpujobs_core::queue::Incoming;
use gpujobs_core::queue::ScheduleQueue;
use gpujobs_core::{JobError, JobId, PlacementDecision, QueueError};
use redis::Value;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[async_trait]
impl ScheduleQueue for RedisQueue {
    async fn take_submitted(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Incoming>, QueueError> {
        let mut reclaim = {
            let mut last = lock(&self.submit_reclaimed);
            let due = last.is_none_or(|t| t.elapsed() >= self.shared.cfg.scheduler_lease / 2);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if reclaim && let Err(e) = self.announce_reader(consumer).await {
            // Clients then write whole entries, which every scheduler reads.
            tracing::warn!(error = %e, "could not announce that this scheduler reads id-only entries");
        }
        let mut reread = self.shared.reread_own.swap(false, Ordering::AcqRel);
        if reread {
            lock(&self.drained).clear();
        }
        let deadline = Instant::now() + wait;
        let order: Vec<usize> = self.sweep(Role::Take).collect();
        // Entries taken back (stale or this consumer's own) come from XAUTOCLAIM and
        // XREADGROUP, which cannot be bounded by bytes: as many as the largest of the
        // last batch fits into `take_batch_bytes` (the first batch assumes entries of
        // the largest size allowed). New entries are bounded exactly in `take_from`.
        let largest = match self.entry_bytes_seen.load(Ordering::Relaxed) {
            0 => self.shared.cfg.max_entry_bytes,
            seen => seen,
        };
        let max = max.min((self.shared.cfg.take_batch_bytes / largest.max(1024)).max(1) as usize);
        loop {
            // The subscription comes up during the first call: from then on, by wake-ups.
            if let Some(w) = self.live_wakeups() {
                // Taking back reads every partition once, before reading by wake-ups.
                if (reclaim || reread)
                    && let Some((keys, got)) = self
                        .take_first(&order, consumer, max, reclaim, reread)
                        .await?
                {
                    return self.incoming(keys, got).await;
                }
                let read = |p: usize| async move {
                    let keys = &self.shared.parts[p];
                    let got = self
                        .take_from(keys, consumer, max, false, false, None)
                        .await?;
                    // More may wait when the take stopped at its count or its bytes.
                    let cfg = &self.shared.cfg;
                    let bytes: u64 = got
                        .iter()
                        .flat_map(|e| &e.fields)
                        .map(|(k, v)| (k.len() + v.len()) as u64)
                        .sum();
                    Ok(Found {
                        more: got.len() >= max
                            || bytes + cfg.max_entry_bytes > cfg.take_batch_bytes,
                        value: (!got.is_empty()).then_some((keys, got)),
                        due_ms: None,
                    })
                };
                let got = self
                    .read_signalled(w, Role::Take, Topic::Submit, consumer, deadline, read)
                    .await?;
                return match got {
                    Some((keys, got)) => self.incoming(keys, got).await,
                    None => Ok(Vec::new()),
                };
            }
            if let Some((keys, got)) = self
                .take_first(&order, consumer, max, reclaim, reread)
                .await?
            {
                self.adapt_slice(Role::Take, true);
                return self.incoming(keys, got).await;
            }
            (reclaim, reread) = (false, false);
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Vec::new());
            }
            let keys = &self.shared.parts[order[0]];
            let block = Some(self.block_slice(Role::Take, left));
            let got = self
                .take_from(keys, consumer, max, false, false, block)
                .await?;
            self.adapt_slice(Role::Take, !got.is_empty());
            if !got.is_empty() {
                return self.incoming(keys, got).await;
            }
        }
    }

    async fn place(
        &self,
        incoming: &Incoming,
        decision: PlacementDecision,
    ) -> Result<(), QueueError> {
        self.place_batch(std::slice::from_ref(&(incoming.clone(), decision)))
            .await
    }

    async fn place_batch(&self, batch: &[(Incoming, PlacementDecision)]) -> Result<(), QueueError> {
        let mut jobs = Vec::with_capacity(batch.len());
        for (incoming, decision) in batch {
            let env = incoming.job.as_ref().map_err(|e| {
                QueueError::Backend(format!("cannot place an unreadable entry: {e}"))
            })?;
            let (keys, entry) = self.entry_of(incoming)?;
            let job = PlaceJob {
                entry,
                env,
                lane: decision.lane,
                decision_json: serde_json::to_string(decision)?,
                est_s: decision.run_estimate_s,
                worker: decision.worker.as_deref(),
                wait_ms: decision.worker_wait_ms,
            };
            jobs.push((keys.partition(), job));
        }
        let by_part = self.shared.by_partition(jobs);
        for (p, jobs) in by_part.iter().enumerate() {
            if !jobs.is_empty() {
                self.shared
                    .call(&Place {
                        keys: &self.shared.parts[p],
                        now_ms: now_ms(),
                        wake: &self.shared.wake,
                        jobs,
                    })
                    .await?;
            }
        }
        Ok(())
    }

    async fn reject(&self, incoming: &Incoming, reason: &str) -> Result<(), QueueError> {
        let (keys, entry) = self.entry_of(incoming)?;
        let (id, kind) = match (&incoming.job, &incoming.id) {
            (Ok(env), _) => (env.id.as_str(), env.kind.as_str()),
            (Err(_), Some(id)) => (id.as_str(), ""),
            (Err(_), None) => ("", ""),
        };
        let error = serde_json::to_string(&JobError::permanent(reason))?;
        self.shared
            .call(&Reject {
                keys,
                entry,
                id,
                kind,
                reason,
                raw: incoming.raw.as_deref().unwrap_or(""),
                now_ms: now_ms(),
                error_json: &error,
            })
            .await
    }

    /// Moves jobs placed on a worker by locality that it has not taken by the end of
    /// their wait to their lanes, on every partition and lane.
    async fn release_overdue_near(&self) -> Result<(), QueueError> {
        self.release_near(None).await
    }
}

impl RedisQueue {
    /// Runs `near_release.lua` on every partition and lane: for `worker` (leaving), all
    /// its unread near jobs; for `None`, every overdue one.
    pub(super) async fn release_near(&self, worker: Option<&str>) -> Result<(), QueueError> {
        for keys in &self.shared.parts {
            for lane in DeviceClass::ALL {
                self.shared
                    .call(&NearRelease {
                        keys,
                        lane,
                        worker,
                        now_ms: now_ms(),
                    })
                    .await?;
            }
        }
        Ok(())
    }

    fn entry_of<'a>(&self, incoming: &'a Incoming) -> Result<(&Keys, &'a str), QueueError> {
        incoming
            .entry
            .split_once('|')
            .and_then(|(p, e)| Some((self.shared.parts.get(p.parse::<usize>().ok()?)?, e)))
            .ok_or_else(|| {
                QueueError::Backend(format!(
                    "`{}` is not a submit entry of this queue",
                    incoming.entry
                ))
            })
    }

    /// Entries a scheduler took but never handed off (it died): take them over.
    async fn autoclaim(
        &self,
        keys: &Keys,
        consumer: &str,
        max: usize,
    ) -> Result<Vec<Entry>, QueueError> {
        let submit = keys.submit();
        let v: Result<Value, _> = redis::cmd("XAUTOCLAIM")
            .arg(&submit)
            .arg(SCHEDULERS)
            .arg(consumer)
            .arg(ms(self.shared.cfg.scheduler_lease))
            .arg("0-0")
            .arg("COUNT")
            .arg(max.max(1))
            .query_async(&mut self.conn())
            .await;
        match v {
            Ok(Value::Array(parts)) if parts.len() >= 2 => Ok(entries_of(&submit, &parts[1])),
            Ok(_) => Ok(Vec::new()),
            Err(e) if is_nogroup(&e) => {
                ensure_groups(&mut self.conn(), &self.shared.parts).await?;
                Ok(Vec::new())
            }
            Err(e) => Err(QueueError::Backend(format!("reclaiming submissions: {e}"))),
        }
    }

    /// Reads up to `max` entries of one partition's submit stream: stale ones first
    /// (when `reclaim`), then this consumer's own (after an error), then new ones.
    /// New ones are bounded by bytes exactly (`lua/take.lua`); while blocking, when
    /// Redis cannot measure them first, one at a time.
    /// Takes from the partitions in `order`, one non-blocking take each (taking back
    /// stale or this consumer's own entries first as asked), until one gives entries.
    async fn take_first(
        &self,
        order: &[usize],
        consumer: &str,
        max: usize,
        reclaim: bool,
        reread: bool,
    ) -> Result<Option<(&Keys, Vec<Entry>)>, QueueError> {
        for &p in order {
            let keys = &self.shared.parts[p];
            let got = self
                .take_from(keys, consumer, max, reclaim, reread, None)
                .await?;
            if !got.is_empty() {
                return Ok(Some((keys, got)));
            }
        }
        Ok(None)
    }

    async fn take_from(
        &self,
        keys: &Keys,
        consumer: &str,
        max: usize,
        reclaim: bool,
        reread: bool,
        block: Option<Duration>,
    ) -> Result<Vec<Entry>, QueueError> {
        let submit = [keys.submit()];
        if reclaim {
            let e = self.autoclaim(keys, consumer, max).await?;
            if !e.is_empty() {
                return Ok(e);
            }
        }
        if reread {
            let e = self
                .read_group(SCHEDULERS, consumer, &submit, &["0"], max, None)
                .await?;
            if !e.is_empty() {
                return Ok(e);
            }
        }
        if block.is_some() {
            return self
                .read_group(SCHEDULERS, consumer, &submit, &[">"], 1, block)
                .await;
        }
        let cfg = &self.shared.cfg;
        self.shared
            .call(&Take {
                keys,
                consumer,
                max,
                budget: cfg.take_batch_bytes,
                largest: cfg.max_entry_bytes,
            })
            .await
    }

    /// Parses taken entries; forwards those whose id belongs to another partition.
    async fn incoming(
        &self,
        keys: &Keys,
        mut entries: Vec<Entry>,
    ) -> Result<Vec<Incoming>, QueueError> {
        let unresolved = self.resolve_refs(keys, &mut entries).await?;
        let n = self.shared.parts.len() as u32;
        let cap = self.shared.cfg.max_entry_bytes;
        let largest = entries
            .iter()
            .map(|e| e.field("job").map_or(0, <[u8]>::len) as u64)
            .max()
            .unwrap_or(0);
        self.entry_bytes_seen.store(largest, Ordering::Relaxed);
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            if let Some(id) = unresolved.get(&e.id) {
                // Not forwarded: the record an id-only entry names is in the partition its
                // client wrote it to, so another partition has nothing to resolve.
                let reason = format!(
                    "submit entry refers to job `{id}`, which has no record with an \
                     envelope here (deleted or expired before the scheduler took it)"
                );
                out.push(Incoming {
                    entry: format!("{}|{}", keys.partition(), e.id),
                    job: Err(reason),
                    raw: Some(excerpt(e.field("job").unwrap_or(b""))),
                    id: None,
                    holders: Vec::new(),
                });
                continue;
            }
            let field = e.field("job");
            let len = field.map_or(0, <[u8]>::len) as u64;
            // Too large to parse: refused on its size, its id read from its start.
            let job = if len > cap {
                Err(format!(
                    "entry of {len} bytes is larger than the limit of {cap} \
                     (RedisConfig::max_entry_bytes): send large tensors as blobs \
                     (docs/wire-format.md)"
                ))
            } else {
                parse_submission(field)
            };
            let id = match &job {
                Ok(env) => Some(env.id.clone()),
                Err(_) if len > cap => leading_id(field),
                Err(_) => readable_id(field),
            };
            if let Some(id) = &id {
                let home = partition_of(id.as_str(), n);
                if home != keys.partition() {
                    // With the id it was given or generated, so it stays there.
                    let body = match &job {
                        Ok(env) => serde_json::to_vec(env)?,
                        Err(_) => field.unwrap_or(b"").to_vec(),
                    };
                    self.forward(keys, &e.id, &self.shared.parts[home as usize], &body)
                        .await?;
                    continue;
                }
            }
            let raw = job.is_err().then(|| excerpt(field.unwrap_or(b"")));
            out.push(Incoming {
                entry: format!("{}|{}", keys.partition(), e.id),
                job: job.map(Into::into),
                raw,
                id,
                holders: holders(e.field("holders")),
            });
        }
        Ok(out)
    }

    /// Gives each id-only entry (`{"id": .., "ref": true}`, see `entry_form.rs`) the
    /// envelope its record's `env` holds, in one round trip. Returns the entries whose
    /// record has none, by entry id, with the id they named.
    async fn resolve_refs(
        &self,
        keys: &Keys,
        entries: &mut [Entry],
    ) -> Result<HashMap<String, String>, QueueError> {
        let mut unresolved = HashMap::new();
        let mut refs: Vec<(usize, JobId)> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let Some(named) = e.field("job").and_then(ref_of) else {
                continue;
            };
            match JobId::parse(&named) {
                Some(id) => refs.push((i, id)),
                None => {
                    unresolved.insert(e.id.clone(), named);
                }
            }
        }
        if refs.is_empty() {
            return Ok(unresolved);
        }
        let mut pipe = redis::pipe();
        for (_, id) in &refs {
            pipe.cmd("HGET").arg(keys.job(id)).arg("env");
        }
        let envs: Vec<Option<Vec<u8>>> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading the envelopes of id-only submit entries"))?;
        for ((i, id), env) in refs.into_iter().zip(envs) {
            match env {
                Some(env) if !env.is_empty() => {
                    if let Some(slot) = entries[i].fields.iter_mut().find(|(k, _)| k == "job") {
                        slot.1 = env;
                    }
                }
                _ => {
                    unresolved.insert(entries[i].id.clone(), id.to_string());
                }
            }
        }
        Ok(unresolved)
    }

    /// Moves an entry submitted to the wrong partition to its job's own. At least once:
    /// a crash in between leaves a duplicate entry, which placing drops.
    async fn forward(
        &self,
        from: &Keys,
        entry: &str,
        to: &Keys,
        body: &[u8],
    ) -> Result<(), QueueError> {
        redis::cmd("XADD")
            .arg(to.submit())
            .arg("*")
            .arg("job")
            .arg(body)
            .query_async::<String>(&mut self.conn())
            .await
            .map_err(backend("forwarding a submission to its partition"))?;
        redis::pipe()
            .cmd("XACK")
            .arg(from.submit())
            .arg(SCHEDULERS)
            .arg(entry)
            .ignore()
            .cmd("XDEL")
            .arg(from.submit())
            .arg(entry)
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(backend("forwarding a submission to its partition"))
    }
}

/// The `id` of an entry that is JSON with a valid id but not a valid envelope.
/// The `id` of an envelope too large to parse, when it is among its first 4 KiB
/// (`"id": "..."` as clients write it first).
fn leading_id(field: Option<&[u8]>) -> Option<gpujobs_core::JobId> {
    let head = field?;
    let head = String::from_utf8_lossy(&head[..head.len().min(4096)]);
    let after = &head[head.find("\"id\"")? + 4..];
    let after = after
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    gpujobs_core::JobId::parse(&after[..after.find('"')?])
}

fn readable_id(field: Option<&[u8]>) -> Option<gpujobs_core::JobId> {
    let v: serde_json::Value = serde_json::from_slice(field?).ok()?;
    gpujobs_core::JobId::parse(v.get("id")?.as_str()?)
}

/// The `holders` field complete.lua writes on a released graph job's entry: a JSON
/// array of `[parent id, worker]` pairs. Anything else (a foreign entry) reads as none:
/// it only steers placement.
fn holders(field: Option<&[u8]>) -> Vec<(JobId, String)> {
    let Some(pairs) = field.and_then(|f| serde_json::from_slice::<Vec<(String, String)>>(f).ok())
    else {
        return Vec::new();
    };
    pairs
        .into_iter()
        .filter_map(|(job, worker)| Some((JobId::parse(&job)?, worker)))
        .collect()
}
