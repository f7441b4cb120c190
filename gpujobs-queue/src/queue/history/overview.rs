//! The overview's numbers (lanes per priority, counters, Redis memory, the per-minute
//! series) and one job's graph: reads of a bounded number of keys, whatever the
//! number of jobs.

use super::ENDED;
use crate::codec::{int, text};
use crate::connection::{backend, ensure_groups, is_nogroup};
use crate::keys::WORKERS;
use crate::queue::RedisQueue;
use gpujobs_core::model::envelope::now_ms;
use gpujobs_core::{DeviceClass, JobId, Priority, QueueError};
use redis::Value;

/// One lane and priority.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LaneRow {
    /// The lane.
    pub lane: DeviceClass,
    /// The priority (`None`: the row of jobs waiting out a retry backoff and of jobs
    /// placed on a worker by locality, which have no priority stream).
    pub priority: Option<Priority>,
    /// Placed, not yet taken by a worker.
    pub queued: u64,
    /// Taken by a worker.
    pub running: u64,
    /// Waiting out a retry backoff (only on the row without a priority).
    pub retrying: u64,
}

/// Redis's memory, from `INFO memory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryInfo {
    /// `used_memory`.
    pub used: u64,
    /// `used_memory_peak`: the high-water mark since Redis started.
    pub peak: u64,
    /// `maxmemory` (0: none set).
    pub max: u64,
}

/// One minute of the series: jobs that ended in it, by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeriesPoint {
    /// Start of the minute, ms since the epoch.
    pub minute_ms: u64,
    /// Succeeded in it.
    pub succeeded: u64,
    /// Failed, dead or cancelled in it.
    pub failed: u64,
}

/// The overview page's numbers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Overview {
    /// Per lane and priority.
    pub lanes: Vec<LaneRow>,
    /// Backlog estimate per lane, seconds.
    pub backlog_s: Vec<(DeviceClass, f64)>,
    /// Jobs recorded since the counters began.
    pub submitted: u64,
    /// Jobs succeeded since the counters began.
    pub succeeded: u64,
    /// Graph jobs waiting for their parents now.
    pub waiting: u64,
    /// Entries in the dead-letter streams.
    pub dead_letters: u64,
    /// Redis's memory.
    pub memory: MemoryInfo,
}

impl RedisQueue {
    /// The overview's numbers: two round trips per partition plus one `INFO`.
    pub async fn overview(&self) -> Result<Overview, QueueError> {
        let mut o = Overview::default();
        for lane in DeviceClass::ALL {
            for p in Priority::ALL {
                o.lanes.push(LaneRow {
                    lane,
                    priority: Some(p),
                    queued: 0,
                    running: 0,
                    retrying: 0,
                });
            }
            o.lanes.push(LaneRow {
                lane,
                priority: None,
                queued: 0,
                running: 0,
                retrying: 0,
            });
            o.backlog_s.push((lane, 0.0));
        }
        for keys in &self.shared.parts {
            let mut names = redis::pipe();
            for lane in DeviceClass::ALL {
                names
                    .cmd("ZRANGE")
                    .arg(keys.near_workers(lane))
                    .arg(0)
                    .arg(-1);
            }
            let near: Vec<Vec<String>> = names
                .query_async(&mut self.conn())
                .await
                .map_err(backend("reading the near streams"))?;
            let mut pipe = redis::pipe();
            // Per lane: 3 priority streams, its near streams, delayed, backlog.
            for (lane, workers) in DeviceClass::ALL.iter().zip(&near) {
                for stream in keys.lane_streams(*lane) {
                    pipe.cmd("XLEN").arg(&stream);
                    pipe.cmd("XPENDING").arg(&stream).arg(WORKERS);
                }
                for w in workers {
                    let stream = keys.near(*lane, w);
                    pipe.cmd("XLEN").arg(&stream);
                    pipe.cmd("XPENDING").arg(&stream).arg(WORKERS);
                }
                pipe.cmd("ZCARD").arg(keys.delayed(*lane));
                pipe.cmd("GET").arg(keys.backlog(*lane));
            }
            pipe.cmd("HMGET")
                .arg(keys.counts())
                .arg("submitted")
                .arg("succeeded")
                .arg("waiting");
            pipe.cmd("XLEN").arg(keys.dead());
            let v: Vec<Value> = match pipe.query_async(&mut self.conn()).await {
                Ok(v) => v,
                Err(e) if is_nogroup(&e) => {
                    ensure_groups(&mut self.conn(), &self.shared.parts).await?;
                    continue;
                }
                Err(e) => return Err(QueueError::Backend(format!("reading the overview: {e}"))),
            };
            let num = |i: usize| v.get(i).and_then(int).unwrap_or(0).max(0) as u64;
            let pending = |i: usize| match v.get(i) {
                Some(Value::Array(s)) => s.first().and_then(int).unwrap_or(0).max(0) as u64,
                _ => 0,
            };
            let mut at = 0;
            for (li, workers) in near.iter().enumerate() {
                let base = li * 4;
                for pi in 0..3 {
                    let (len, run) = (num(at), pending(at + 1));
                    o.lanes[base + pi].queued += len.saturating_sub(run);
                    o.lanes[base + pi].running += run;
                    at += 2;
                }
                for _ in workers {
                    let (len, run) = (num(at), pending(at + 1));
                    o.lanes[base + 3].queued += len.saturating_sub(run);
                    o.lanes[base + 3].running += run;
                    at += 2;
                }
                o.lanes[base + 3].retrying += num(at);
                o.backlog_s[li].1 += v
                    .get(at + 1)
                    .and_then(text)
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or(0.0)
                    .max(0.0);
                at += 2;
            }
            if let Some(Value::Array(c)) = v.get(at) {
                let n = |i: usize| {
                    c.get(i)
                        .and_then(text)
                        .and_then(|s| s.parse::<i64>().ok())
                        .unwrap_or(0)
                        .max(0) as u64
                };
                o.submitted += n(0);
                o.succeeded += n(1);
                o.waiting += n(2);
            }
            o.dead_letters += num(at + 1);
        }
        o.memory = self.memory_info().await?;
        Ok(o)
    }

    /// Redis's `INFO memory`; on a Redis Cluster (where `INFO` answers from every
    /// master) the sums over the nodes.
    pub async fn memory_info(&self) -> Result<MemoryInfo, QueueError> {
        let v: Value = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading INFO memory"))?;
        let mut texts = Vec::new();
        collect_texts(&v, &mut texts);
        let mut m = MemoryInfo::default();
        for info in texts.iter().filter(|t| t.contains("used_memory:")) {
            let get = |k: &str| -> u64 {
                info.lines()
                    .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix(':')))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0)
            };
            m.used += get("used_memory");
            m.peak += get("used_memory_peak");
            m.max += get("maxmemory");
        }
        Ok(m)
    }

    /// Jobs ended per minute over the last `minutes` minutes, oldest first (one read).
    pub async fn series(&self, minutes: u64) -> Result<Vec<SeriesPoint>, QueueError> {
        let now = now_ms() / 60_000 * 60_000;
        let minutes = minutes.clamp(1, 7 * 24 * 60);
        let starts: Vec<u64> = (0..minutes).rev().map(|i| now - i * 60_000).collect();
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.keys().series());
        for m in &starts {
            for s in ENDED {
                cmd.arg(format!("{m}:{s}"));
            }
        }
        let v: Vec<Option<u64>> = cmd
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading the series"))?;
        Ok(starts
            .iter()
            .zip(v.chunks(ENDED.len()))
            .map(|(&minute_ms, c)| SeriesPoint {
                minute_ms,
                succeeded: c.first().copied().flatten().unwrap_or(0),
                failed: c.iter().skip(1).map(|x| x.unwrap_or(0)).sum(),
            })
            .collect())
    }

    /// The ids of the graph job `id` belongs to (itself alone if none), at most 500.
    pub async fn graph_of(&self, id: &JobId) -> Result<Vec<String>, QueueError> {
        let keys = self.shared.keys_of(id);
        let graph: Option<String> = redis::cmd("HGET")
            .arg(keys.job(id))
            .arg("graph")
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading a job's graph"))?;
        let Some(graph) = graph.filter(|g| !g.is_empty()) else {
            return Ok(vec![id.to_string()]);
        };
        let mut members: Vec<String> = redis::cmd("SRANDMEMBER")
            .arg(keys.graph(&graph))
            .arg(500)
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading a graph's jobs"))?;
        if members.is_empty() {
            members.push(id.to_string());
        }
        members.sort();
        Ok(members)
    }
}

impl RedisQueue {
    /// Every worker heartbeat on record, stale ones included (a monitor shows those
    /// that stopped; [`gpujobs_core::queue::AdminQueue::workers`] hides them), sorted
    /// by id, with the heartbeat TTL after which one counts as gone.
    pub async fn workers_seen(
        &self,
    ) -> Result<(Vec<gpujobs_core::queue::WorkerInfo>, std::time::Duration), QueueError> {
        let all: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys().workers())
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading workers"))?;
        let mut out: Vec<gpujobs_core::queue::WorkerInfo> = all
            .values()
            .filter_map(|j| serde_json::from_str(j).ok())
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok((out, self.shared.cfg.worker_ttl))
    }
}

/// Every text in a reply (a cluster's per-node map included).
fn collect_texts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(items) | Value::Set(items) => items.iter().for_each(|i| collect_texts(i, out)),
        Value::Map(pairs) => pairs.iter().for_each(|(_, i)| collect_texts(i, out)),
        other => out.extend(text(other)),
    }
}
