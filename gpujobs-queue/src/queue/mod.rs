//! `RedisQueue`: the [`Queue`] trait on Redis Streams, split by role: [`submit`] (what
//! clients call), [`schedule`] (the scheduler's hand-offs), [`lease`] (what workers
//! call), [`admin`] (dead letters, heartbeats, statistics). Each hand-off is one Lua
//! script (see [`crate::scripts`]); this module holds the connection, the partitions and
//! the little state a handle keeps between calls.

mod admin;
pub use admin::Counts;
mod batcher;
mod blobs;
mod diagnose;
mod ended;
mod entry_form;
pub use ended::EndedCursor;
mod graph;
pub mod history;
pub use diagnose::{Diagnosis, RECORD_LISTPACK_VALUE};
mod lease;
mod outputs;
mod schedule;
mod signalled;
mod submit;
mod wakeup;

use crate::codec::{Entry, stream_reply};
use crate::config::RedisConfig;
use crate::connection::Conn;
use crate::connection::{
    AUTH_FAILED, MAX_BLOCK, create_group, ensure_groups, is_nogroup, open, refused,
    resolve_partitions, warn_about_durability,
};
use crate::keys::{Keys, partition_of};
use crate::objects::Objects;
use crate::scripts::{Call, Scripts};
use batcher::{Batcher, Completions, Submits};
use entry_form::EntryForm;
use gpujobs_core::{Backoff, BufferPool, DeviceClass, JobId, QueueError};
use redis::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// With several partitions an idle reader waits for a wake-up (see [`signalled`]), or
/// while the wake-up channel is down blocks on one partition, for a slice before reading
/// all of them again (one partition: no limit): 1 ms right after it found work (by
/// wake-ups: work that no wake-up announced), doubling while nothing comes, up to
/// `RedisConfig::partition_poll` (so a missed wake-up delays work by at most that, and
/// an idle reader reads every partition 50 times a second by default). Reading by
/// wake-ups starts at that ceiling; blocking, at 1 ms.
const FIRST_SLICE_US: u64 = 1_000;

/// Who sweeps the partitions (each role rotates on its own).
#[derive(Clone, Copy)]
enum Role {
    Fetch = 0,
    Take = 1,
    Reclaim = 2,
}

/// What the handle's tasks share: the connection, the partitions and the scripts.
pub(crate) struct Shared {
    pub(crate) cfg: RedisConfig,
    pub(crate) parts: Vec<Keys>,
    pub(crate) conn: Conn,
    pub(crate) scripts: Scripts,
    /// Set after a failed command: a reply may have been lost with entries already
    /// delivered to our consumers, so they re-read their own pending entries next.
    pub(crate) reread_own: AtomicBool,
    /// The wake-up channel the scripts publish on, `""` with one partition (where a
    /// blocking read covers every stream and nobody listens).
    pub(crate) wake: String,
    /// Whether submits may write id-only entries (see [`entry_form`]).
    pub(crate) entry_form: EntryForm,
}

impl Shared {
    pub(crate) fn conn(&self) -> Conn {
        self.conn.clone()
    }

    /// Runs one script call; re-creates the consumer groups once if Redis lost them.
    pub(crate) async fn call<C: Call>(&self, call: &C) -> Result<C::Reply, QueueError> {
        let mut conn = self.conn();
        let script = self.scripts.get::<C>();
        for attempt in 0..2 {
            let mut inv = script.prepare_invoke();
            inv.arg(call.partition().prefix());
            call.fill(&mut inv);
            match inv.invoke_async::<Value>(&mut conn).await {
                Ok(v) => return call.reply(v),
                Err(e) if attempt == 0 && is_nogroup(&e) => {
                    ensure_groups(&mut conn, &self.parts).await?
                }
                Err(e) => {
                    self.reread_own.store(true, Ordering::Release);
                    return Err(crate::connection::classify(C::DOING, &e));
                }
            }
        }
        Err(QueueError::Backend(format!(
            "{}: consumer groups keep disappearing",
            C::DOING
        )))
    }

    /// Sorts `items` into one bucket per partition (by the partition each names).
    pub(crate) fn by_partition<T>(&self, items: impl IntoIterator<Item = (u32, T)>) -> Vec<Vec<T>> {
        let mut buckets: Vec<Vec<T>> = self.parts.iter().map(|_| Vec::new()).collect();
        let last = buckets.len() - 1;
        for (p, item) in items {
            buckets[(p as usize).min(last)].push(item);
        }
        buckets
    }

    /// The partition a job lives in.
    pub(crate) fn keys_of(&self, id: &JobId) -> &Keys {
        let n = self.parts.len() as u32;
        &self.parts[partition_of(id.as_str(), n) as usize]
    }
}

/// The job queue on Redis Streams (see `docs/wire-format.md`).
pub struct RedisQueue {
    shared: Arc<Shared>,
    /// One connection per consumer for blocking reads, so a BLOCK never holds up other
    /// commands (they share the multiplexed connection).
    blocking: tokio::sync::Mutex<HashMap<String, Conn>>,
    /// (lane, consumer, partition) whose own pending entries were re-read.
    drained: Mutex<HashSet<(DeviceClass, String, u32)>>,
    /// Fetch credits per consumer and partition for the weighted round-robin over
    /// priorities (each partition rotates its priorities as a lone queue would).
    credits: Mutex<HashMap<(String, u32), [i64; 3]>>,
    /// When stale submit entries were last reclaimed.
    submit_reclaimed: Mutex<Option<Instant>>,
    /// The largest submit entry of the last batch taken, bytes (0: none yet), which
    /// sizes the next batch (see `RedisConfig::take_batch_bytes`).
    entry_bytes_seen: AtomicU64,
    /// Where the next sweep over the partitions starts (so none is always last), one
    /// counter per role: fetches, takes and reclaims rotate independently, so that N
    /// successive fetches start at N different partitions.
    rotation: [AtomicUsize; 3],
    /// The current blocking slice per role with several partitions, µs (see
    /// `RedisConfig::partition_poll`).
    slices: [AtomicU64; 3],
    /// The same while reading by wake-ups: how long a reader goes without reading every
    /// partition, µs.
    polls: [AtomicU64; 3],
    /// Where blobs read from Redis land (page-aligned, recycled host buffers).
    buffers: BufferPool,
    /// Object storage for offloaded blobs and `url` tensors.
    objects: Arc<Objects>,
    /// Batches the submits that arrive together into one script call.
    submits: Batcher<Submits>,
    /// Batches the completions that arrive together into one script call.
    completions: Batcher<Completions>,
    /// Wake-ups heard on the channel, with several partitions; subscribed on the first
    /// fetch or take, so one-shot clients never open the subscription.
    wakeups: std::sync::OnceLock<Arc<wakeup::Wakeups>>,
    /// What each reader (role, topic, consumer) keeps between calls while reading by
    /// wake-ups.
    readers: Mutex<HashMap<signalled::ReaderKey, signalled::ReaderState>>,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("url", &self.shared.cfg.redacted_url())
            .field("namespace", &self.shared.cfg.namespace)
            .field("partitions", &self.shared.parts.len())
            .finish()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `{gpujobs}` (the hash tag older docs suggested) → `gpujobs`; other braces are refused.
fn plain_namespace(ns: &str) -> Result<String, QueueError> {
    let inner = ns
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(ns);
    if inner.is_empty() || inner.contains(['{', '}']) {
        return Err(QueueError::Misconfigured(format!(
            "namespace `{ns}` must be a non-empty name without braces (the queue adds hash tags itself)"
        )));
    }
    Ok(inner.to_string())
}

impl RedisQueue {
    /// Connects once: fails with a clear error if Redis is unreachable. Learns (or
    /// stores) the namespace's partition count, creates the consumer groups and warns
    /// when Redis may evict or lose data.
    pub async fn connect(mut cfg: RedisConfig) -> Result<Self, QueueError> {
        cfg.namespace = plain_namespace(&cfg.namespace)?;
        let mut conn = open(&cfg, Duration::from_secs(30)).await?;
        let pong: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| {
                refused(&cfg, &e).unwrap_or_else(|| QueueError::Backend(format!("PING: {e}")))
            })?;
        if pong != "PONG" {
            return Err(QueueError::Backend(format!(
                "unexpected PING reply {pong:?}"
            )));
        }
        let objects = Arc::new(Objects::new(&cfg.objects, cfg.max_blob_bytes)?);
        let n = resolve_partitions(&mut conn, &cfg).await?;
        let parts: Vec<Keys> = (0..n).map(|p| Keys::new(&cfg.namespace, p)).collect();
        ensure_groups(&mut conn, &parts).await?;
        if cfg.warn_durability {
            warn_about_durability(&mut conn, &cfg).await;
        }
        let scripts = Scripts::new(cfg.events_max, cfg.dead_letter_max);
        let wake = if parts.len() > 1 {
            parts[0].wake()
        } else {
            String::new()
        };
        let ceiling_us = cfg.partition_poll.as_micros().max(1) as u64;
        let shared = Arc::new(Shared {
            cfg,
            parts,
            conn,
            scripts,
            reread_own: AtomicBool::new(false),
            wake,
            entry_form: EntryForm::default(),
        });
        Ok(RedisQueue {
            submits: Batcher::start(shared.clone()),
            completions: Batcher::start(shared.clone()),
            shared,
            blocking: tokio::sync::Mutex::new(HashMap::new()),
            drained: Mutex::default(),
            credits: Mutex::default(),
            submit_reclaimed: Mutex::new(None),
            entry_bytes_seen: AtomicU64::new(0),
            rotation: Default::default(),
            slices: std::array::from_fn(|_| AtomicU64::new(FIRST_SLICE_US)),
            polls: std::array::from_fn(|_| AtomicU64::new(ceiling_us)),
            buffers: BufferPool::global().clone(),
            objects,
            wakeups: std::sync::OnceLock::new(),
            readers: Mutex::default(),
        })
    }

    /// Reads blobs into buffers from `pool` instead of the process's default pool.
    pub fn with_buffers(mut self, pool: BufferPool) -> Self {
        self.buffers = pool;
        self
    }

    /// Connects, retrying with exponential backoff (0.2 s doubling to 10 s) until Redis
    /// answers or `give_up_after` passes (`None`: forever), logging each failure.
    /// A misconfiguration ([`QueueError::Misconfigured`]) is returned at once, refused
    /// credentials once [`RedisConfig::auth_grace`] has passed.
    pub async fn connect_retrying(
        cfg: RedisConfig,
        give_up_after: Option<Duration>,
    ) -> Result<Self, QueueError> {
        Self::connect_observed(cfg, give_up_after, |_| {}).await
    }

    /// [`RedisQueue::connect_retrying`], telling `on_retry` each error it retries after
    /// (a daemon's readiness probe then says why it is not ready: refused credentials,
    /// an unreachable host).
    pub async fn connect_observed(
        cfg: RedisConfig,
        give_up_after: Option<Duration>,
        on_retry: impl Fn(&QueueError),
    ) -> Result<Self, QueueError> {
        let start = Instant::now();
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            match Self::connect(cfg.clone()).await {
                Ok(q) => return Ok(q),
                Err(QueueError::Misconfigured(m))
                    if m.starts_with(AUTH_FAILED) && start.elapsed() < cfg.auth_grace =>
                {
                    on_retry(&QueueError::Misconfigured(m.clone()));
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %m, retry_in = ?delay, grace = ?cfg.auth_grace, "Redis refused the credentials; retrying until the grace passes");
                    tokio::time::sleep(delay).await;
                }
                Err(e @ QueueError::Misconfigured(_)) => return Err(e),
                Err(e) => {
                    let delay = backoff.next_delay();
                    if give_up_after.is_some_and(|limit| start.elapsed() + delay > limit) {
                        return Err(e);
                    }
                    on_retry(&e);
                    tracing::warn!(error = %e, retry_in = ?delay, "Redis unavailable; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &RedisConfig {
        &self.shared.cfg
    }

    /// The key names of every partition, partition 0 first.
    pub fn partitions(&self) -> &[Keys] {
        &self.shared.parts
    }

    /// The keys of partition 0 (where the workers hash and the layout live).
    pub fn keys(&self) -> &Keys {
        &self.shared.parts[0]
    }

    /// The keys of the partition job `id` lives in.
    pub fn keys_of(&self, id: &JobId) -> &Keys {
        self.shared.keys_of(id)
    }

    fn conn(&self) -> Conn {
        self.shared.conn()
    }

    async fn blocking_conn(&self, consumer: &str) -> Result<Conn, QueueError> {
        let mut map = self.blocking.lock().await;
        if let Some(c) = map.get(consumer) {
            return Ok(c.clone());
        }
        let c = open(&self.shared.cfg, MAX_BLOCK + Duration::from_secs(5)).await?;
        map.insert(consumer.to_string(), c.clone());
        Ok(c)
    }

    /// The wake-ups of this handle's subscription (started on first use), or `None`
    /// with one partition.
    fn wakeups(&self) -> Option<&Arc<wakeup::Wakeups>> {
        if self.shared.wake.is_empty() {
            return None;
        }
        Some(self.wakeups.get_or_init(|| {
            let prefixes = self.shared.parts.iter().map(|k| k.prefix().to_string());
            let w = Arc::new(wakeup::Wakeups::new(prefixes.collect()));
            wakeup::spawn(&self.shared.cfg, self.shared.wake.clone(), &w);
            w
        }))
    }

    /// Idle waits of this handle's workers and schedulers that a wake-up ended (0 with
    /// one partition, where nothing is published): tests use it to tell a wake-up from
    /// the poll that would have found the work later.
    #[cfg(feature = "testkit")]
    pub fn wakeups_heard(&self) -> u64 {
        self.wakeups.get().map_or(0, |w| w.woken())
    }

    /// The wake-ups to read by (see [`signalled`]) while their channel is live; `None`
    /// with one partition or while it is down (a reader then blocks on one partition).
    fn live_wakeups(&self) -> Option<&Arc<wakeup::Wakeups>> {
        self.wakeups().filter(|w| w.live())
    }

    /// Partition indices in the order of `role`'s next sweep.
    fn sweep(&self, role: Role) -> impl Iterator<Item = usize> + use<> {
        let n = self.shared.parts.len();
        let start = self.rotation[role as usize].fetch_add(1, Ordering::Relaxed) % n;
        (0..n).map(move |i| (start + i) % n)
    }

    /// How long `role`'s next blocking read may wait, given the time `left`.
    fn block_slice(&self, role: Role, left: Duration) -> Duration {
        if self.shared.parts.len() > 1 {
            left.min(self.slice(role))
        } else {
            left
        }
    }

    /// `role`'s current slice, blocking.
    fn slice(&self, role: Role) -> Duration {
        Duration::from_micros(self.slices[role as usize].load(Ordering::Relaxed))
    }

    /// After a blocking read: back to the shortest slice when it found work, else a
    /// longer one next time.
    fn adapt_slice(&self, role: Role, found: bool) {
        self.adapt(&self.slices[role as usize], found);
    }

    /// How long `role` goes without reading every partition while reading by wake-ups.
    fn poll(&self, role: Role) -> Duration {
        Duration::from_micros(self.polls[role as usize].load(Ordering::Relaxed))
    }

    /// After reading every partition by wake-ups: a short poll when that found work no
    /// wake-up announced, else a longer one next time.
    fn adapt_poll(&self, role: Role, found: bool) {
        self.adapt(&self.polls[role as usize], found);
    }

    fn adapt(&self, slot: &AtomicU64, found: bool) {
        if found {
            slot.store(FIRST_SLICE_US, Ordering::Relaxed);
        } else {
            let ceiling = self.shared.cfg.partition_poll.as_micros().max(1) as u64;
            let next = (slot.load(Ordering::Relaxed) * 2).min(ceiling);
            slot.store(next, Ordering::Relaxed);
        }
    }

    /// XREADGROUP, non-blocking on the shared connection or blocking on the consumer's own.
    async fn read_group(
        &self,
        group: &str,
        consumer: &str,
        streams: &[String],
        ids: &[&str],
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Entry>, QueueError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count.max(1));
        if let Some(b) = block {
            cmd.arg("BLOCK")
                .arg(b.min(MAX_BLOCK).as_millis().max(1) as u64);
        }
        cmd.arg("STREAMS").arg(streams).arg(ids);
        let mut conn = if block.is_some() {
            self.blocking_conn(consumer).await?
        } else {
            self.conn()
        };
        for attempt in 0..2 {
            match cmd.query_async::<Value>(&mut conn).await {
                Ok(v) => return Ok(stream_reply(&v)),
                Err(e) if attempt == 0 && is_nogroup(&e) => {
                    ensure_groups(&mut self.conn(), &self.shared.parts).await?;
                    // Streams made on demand (a worker's near stream) as well.
                    for stream in streams {
                        create_group(&mut self.conn(), stream, group).await?;
                    }
                }
                Err(e) => {
                    self.shared.reread_own.store(true, Ordering::Release);
                    return Err(QueueError::Backend(format!(
                        "reading {}: {e}",
                        streams.join(", ")
                    )));
                }
            }
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::plain_namespace;

    #[test]
    fn namespaces_lose_a_hash_tag_and_refuse_other_braces() {
        assert_eq!(plain_namespace("{gpujobs}").unwrap(), "gpujobs");
        assert_eq!(plain_namespace("team-a").unwrap(), "team-a");
        assert!(plain_namespace("a{b}").is_err());
        assert!(plain_namespace("").is_err());
    }
}
