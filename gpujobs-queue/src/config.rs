//! Settings of the Redis queue.

use crate::ObjectsConfig;
use gpujobs_core::RetryPolicy;
use std::time::Duration;

/// How the Redis queue connects and keeps its data.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`, `rediss://...` (feature `tls`), or
    /// `redis+cluster://[user:password@]host:port[,host:port...]` for a Redis Cluster.
    pub url: String,
    /// Name of the queue; keys are `{<namespace>}:submit`, ... (see [`crate::keys`]).
    /// Without braces: the queue adds the hash tags itself.
    pub namespace: String,
    /// Partitions the namespace is spread over (each is one Redis Cluster slot). `None`:
    /// the count already stored for the namespace, or 1 for a new one. A count that
    /// differs from the stored one is refused at connect.
    pub partitions: Option<u32>,
    /// Records of finished jobs (and their result blobs) expire this long after.
    pub finished_ttl: Duration,
    /// Succeeded jobs kept, newest first: past this many, the oldest succeeded job's
    /// record and output blobs are deleted as new ones succeed, before `finished_ttl`
    /// would expire them (BullMQ's `removeOnComplete: <count>`). Spread evenly over the
    /// partitions (each keeps its share, rounded up). `0`: no count, only the age.
    /// Failed, dead and cancelled jobs are not counted (dead letters stay for retry).
    pub keep_succeeded: u64,
    /// Input blobs expire this long after submit.
    pub blob_ttl: Duration,
    /// Largest blob accepted (Redis strings stop at 512 MiB; offloaded blobs and `url`
    /// tensors are held to it too, as each is read into one buffer).
    pub max_blob_bytes: u64,
    /// Large data by reference: blobs above a size in object storage, and where `url`
    /// tensors may be read from (feature `objects`; see `docs/object-storage.md`).
    pub objects: ObjectsConfig,
    /// Largest submit entry (the envelope's JSON) accepted: the client refuses bigger
    /// ones, and a scheduler dead-letters them unparsed. Large tensors belong in blobs.
    pub max_entry_bytes: u64,
    /// Most bytes of new submit entries a scheduler takes in one batch (`lua/take.lua`
    /// reads them in Redis in steps that cannot pass it while entries stay within
    /// `max_entry_bytes`), so a burst of big entries does not balloon its memory.
    /// Entries taken back from a dead scheduler are sized from the last batch's largest.
    pub take_batch_bytes: u64,
    /// Share of Redis's `maxmemory` above which submits are refused with
    /// [`QueueError::Full`](gpujobs_core::QueueError::Full): the rest is the reserve the
    /// results of jobs already accepted are written into, so a full Redis never strands
    /// them. `0` turns the check off (and so does a Redis without `maxmemory`).
    pub high_water: f64,
    /// Backoff between attempts of a job.
    pub retry: RetryPolicy,
    /// Dead letters kept (oldest trimmed first, approximately).
    pub dead_letter_max: u64,
    /// Events kept in the events stream (approximately).
    pub events_max: u64,
    /// A worker without a heartbeat for this long is not counted as live.
    pub worker_ttl: Duration,
    /// Submit entries a scheduler took but did not hand off for this long are taken
    /// again by another scheduler.
    pub scheduler_lease: Duration,
    /// How long `connect_retrying` keeps retrying when Redis refuses the credentials
    /// (a password being rotated), before giving up with a clear error, so that a
    /// daemon with a wrong password exits instead of retrying forever.
    pub auth_grace: Duration,
    /// Warn at connect when Redis may evict or lose jobs (daemons want this; one-shot
    /// clients need not repeat it).
    pub warn_durability: bool,
    /// With several partitions, the longest an idle worker or scheduler waits before
    /// reading every partition again when no wake-up came (`<{ns}>:wake`, see
    /// `docs/wire-format.md`): the bound on how late it sees work whose wake-up was
    /// missed (a client that adds a submit entry without publishing one, a subscriber
    /// reconnecting). It waits 1 ms right after finding work that no wake-up announced,
    /// doubling up to this. Unused with one partition, where a blocking read waits on
    /// every stream at once.
    pub partition_poll: Duration,
}

impl RedisConfig {
    /// Defaults for `url`, namespace `gpujobs`.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            namespace: "gpujobs".into(),
            partitions: None,
            finished_ttl: Duration::from_secs(24 * 3600),
            keep_succeeded: 0,
            blob_ttl: Duration::from_secs(24 * 3600),
            max_blob_bytes: 512 << 20,
            objects: ObjectsConfig::default(),
            high_water: 0.8,
            max_entry_bytes: 16 << 20,
            take_batch_bytes: 64 << 20,
            retry: RetryPolicy::default(),
            dead_letter_max: 100_000,
            events_max: 100_000,
            worker_ttl: Duration::from_secs(15),
            scheduler_lease: Duration::from_secs(30),
            auth_grace: Duration::from_secs(30),
            warn_durability: true,
            partition_poll: Duration::from_millis(20),
        }
    }

    /// The URL with any password replaced by `***`, for messages and logs.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }
}

/// `scheme://user:secret@host` → `scheme://user:***@host`.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..s], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("redis://u:p4ss@h:6379/0"),
            "redis://u:***@h:6379/0"
        );
        assert_eq!(super::redact("redis://:p4ss@h"), "redis://:***@h");
        assert_eq!(super::redact("redis://h:6379"), "redis://h:6379");
    }
}
