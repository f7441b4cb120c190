//! Wake-ups over Redis Pub/Sub, so that with several partitions an idle worker or
//! scheduler answers new work as fast as with one.
//!
//! With one partition a blocking `XREADGROUP` waits on every stream of a lane at once.
//! With several, no single read covers them all (each partition is its own Cluster
//! slot), so an idle reader used to block on one partition for a slice (1 ms doubling
//! to [`RedisConfig::partition_poll`]) and then sweep the others: work in another
//! partition waited up to a slice. Now the scripts that add work publish one message per
//! call on `{<ns>}:wake`, `<topic> <prefix>` (topic `cpu`, `gpu`: jobs placed on that
//! lane; `submit`: jobs submitted; the prefix names the partition), and an idle reader
//! waits for that message instead, then reads the partitions named since it last looked
//! (see [`super::signalled`]), not all of them.
//!
//! The guarantee of the old loop is kept: a reader never goes longer than its poll
//! without reading every partition, so a missed message (a client that adds a submit
//! entry with a plain `XADD`, a subscriber reconnecting, a Redis restart) costs at most
//! that poll, never a job. Classic Pub/Sub reaches every node of a Redis Cluster, so one
//! subscription to any node hears every partition, though a message that crosses the
//! Cluster bus can arrive tens of milliseconds late (docs/benchmarks.md, "After a quiet
//! spell").

use crate::config::RedisConfig;
use crate::connection::cluster_nodes;
use futures_util::StreamExt;
use gpujobs_core::{Backoff, DeviceClass};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What a wake-up announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Topic {
    /// Jobs placed on the CPU lane.
    Cpu = 0,
    /// Jobs placed on the GPU lane.
    Gpu = 1,
    /// Jobs submitted (for schedulers).
    Submit = 2,
}

impl Topic {
    pub(crate) fn lane(lane: DeviceClass) -> Self {
        match lane {
            DeviceClass::Cpu => Topic::Cpu,
            DeviceClass::Gpu => Topic::Gpu,
        }
    }

    /// The topic of a message and the partition prefix after it (absent or unknown
    /// prefixes are fine: the reader then sweeps in its usual order).
    fn of_message(payload: &[u8]) -> Option<(Self, &[u8])> {
        let (word, rest) = match payload.iter().position(|&b| b == b' ') {
            Some(i) => (&payload[..i], &payload[i + 1..]),
            None => (payload, &b""[..]),
        };
        let topic = match word {
            b"cpu" => Topic::Cpu,
            b"gpu" => Topic::Gpu,
            b"submit" => Topic::Submit,
            _ => return None,
        };
        Some((topic, rest))
    }
}

/// Wake-ups heard by this process: a counter per topic, and per topic and partition, so
/// that a reader that took a [`Seen`] before reading notices a message that came
/// meanwhile (nothing is lost between the reading and the wait), and knows which
/// partitions got work since (it reads those, not all of them).
#[derive(Debug)]
pub(crate) struct Wakeups {
    /// The partitions' prefixes, in order, to name the partition of a message.
    prefixes: Vec<String>,
    /// Whether the subscription is up: only then may a reader rely on messages.
    live: AtomicBool,
    /// Per topic, every message heard (those naming no known partition included).
    counts: [AtomicU64; 3],
    /// Per partition and topic, the messages that named it.
    parts: Vec<[AtomicU64; 3]>,
    changed: Notify,
    /// Waits ended by a wake-up (for tests and diagnostics).
    woken: AtomicU64,
}

/// A reader's view of one topic's counters at one moment (see [`Wakeups::seen`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen {
    total: u64,
    parts: Vec<u64>,
}

/// What came since a [`Seen`]: wake-ups of these partitions (most of the time), or some
/// that named none the reader knows (a resubscription, a message of another layout),
/// after which it reads every partition.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Since {
    Parts(Vec<usize>),
    Unknown,
}

impl Wakeups {
    /// Wake-ups of the partitions with these prefixes (partition 0 first).
    pub(crate) fn new(prefixes: Vec<String>) -> Self {
        let parts = prefixes.iter().map(|_| Default::default()).collect();
        Wakeups {
            prefixes,
            live: AtomicBool::new(false),
            counts: Default::default(),
            parts,
            changed: Notify::new(),
            woken: AtomicU64::new(0),
        }
    }

    /// `topic`'s counters now, to pass to [`Wakeups::wait`] and [`Wakeups::since`].
    /// The total is read before the partitions (and [`Wakeups::bump`] counts the
    /// partition before the total), so a message counted in the total here is counted
    /// in its partition too.
    pub(crate) fn seen(&self, topic: Topic) -> Seen {
        let total = self.counts[topic as usize].load(Ordering::Acquire);
        let parts = self
            .parts
            .iter()
            .map(|c| c[topic as usize].load(Ordering::Acquire))
            .collect();
        Seen { total, parts }
    }

    /// The partitions `topic`'s wake-ups named since `seen`, or [`Since::Unknown`]
    /// when some named none.
    pub(crate) fn since(&self, topic: Topic, seen: &Seen) -> Since {
        let now = self.seen(topic);
        let mut named = 0u64;
        let mut parts = Vec::new();
        for (p, (&n, &s)) in now.parts.iter().zip(&seen.parts).enumerate() {
            if n > s {
                named += n - s;
                parts.push(p);
            }
        }
        if named < now.total.saturating_sub(seen.total) || seen.parts.len() != now.parts.len() {
            Since::Unknown
        } else {
            Since::Parts(parts)
        }
    }

    /// Waits ended by a wake-up so far.
    #[cfg(any(test, feature = "testkit"))]
    pub(crate) fn woken(&self) -> u64 {
        self.woken.load(Ordering::Relaxed)
    }

    /// Whether messages are being heard.
    pub(crate) fn live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    fn bump(&self, topic: Topic, prefix: &[u8]) {
        if let Some(p) = self.prefixes.iter().position(|p| p.as_bytes() == prefix) {
            self.parts[p][topic as usize].fetch_add(1, Ordering::AcqRel);
        }
        self.counts[topic as usize].fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    /// Every topic at once, naming no partition: after (re)subscribing, messages may
    /// have been missed, so readers read every partition.
    fn bump_all(&self) {
        for c in &self.counts {
            c.fetch_add(1, Ordering::AcqRel);
        }
        self.changed.notify_waiters();
    }

    /// Waits until `topic` has had a wake-up since `seen`, or until `deadline`.
    /// Returns whether a wake-up came.
    pub(crate) async fn wait(&self, topic: Topic, seen: &Seen, deadline: Instant) -> bool {
        let moved = || self.counts[topic as usize].load(Ordering::Acquire) != seen.total;
        let woken = loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if moved() {
                break true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break moved();
            }
        };
        if woken {
            self.woken.fetch_add(1, Ordering::Relaxed);
        }
        woken
    }
}

/// Starts the subscriber for `channel` on the Redis of `cfg`; it runs while `wakeups`
/// has other owners, reconnecting with backoff after a drop (marked not live meanwhile).
pub(crate) fn spawn(cfg: &RedisConfig, channel: String, wakeups: &Arc<Wakeups>) {
    let urls = cluster_nodes(&cfg.url).unwrap_or_else(|| vec![cfg.url.clone()]);
    let redacted = cfg.redacted_url();
    let weak = Arc::downgrade(wakeups);
    tokio::spawn(async move {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut next = 0usize;
        loop {
            let url = &urls[next % urls.len()];
            next += 1;
            match listen(url, &channel, &weak, &mut backoff).await {
                Ok(()) => return,
                Err(e) => {
                    if let Some(w) = weak.upgrade() {
                        w.live.store(false, Ordering::Release);
                    } else {
                        return;
                    }
                    let delay = backoff.next_delay();
                    tracing::debug!(url = %redacted, error = %e, retry_in = ?delay,
                        "wake-up channel down; idle readers poll every partition meanwhile");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    });
}

/// Subscribes and relays messages until the connection drops (`Err`) or every other
/// owner of the wake-ups is gone (`Ok`).
async fn listen(
    url: &str,
    channel: &str,
    weak: &Weak<Wakeups>,
    backoff: &mut Backoff,
) -> Result<(), redis::RedisError> {
    let client = redis::Client::open(url)?;
    let mut pubsub = tokio::time::timeout(Duration::from_secs(5), client.get_async_pubsub())
        .await
        .map_err(|_| timed_out())??;
    pubsub.subscribe(channel).await?;
    let Some(w) = weak.upgrade() else {
        return Ok(());
    };
    w.live.store(true, Ordering::Release);
    w.bump_all();
    drop(w);
    backoff.reset();
    let mut messages = pubsub.on_message();
    loop {
        // Wakes now and then to notice that the queue handle is gone.
        match tokio::time::timeout(Duration::from_secs(1), messages.next()).await {
            Ok(Some(msg)) => {
                let Some(w) = weak.upgrade() else {
                    return Ok(());
                };
                if let Some((topic, prefix)) = Topic::of_message(msg.get_payload_bytes()) {
                    w.bump(topic, prefix);
                }
            }
            Ok(None) => {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "subscription closed",
                )));
            }
            Err(_) if weak.strong_count() == 0 => return Ok(()),
            Err(_) => {}
        }
    }
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "connecting timed out"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_up_during_the_reading_is_not_lost() {
        let w = Wakeups::new(vec!["{ns}".into(), "{ns:1}".into(), "{ns:2}".into()]);
        let seen = w.seen(Topic::Cpu);
        // Arrives after the counters were taken, before the wait starts.
        w.bump(Topic::Cpu, b"{ns:1}");
        w.bump(Topic::Cpu, b"{ns:2}");
        let far = Instant::now() + Duration::from_secs(60);
        assert!(w.wait(Topic::Cpu, &seen, far).await);
        assert_eq!(w.woken(), 1);
        assert_eq!(w.since(Topic::Cpu, &seen), Since::Parts(vec![1, 2]));
        // Another topic's wake-up does not end a wait; the deadline does.
        let seen = w.seen(Topic::Gpu);
        w.bump(Topic::Submit, b"{ns}");
        let soon = Instant::now() + Duration::from_millis(20);
        assert!(!w.wait(Topic::Gpu, &seen, soon).await);
        assert_eq!(w.since(Topic::Gpu, &seen), Since::Parts(vec![]));
    }

    #[test]
    fn a_wake_up_naming_no_known_partition_means_reading_all() {
        let w = Wakeups::new(vec!["{ns}".into(), "{ns:1}".into()]);
        let seen = w.seen(Topic::Submit);
        w.bump(Topic::Submit, b"{ns:1}");
        w.bump(Topic::Submit, b"{other}");
        assert_eq!(w.since(Topic::Submit, &seen), Since::Unknown);
        let seen = w.seen(Topic::Submit);
        w.bump_all();
        assert_eq!(w.since(Topic::Submit, &seen), Since::Unknown);
        let seen = w.seen(Topic::Submit);
        w.bump(Topic::Submit, b"{ns}");
        assert_eq!(w.since(Topic::Submit, &seen), Since::Parts(vec![0]));
    }

    #[tokio::test]
    async fn a_waiting_reader_is_woken() {
        let w = Arc::new(Wakeups::new(vec!["{ns}".into()]));
        let seen = w.seen(Topic::Submit);
        let waiter = {
            let w = w.clone();
            tokio::spawn(async move {
                w.wait(
                    Topic::Submit,
                    &seen,
                    Instant::now() + Duration::from_secs(60),
                )
                .await
            })
        };
        tokio::task::yield_now().await;
        w.bump(Topic::Submit, b"{ns}");
        assert!(waiter.await.expect("joins"));
        assert_eq!(
            Topic::of_message(b"gpu {ns:3}"),
            Some((Topic::Gpu, &b"{ns:3}"[..]))
        );
        assert_eq!(
            Topic::of_message(b"submit"),
            Some((Topic::Submit, &b""[..]))
        );
        assert_eq!(Topic::of_message(b"other {ns}"), None);
    }
}
