//! What `gpujobs doctor` asks of Redis, through the queue's own connection (so it works
//! the same on a single Redis and on a Redis Cluster, with the queue's credentials).

use super::RedisQueue;
use crate::codec::{NOT_AN_ENVELOPE, entries_of, ref_of};
use crate::connection::Conn;
use crate::keys::{SCHEDULERS, WORKERS};
use gpujobs_core::DeviceClass;
use redis::Value;

/// The `hash-max-listpack-value` at which a typical job record (its envelope, placement
/// and result are each a few hundred bytes) stays a listpack: about 40% less Redis
/// memory per queued job and a third less per finished one than the default 64, where
/// every record is a hash table (docs/benchmarks.md, Redis memory per job).
pub const RECORD_LISTPACK_VALUE: u64 = 1024;

/// The server facts and queue structures an operator should know about. `None`: the
/// server would not say (a managed Redis may forbid `INFO` or `CONFIG GET`).
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    /// `redis_version` from `INFO server`.
    pub version: Option<String>,
    /// `CONFIG GET appendonly`.
    pub appendonly: Option<String>,
    /// `CONFIG GET save` (RDB snapshot points; empty: none).
    pub save: Option<String>,
    /// `CONFIG GET maxmemory-policy`.
    pub maxmemory_policy: Option<String>,
    /// `CONFIG GET hash-max-listpack-value`: the longest value a hash may hold and stay
    /// in Redis's compact encoding (see [`RECORD_LISTPACK_VALUE`]).
    pub hash_listpack_value: Option<u64>,
    /// `used_memory` from `INFO memory`, bytes.
    pub used_memory: Option<u64>,
    /// `maxmemory` from `INFO memory`, bytes (0: no limit).
    pub maxmemory: Option<u64>,
    /// The share of `maxmemory` above which submits are refused (the queue's setting).
    pub high_water: f64,
    /// Streams whose consumer group is missing (the user may lack `XGROUP`).
    pub missing_groups: Vec<String>,
    /// Partitions of the namespace.
    pub partitions: usize,
    /// Whether this is a Redis Cluster (the facts above then come from one node).
    pub cluster: bool,
    /// Entries waiting on a submit stream nothing reads: the brace-less key of the
    /// layout before partitions (`<namespace>:submit`), where a client written from an
    /// old example may still `XADD`. `(key, entries)`, only when it holds some.
    pub stray_submits: Vec<(String, u64)>,
    /// Schedulers reading the submit stream now that are older than id-only submit
    /// entries, with their idle ms: clients write whole entries while one runs.
    pub older_schedulers: Vec<(String, i64)>,
    /// Among the newest 1,000 dead letters of each partition, id-only submit entries
    /// refused as "not a valid job envelope": what a scheduler older than them does
    /// with one it takes (the job is `dead` with that error; `dead-letter retry` runs
    /// it, with the envelope its record kept).
    pub refs_refused: Vec<String>,
}

impl RedisQueue {
    async fn config_get(&self, name: &str) -> Option<String> {
        let v: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query_async(&mut self.conn())
            .await
            .ok()?;
        v.get(1).cloned()
    }

    /// Submit streams nothing reads that hold entries (see [`Diagnosis::stray_submits`]):
    /// jobs a client sent to the wrong key, which never run.
    pub async fn stray_submits(&self) -> Vec<(String, u64)> {
        let key = format!("{}:submit", self.shared.cfg.namespace);
        let len: Result<u64, _> = redis::cmd("XLEN")
            .arg(&key)
            .query_async(&mut self.conn())
            .await;
        match len {
            Ok(n) if n > 0 => vec![(key, n)],
            _ => Vec::new(),
        }
    }

    /// See [`Diagnosis::refs_refused`]: the ids.
    async fn refs_refused(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for keys in &self.shared.parts {
            let v: Result<Value, _> = redis::cmd("XREVRANGE")
                .arg(keys.dead())
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut self.conn())
                .await;
            if let Ok(v) = v {
                ids.extend(
                    entries_of(&keys.dead(), &v)
                        .iter()
                        .filter(|e| e.text("reason").starts_with(NOT_AN_ENVELOPE))
                        .filter_map(|e| ref_of(e.field("raw")?)),
                );
            }
        }
        ids
    }

    /// Checks the server's version, persistence and eviction settings and that every
    /// stream of every partition has its consumer group.
    pub async fn diagnose(&self) -> Diagnosis {
        let info: Option<String> = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut self.conn())
            .await
            .ok();
        let version = info.as_deref().and_then(|i| {
            i.lines()
                .find_map(|l| l.strip_prefix("redis_version:"))
                .map(|v| v.trim().to_string())
        });
        let memory: Option<String> = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut self.conn())
            .await
            .ok();
        let memory_field = |name: &str| {
            memory.as_deref().and_then(|i| {
                i.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
        };
        let mut missing_groups = Vec::new();
        for keys in &self.shared.parts {
            let mut streams = vec![(keys.submit(), SCHEDULERS)];
            for lane in DeviceClass::ALL {
                streams.extend(keys.lane_streams(lane).map(|s| (s, WORKERS)));
            }
            for (stream, group) in streams {
                let groups: Result<Value, _> = redis::cmd("XINFO")
                    .arg("GROUPS")
                    .arg(&stream)
                    .query_async(&mut self.conn())
                    .await;
                let present = match groups {
                    Ok(v) => format!("{v:?}").contains(group),
                    Err(_) => false,
                };
                if !present {
                    missing_groups.push(stream);
                }
            }
        }
        Diagnosis {
            version,
            appendonly: self.config_get("appendonly").await,
            save: self.config_get("save").await,
            maxmemory_policy: self.config_get("maxmemory-policy").await,
            hash_listpack_value: self
                .config_get("hash-max-listpack-value")
                .await
                .and_then(|v| v.parse().ok()),
            used_memory: memory_field("used_memory:"),
            maxmemory: memory_field("maxmemory:"),
            high_water: self.shared.cfg.high_water,
            missing_groups,
            partitions: self.shared.parts.len(),
            cluster: matches!(self.shared.conn, Conn::Cluster(_)),
            stray_submits: self.stray_submits().await,
            older_schedulers: self.older_schedulers().await,
            refs_refused: self.refs_refused().await,
        }
    }
}
