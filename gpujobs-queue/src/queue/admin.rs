//! Dead letters, worker heartbeats and the statistics monitors read, over every
//! partition.

use super::RedisQueue;
use crate::codec::{entries_of, int, text};
use crate::connection::{backend, ensure_groups, is_nogroup};
use crate::keys::WORKERS;
use crate::scripts::{RetryDead, ms};
use async_trait::async_trait;
use gpujobs_core::model::envelope::now_ms;
use gpujobs_core::queue::AdminQueue;
use gpujobs_core::queue::{DeadLetter, LaneStats, WorkerInfo};
use gpujobs_core::{DeviceClass, JobEnvelope, JobId, QueueError};
use redis::Value;
use std::collections::HashMap;
use std::time::Duration;

#[async_trait]
impl AdminQueue for RedisQueue {
    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let mut all = Vec::new();
        for keys in &self.shared.parts {
            let v: Value = redis::cmd("XREVRANGE")
                .arg(keys.dead())
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(max.max(1))
                .query_async(&mut self.conn())
                .await
                .map_err(backend("reading dead letters"))?;
            all.extend(entries_of("", &v).into_iter().map(|e| {
                let f = |k: &str| e.text(k);
                let opt = |s: String| (!s.is_empty()).then_some(s);
                DeadLetter {
                    id: f("id"),
                    kind: opt(f("kind")),
                    reason: f("reason"),
                    attempts: f("attempts").parse().unwrap_or(0),
                    at_ms: f("at_ms").parse().unwrap_or(0),
                    raw: opt(f("raw")),
                }
            }));
        }
        all.sort_by_key(|d| std::cmp::Reverse(d.at_ms));
        all.truncate(max);
        Ok(all)
    }

    async fn retry_dead(&self, id: &JobId) -> Result<bool, QueueError> {
        let keys = self.shared.keys_of(id);
        let env = self.stored_envelope(id).await?;
        if let Some(env) = env.and_then(|e| serde_json::from_str::<JobEnvelope>(&e).ok()) {
            // Give the inputs a fresh lease on life: the retry may come long after
            // submit. Inputs are deleted when a job ends, so a job that had any cannot
            // run again from its record.
            let refs = env.blob_names();
            if !refs.is_empty() {
                let mut pipe = redis::pipe();
                for r in &refs {
                    pipe.cmd("PEXPIRE")
                        .arg(keys.blob(id, r))
                        .arg(ms(self.shared.cfg.blob_ttl));
                }
                let alive: Vec<i64> = pipe
                    .query_async(&mut self.conn())
                    .await
                    .map_err(backend("extending blob lifetimes"))?;
                if let Some((r, _)) = refs.iter().zip(&alive).find(|(_, a)| **a == 0) {
                    return Err(QueueError::Refused(format!(
                        "job {id} cannot be retried: its input blob `{r}` was freed when it \
                         ended (inputs are deleted then); submit it again"
                    )));
                }
            }
        }
        self.shared
            .call(&RetryDead {
                keys,
                id,
                now_ms: now_ms(),
            })
            .await
    }

    async fn heartbeat(&self, info: &WorkerInfo) -> Result<(), QueueError> {
        let mut info = info.clone();
        info.last_seen_ms = now_ms();
        redis::cmd("HSET")
            .arg(self.keys().workers())
            .arg(&info.id)
            .arg(serde_json::to_string(&info)?)
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(backend("heartbeat"))
    }

    /// Forgets a leaving worker and hands the jobs placed on it by locality that it has
    /// not read to their lanes, so they need not wait out their locality wait.
    async fn deregister(&self, worker_id: &str) -> Result<(), QueueError> {
        self.release_near(Some(worker_id)).await?;
        redis::cmd("HDEL")
            .arg(self.keys().workers())
            .arg(worker_id)
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(backend("deregistering"))
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>, QueueError> {
        let all: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys().workers())
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading workers"))?;
        let now = now_ms();
        let live_after = now.saturating_sub(ms(self.shared.cfg.worker_ttl));
        let mut live = Vec::new();
        let mut gone = Vec::new();
        for (id, json) in all {
            match serde_json::from_str::<WorkerInfo>(&json) {
                Ok(w) if w.last_seen_ms >= live_after => live.push(w),
                Ok(w) if w.last_seen_ms + 3_600_000 < now => gone.push(id),
                Ok(_) => {}
                Err(_) => gone.push(id),
            }
        }
        if !gone.is_empty() {
            let _: Result<(), _> = redis::cmd("HDEL")
                .arg(self.keys().workers())
                .arg(&gone)
                .query_async(&mut self.conn())
                .await;
        }
        live.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(live)
    }

    async fn lane_stats(&self) -> Result<Vec<LaneStats>, QueueError> {
        let mut out: Vec<LaneStats> = DeviceClass::ALL
            .iter()
            .map(|&lane| LaneStats {
                lane,
                ready: 0,
                delayed: 0,
                in_flight: 0,
                backlog_s: 0.0,
            })
            .collect();
        for keys in &self.shared.parts {
            // Jobs placed by locality wait (or run) on their workers' near streams: list
            // those of both lanes first, then read every stream of the partition in one
            // pipeline (two round trips per partition, as many as without them).
            let mut names = redis::pipe();
            for stats in &out {
                names
                    .cmd("ZRANGE")
                    .arg(keys.near_workers(stats.lane))
                    .arg(0)
                    .arg(-1);
            }
            let near: Vec<Vec<String>> = names
                .query_async(&mut self.conn())
                .await
                .map_err(backend("reading lane stats"))?;
            let streams: Vec<Vec<String>> = out
                .iter()
                .zip(&near)
                .map(|(stats, workers)| {
                    let mut s: Vec<String> = keys.lane_streams(stats.lane).into();
                    s.extend(workers.iter().map(|w| keys.near(stats.lane, w)));
                    s
                })
                .collect();
            let mut pipe = redis::pipe();
            for (stats, streams) in out.iter().zip(&streams) {
                for stream in streams {
                    pipe.cmd("XLEN").arg(stream);
                    pipe.cmd("XPENDING").arg(stream).arg(WORKERS);
                }
                pipe.cmd("ZCARD").arg(keys.delayed(stats.lane));
                pipe.cmd("GET").arg(keys.backlog(stats.lane));
            }
            let v: Vec<Value> = match pipe.query_async(&mut self.conn()).await {
                Ok(v) => v,
                Err(e) if is_nogroup(&e) => {
                    ensure_groups(&mut self.conn(), &self.shared.parts).await?;
                    continue;
                }
                Err(e) => return Err(QueueError::Backend(format!("reading lane stats: {e}"))),
            };
            let mut at = 0;
            for (stats, streams) in out.iter_mut().zip(&streams) {
                let (mut len, mut pending) = (0u64, 0u64);
                for _ in streams {
                    len += v.get(at).and_then(int).unwrap_or(0).max(0) as u64;
                    if let Some(Value::Array(summary)) = v.get(at + 1) {
                        pending += summary.first().and_then(int).unwrap_or(0).max(0) as u64;
                    }
                    at += 2;
                }
                stats.ready += len.saturating_sub(pending);
                stats.in_flight += pending;
                stats.delayed += v.get(at).and_then(int).unwrap_or(0).max(0) as u64;
                stats.backlog_s += v
                    .get(at + 1)
                    .and_then(text)
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or(0.0)
                    .max(0.0);
                at += 2;
            }
        }
        Ok(out)
    }
}

impl RedisQueue {
    /// State changes other than success recorded in the last `window`, over every
    /// partition: (job id, state) pairs, oldest first within a partition.
    pub async fn recent_events(
        &self,
        window: Duration,
    ) -> Result<Vec<(String, String)>, QueueError> {
        let since = now_ms().saturating_sub(window.as_millis() as u64);
        let mut out = Vec::new();
        for keys in &self.shared.parts {
            let v: Value = redis::cmd("XRANGE")
                .arg(keys.events())
                .arg(format!("{since}-0"))
                .arg("+")
                .arg("COUNT")
                .arg(200_000)
                .query_async(&mut self.conn())
                .await
                .map_err(backend("reading events"))?;
            out.extend(
                entries_of("", &v)
                    .into_iter()
                    .map(|e| (e.text("id"), e.text("state"))),
            );
        }
        Ok(out)
    }

    /// The namespace's job counters, summed over partitions. Submits and successes
    /// write no event; sample these for throughput.
    pub async fn counts(&self) -> Result<Counts, QueueError> {
        let mut total = Counts::default();
        for keys in &self.shared.parts {
            let (submitted, succeeded, waiting): (Option<u64>, Option<u64>, Option<i64>) =
                redis::cmd("HMGET")
                    .arg(keys.counts())
                    .arg("submitted")
                    .arg("succeeded")
                    .arg("waiting")
                    .query_async(&mut self.conn())
                    .await
                    .map_err(backend("reading counters"))?;
            total.submitted += submitted.unwrap_or(0);
            total.succeeded += succeeded.unwrap_or(0);
            total.waiting += u64::try_from(waiting.unwrap_or(0)).unwrap_or(0);
        }
        Ok(total)
    }

    /// Number of entries in the dead-letter streams.
    pub async fn dead_letter_count(&self) -> Result<u64, QueueError> {
        let mut total = 0;
        for keys in &self.shared.parts {
            let n: u64 = redis::cmd("XLEN")
                .arg(keys.dead())
                .query_async(&mut self.conn())
                .await
                .map_err(backend("counting dead letters"))?;
            total += n;
        }
        Ok(total)
    }
}

/// Jobs submitted and succeeded in a namespace since its counters began, and graph
/// jobs waiting for their parents now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// New jobs recorded (a repeated id counts once).
    pub submitted: u64,
    /// Jobs completed successfully.
    pub succeeded: u64,
    /// Jobs of graphs in state `waiting` (their parents have not all succeeded).
    pub waiting: u64,
}
