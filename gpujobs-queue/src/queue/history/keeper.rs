//! The history keeper: tails `<p>:finished` and `<p>:events` and writes the search
//! indexes and the per-minute series (see the module's doc).

use super::ENDED;
use crate::codec::entries_of;
use crate::connection::backend;
use crate::keys::Keys;
use crate::queue::RedisQueue;
use gpujobs_core::QueueError;
use gpujobs_core::model::envelope::now_ms;
use redis::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// How much history the keeper keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistorySettings {
    /// Ended jobs older than this leave the indexes (default 24 h, the records' TTL).
    pub retention: Duration,
    /// At most this many jobs per index and partition (default 1,000,000); the oldest go.
    pub max_jobs: u64,
    /// Minutes of the throughput series kept (default 7 days).
    pub series_minutes: u64,
    /// Entries read from each stream per pass.
    pub batch: usize,
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings {
            retention: Duration::from_secs(24 * 3600),
            max_jobs: 1_000_000,
            series_minutes: 7 * 24 * 60,
            batch: 200,
        }
    }
}

/// What one keeper pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeeperPass {
    /// Job endings indexed.
    pub indexed: u64,
    /// Partitions whose lease another keeper holds (their work is theirs).
    pub skipped: u32,
    /// Whether a stream still had entries past this pass's batch.
    pub behind: bool,
}

/// One ending read from a stream.
struct Ending {
    id: String,
    state: &'static str,
    worker: Option<String>,
    at_ms: u64,
}

const LEASE_MS: u64 = 15_000;
const MINUTE_MS: u64 = 60_000;

impl RedisQueue {
    /// One pass of the history keeper over every partition: index what ended since the
    /// last pass (at most `settings.batch` entries per stream and partition), and trim
    /// the indexes and the series when `trim` is set (once a minute is plenty).
    /// `owner` names this keeper in the lease (a dashboard's random id).
    pub async fn keep_history(
        &self,
        settings: &HistorySettings,
        owner: &str,
        trim: bool,
    ) -> Result<KeeperPass, QueueError> {
        let mut pass = KeeperPass::default();
        for keys in &self.shared.parts {
            if !self.take_history_lease(keys, owner).await? {
                pass.skipped += 1;
                continue;
            }
            let (n, behind) = self.index_partition(keys, settings).await?;
            pass.indexed += n;
            pass.behind |= behind;
            if trim {
                self.trim_indexes(keys, settings).await?;
            }
        }
        if trim {
            self.trim_series(settings).await?;
        }
        Ok(pass)
    }

    /// Takes or renews this keeper's lease on a partition's history.
    async fn take_history_lease(&self, keys: &Keys, owner: &str) -> Result<bool, QueueError> {
        let key = keys.history_lease();
        let taken: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(owner)
            .arg("NX")
            .arg("PX")
            .arg(LEASE_MS)
            .query_async(&mut self.conn())
            .await
            .map_err(backend("taking the history lease"))?;
        if taken.is_some() {
            return Ok(true);
        }
        let holder: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading the history lease"))?;
        if holder.as_deref() != Some(owner) {
            return Ok(false);
        }
        redis::cmd("PEXPIRE")
            .arg(&key)
            .arg(LEASE_MS)
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(backend("renewing the history lease"))?;
        Ok(true)
    }

    /// Reads both streams past the cursors, looks up each job's kind, lane and worker,
    /// and writes the indexes, the series and the new cursors.
    async fn index_partition(
        &self,
        keys: &Keys,
        settings: &HistorySettings,
    ) -> Result<(u64, bool), QueueError> {
        let (c_fin, c_ev): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(keys.history_cursor())
            .arg("finished")
            .arg("events")
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading the history cursors"))?;
        let (c_fin, c_ev) = (
            c_fin.unwrap_or_else(|| "0-0".into()),
            c_ev.unwrap_or_else(|| "0-0".into()),
        );
        let mut pipe = redis::pipe();
        for (stream, from) in [(keys.finished(), &c_fin), (keys.events(), &c_ev)] {
            pipe.cmd("XRANGE")
                .arg(stream)
                .arg(format!("({from}"))
                .arg("+")
                .arg("COUNT")
                .arg(settings.batch.max(1));
        }
        let v: Vec<Value> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading the finished and events streams"))?;
        let finished = v.first().map(|v| entries_of("", v)).unwrap_or_default();
        let events = v.get(1).map(|v| entries_of("", v)).unwrap_or_default();
        let behind = finished.len() >= settings.batch || events.len() >= settings.batch;
        let new_fin = finished
            .last()
            .map_or_else(|| c_fin.clone(), |e| e.id.clone());
        let new_ev = events.last().map_or_else(|| c_ev.clone(), |e| e.id.clone());
        let mut endings = Vec::new();
        for e in &finished {
            let at_ms = entry_ms(&e.id);
            for (id, worker) in &e.fields {
                endings.push(Ending {
                    id: id.clone(),
                    state: "succeeded",
                    worker: Some(String::from_utf8_lossy(worker).into_owned()),
                    at_ms,
                });
            }
        }
        // Retried dead letters leave the failure indexes.
        let mut requeued = Vec::new();
        for e in &events {
            let state = e.text("state");
            let id = e.text("id");
            match ENDED.iter().find(|s| **s == state) {
                Some(s) => endings.push(Ending {
                    id,
                    state: s,
                    worker: None,
                    at_ms: entry_ms(&e.id),
                }),
                None if state == "queued" => requeued.push(id),
                None => {}
            }
        }
        if endings.is_empty() && requeued.is_empty() {
            if new_fin != c_fin || new_ev != c_ev {
                self.save_cursors(keys, &new_fin, &new_ev).await?;
            }
            return Ok((0, behind));
        }
        // Each job's kind, lane and worker from its record (an expired one keeps what
        // the stream said).
        let mut look = redis::pipe();
        for e in &endings {
            look.cmd("HMGET")
                .arg(format!("{}:job:{}", keys.prefix(), e.id))
                .arg("kind")
                .arg("lane")
                .arg("worker");
        }
        let fields: Vec<(Option<String>, Option<String>, Option<String>)> = look
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading the ended jobs' records"))?;
        let mut by_index: BTreeMap<String, Vec<(u64, &String)>> = BTreeMap::new();
        let mut minutes: BTreeMap<String, i64> = BTreeMap::new();
        let mut w = redis::pipe();
        for (e, (kind, lane, worker)) in endings.iter().zip(fields) {
            let worker = worker.or_else(|| e.worker.clone());
            let mut dims = vec!["all".to_string(), format!("state:{}", e.state)];
            dims.extend(kind.filter(|k| !k.is_empty()).map(|k| format!("kind:{k}")));
            dims.extend(lane.filter(|l| !l.is_empty()).map(|l| format!("lane:{l}")));
            dims.extend(
                worker
                    .filter(|w| !w.is_empty())
                    .map(|w| format!("worker:{w}")),
            );
            for d in dims {
                by_index
                    .entry(keys.index(&d))
                    .or_default()
                    .push((e.at_ms, &e.id));
            }
            let minute = e.at_ms / MINUTE_MS * MINUTE_MS;
            *minutes.entry(format!("{minute}:{}", e.state)).or_default() += 1;
        }
        // One variadic ZADD per index (chunks of 1,000): a pass costs Redis a handful of
        // commands beside its one HMGET per job. No ZREM from the other state indexes:
        // a job leaves a failure index only through a dead-letter retry (`queued` below).
        for (key, members) in &by_index {
            for chunk in members.chunks(1000) {
                let mut cmd = redis::cmd("ZADD");
                cmd.arg(key);
                for (score, id) in chunk {
                    cmd.arg(*score).arg(*id);
                }
                w.add_command(cmd).ignore();
            }
        }
        let names: Vec<&String> = by_index.keys().collect();
        for id in &requeued {
            for s in ["failed", "dead", "cancelled"] {
                w.cmd("ZREM")
                    .arg(keys.index(&format!("state:{s}")))
                    .arg(id)
                    .ignore();
            }
        }
        if !names.is_empty() {
            w.cmd("SADD").arg(keys.index_names()).arg(names).ignore();
        }
        w.cmd("HSET")
            .arg(keys.history_cursor())
            .arg("finished")
            .arg(&new_fin)
            .arg("events")
            .arg(&new_ev)
            .ignore();
        w.query_async::<()>(&mut self.conn())
            .await
            .map_err(backend("writing the history indexes"))?;
        // The series lives in partition 0 (another slot on a cluster: its own pipeline).
        let mut s = redis::pipe();
        for (field, n) in &minutes {
            s.cmd("HINCRBY")
                .arg(self.keys().series())
                .arg(field)
                .arg(*n)
                .ignore();
        }
        s.query_async::<()>(&mut self.conn())
            .await
            .map_err(backend("writing the throughput series"))?;
        Ok((endings.len() as u64, behind))
    }

    async fn save_cursors(&self, keys: &Keys, fin: &str, ev: &str) -> Result<(), QueueError> {
        redis::cmd("HSET")
            .arg(keys.history_cursor())
            .arg("finished")
            .arg(fin)
            .arg("events")
            .arg(ev)
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(backend("saving the history cursors"))
    }

    /// Drops index entries older than the retention and beyond the count, and forgets
    /// emptied indexes.
    async fn trim_indexes(
        &self,
        keys: &Keys,
        settings: &HistorySettings,
    ) -> Result<(), QueueError> {
        let names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(keys.index_names())
            .query_async(&mut self.conn())
            .await
            .map_err(backend("listing the history indexes"))?;
        if names.is_empty() {
            return Ok(());
        }
        let cutoff = now_ms().saturating_sub(settings.retention.as_millis() as u64);
        let keep = i64::try_from(settings.max_jobs).unwrap_or(i64::MAX).max(1);
        let mut pipe = redis::pipe();
        for n in &names {
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(n)
                .arg("-inf")
                .arg(format!("({cutoff}"))
                .ignore();
            pipe.cmd("ZREMRANGEBYRANK")
                .arg(n)
                .arg(0)
                .arg(-keep - 1)
                .ignore();
            pipe.cmd("ZCARD").arg(n);
        }
        let cards: Vec<u64> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(backend("trimming the history indexes"))?;
        let empty: Vec<&String> = names
            .iter()
            .zip(cards)
            .filter(|(_, c)| *c == 0)
            .map(|(n, _)| n)
            .collect();
        if !empty.is_empty() {
            redis::cmd("SREM")
                .arg(keys.index_names())
                .arg(empty)
                .query_async::<()>(&mut self.conn())
                .await
                .map_err(backend("forgetting emptied indexes"))?;
        }
        Ok(())
    }

    /// Drops series minutes older than `settings.series_minutes`.
    async fn trim_series(&self, settings: &HistorySettings) -> Result<(), QueueError> {
        let key = self.keys().series();
        let fields: Vec<String> = redis::cmd("HKEYS")
            .arg(&key)
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading the series"))?;
        let cutoff = now_ms().saturating_sub(settings.series_minutes * MINUTE_MS);
        let old: Vec<&String> = fields
            .iter()
            .filter(|f| {
                f.split(':')
                    .next()
                    .and_then(|m| m.parse::<u64>().ok())
                    .is_none_or(|m| m < cutoff)
            })
            .collect();
        if old.is_empty() {
            return Ok(());
        }
        redis::cmd("HDEL")
            .arg(&key)
            .arg(old)
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(backend("trimming the series"))
    }
}

/// The ms part of a stream entry id (`<ms>-<seq>`).
fn entry_ms(id: &str) -> u64 {
    id.split('-')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}
