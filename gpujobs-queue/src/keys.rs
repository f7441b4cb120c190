//! Key names (see `docs/wire-format.md`).
//!
//! A namespace is laid out in one or more *partitions*. Every key of a partition starts
//! with the partition's prefix, a Redis Cluster hash tag: `{<ns>}` for partition 0 and
//! `{<ns>:<p>}` for partition `p ≥ 1`. All keys a script touches therefore live in one
//! slot, which is what lets the queue run on a Redis Cluster, and a namespace with one
//! partition keeps exactly the keys of partition 0 when it grows more.
//!
//! A job lives in the partition its id hashes to ([`partition_of`]); the workers hash
//! and the partition count live in partition 0.

use gpujobs_core::{DeviceClass, JobId, Priority};

/// Consumer group of the schedulers on the submit stream.
pub const SCHEDULERS: &str = "schedulers";
/// Consumer group of the workers on the lane streams.
pub const WORKERS: &str = "workers";

/// The most partitions a namespace may have.
pub const MAX_PARTITIONS: u32 = 1024;

/// The partition a job id belongs to among `partitions`: 32-bit FNV-1a of the id's
/// bytes, modulo the count (documented in `docs/wire-format.md` for other clients).
/// An id with a graph tag (`{g1}blur`) hashes only the tag (`g1`), so every job of a
/// graph lives in one partition.
pub fn partition_of(id: &str, partitions: u32) -> u32 {
    let hashed = gpujobs_core::model::graph::graph_tag(id).unwrap_or(id);
    let mut h: u32 = 0x811c_9dc5;
    for b in hashed.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % partitions.max(1)
}

/// Builds the keys of one partition of a namespace.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
    partition: u32,
}

impl Keys {
    /// Keys of partition `partition` of `namespace`.
    pub fn new(namespace: &str, partition: u32) -> Self {
        let prefix = if partition == 0 {
            format!("{{{namespace}}}")
        } else {
            format!("{{{namespace}:{partition}}}")
        };
        Keys { prefix, partition }
    }

    /// The prefix every key of this partition starts with (a hash tag).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Which partition these are the keys of.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// Pub/Sub channel (of partition 0's prefix) on which the scripts announce work
    /// when a namespace has several partitions: `cpu` or `gpu` when jobs were placed on
    /// that lane, `submit` when jobs were submitted. Idle workers and schedulers wait on
    /// it instead of polling every partition (see `queue/wakeup.rs`).
    pub fn wake(&self) -> String {
        format!("{}:wake", self.prefix)
    }

    /// Hash (partition 0 only) of the schedulers that read id-only submit entries:
    /// field = scheduler (consumer) id, value = when it last said so, ms since the
    /// epoch (see `queue/entry_form.rs`).
    pub fn readers(&self) -> String {
        format!("{}:readers", self.prefix)
    }

    /// Stream of new jobs: one field `job` with the JSON envelope, or for a job whose
    /// record holds the envelope `{"id": "<id>", "ref": true}`.
    pub fn submit(&self) -> String {
        format!("{}:submit", self.prefix)
    }

    /// Stream of one lane and priority, entries `id = <job id>`.
    pub fn lane(&self, lane: DeviceClass, p: Priority) -> String {
        format!("{}:lane:{}:{}", self.prefix, lane, p)
    }

    /// The three streams of a lane, high priority first.
    pub fn lane_streams(&self, lane: DeviceClass) -> [String; 3] {
        Priority::ALL.map(|p| self.lane(lane, p))
    }

    /// Stream of jobs placed by locality on one worker (`consumer`), read by it before
    /// the lane; see `lua/place.lua` and `lua/reclaim.lua`.
    pub fn near(&self, lane: DeviceClass, consumer: &str) -> String {
        format!("{}:near:{}:{}", self.prefix, lane, consumer)
    }

    /// Sorted set of the workers of a lane with a near stream (score: when each last
    /// placed or fetched there, ms), scanned by reclaim.
    pub fn near_workers(&self, lane: DeviceClass) -> String {
        format!("{}:near:{}", self.prefix, lane)
    }

    /// Sorted set of jobs of a lane waiting out a retry backoff (score: due, ms).
    pub fn delayed(&self, lane: DeviceClass) -> String {
        format!("{}:delayed:{}", self.prefix, lane)
    }

    /// Sum of the placement estimates of a lane's queued jobs, in seconds.
    pub fn backlog(&self, lane: DeviceClass) -> String {
        format!("{}:backlog:{}", self.prefix, lane)
    }

    /// Hash with a job's record.
    pub fn job(&self, id: &JobId) -> String {
        format!("{}:job:{}", self.prefix, id)
    }

    /// Binary blob of a job (`name` is `t0`, ... for inputs, `out:t0`, ... for outputs).
    pub fn blob(&self, id: &JobId, name: &str) -> String {
        format!("{}:blob:{}:{}", self.prefix, id, name)
    }

    /// Dead-letter stream.
    pub fn dead(&self) -> String {
        format!("{}:dead", self.prefix)
    }

    /// Capped stream of state changes other than success, for monitors.
    pub fn events(&self) -> String {
        format!("{}:events", self.prefix)
    }

    /// Hash of counters (`succeeded`: jobs completed, for throughput).
    pub fn counts(&self) -> String {
        format!("{}:counts", self.prefix)
    }

    /// Capped stream of recorded successes, one entry per `complete` call: field = job
    /// id, value = the worker. Indexed by a dashboard's history keeper.
    pub fn finished(&self) -> String {
        format!("{}:finished", self.prefix)
    }

    /// Set of the ids of one graph (`graph` is the first job's `{tag}`, or its id).
    pub fn graph(&self, graph: &str) -> String {
        format!("{}:graph:{}", self.prefix, graph)
    }

    /// Sorted set of ended jobs (score: when each ended, ms) for one search dimension:
    /// `all`, `state:<state>`, `kind:<kind>`, `lane:<lane>`, `worker:<worker>`.
    /// Written by the history keeper (`queue::history`), not on the hot path.
    pub fn index(&self, dimension: &str) -> String {
        format!("{}:ix:{}", self.prefix, dimension)
    }

    /// Set of the index keys that exist (so trimming touches only those).
    pub fn index_names(&self) -> String {
        format!("{}:ix", self.prefix)
    }

    /// Hash of the history keeper's stream cursors (`finished`, `events`).
    pub fn history_cursor(&self) -> String {
        format!("{}:history:cursor", self.prefix)
    }

    /// The history keeper's lease: one keeper per partition at a time.
    pub fn history_lease(&self) -> String {
        format!("{}:history:lease", self.prefix)
    }

    /// Hash of per-minute ending counts, `<minute ms>:<state>` → jobs. Partition 0's only.
    pub fn series(&self) -> String {
        format!("{}:series", self.prefix)
    }

    /// Hash of worker heartbeats (field: worker id, value: JSON). Partition 0's only.
    pub fn workers(&self) -> String {
        format!("{}:workers", self.prefix)
    }

    /// Hash of the namespace's layout (`partitions`). Partition 0's only.
    pub fn meta(&self) -> String {
        format!("{}:meta", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The KEDA triggers in deploy/k8s watch exactly the lane streams the queue writes,
    /// in the default namespace: renaming a key without the manifests fails here.
    #[test]
    fn keda_triggers_watch_the_lane_streams() {
        let manifests = [
            include_str!("../../deploy/k8s/autoscaling-cpu.yaml"),
            include_str!("../../deploy/k8s/autoscaling-gpu.yaml"),
        ];
        let watched: Vec<&str> = manifests
            .iter()
            .flat_map(|m| m.lines())
            .filter_map(|l| l.trim().strip_prefix("stream: "))
            .map(|s| s.trim_matches('"'))
            .collect();
        let keys = Keys::new("gpujobs", 0);
        let mut want = Vec::new();
        for lane in DeviceClass::ALL {
            want.extend(keys.lane_streams(lane));
        }
        let mut got: Vec<String> = watched.iter().map(|s| s.to_string()).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn partitions_have_their_own_hash_tag() {
        assert_eq!(Keys::new("gpujobs", 0).submit(), "{gpujobs}:submit");
        assert_eq!(Keys::new("gpujobs", 2).submit(), "{gpujobs:2}:submit");
    }

    /// Pinned values: other clients (docs/wire-format.md's Python snippet) compute the
    /// same partitions.
    #[test]
    fn partition_of_is_fnv1a_mod_n() {
        assert_eq!(partition_of("anything", 1), 0);
        assert_eq!(partition_of("", 7), 0x811c_9dc5 % 7);
        // FNV-1a 32 of "a" is 0xe40c292c.
        assert_eq!(partition_of("a", 1000), 0xe40c_292c % 1000);
        let spread: std::collections::HashSet<u32> = (0..1000)
            .map(|i| partition_of(&format!("job-{i}"), 3))
            .collect();
        assert_eq!(spread.len(), 3);
        // A graph's jobs share their tag's partition.
        assert_eq!(partition_of("{a}x", 1000), 0xe40c_292c % 1000);
        assert_eq!(partition_of("{a}y", 1000), 0xe40c_292c % 1000);
    }
}
