//! Time-ordered job identifiers.
//!
//! A [`JobId`] is a ULID: 48 bits of milliseconds since the Unix epoch followed by 80
//! bits drawn from the OS for each new millisecond and incremented within one, written as 26
//! characters of Crockford base32. Ids sort by creation time as plain strings, which
//! keeps listings and Redis keys in submit order, and they need no coordination between
//! the machines that create them.

use crate::model::device::DeviceClass;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A job's identifier: a ULID string, unique and sortable by creation time. Shared,
/// not copied: an id is cloned into every map and message that names its job, so a
/// clone is a reference count, not an allocation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(Arc<str>);

impl JobId {
    /// A fresh id for the current instant.
    pub fn new() -> Self {
        let (ms, rand) = next_parts();
        JobId(encode(ms, rand).into())
    }

    /// Wraps an id received from elsewhere (a queue, a command line).
    ///
    /// Any non-empty string of up to 128 printable ASCII characters is accepted, so jobs
    /// submitted by other programs with their own id scheme still work.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| JobId(s.into()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Milliseconds since the epoch encoded in a ULID, if this id is one.
    pub fn timestamp_ms(&self) -> Option<u64> {
        if self.0.len() != 26 {
            return None;
        }
        let mut v: u64 = 0;
        for b in self.0.bytes().take(10) {
            v = (v << 5) | ALPHABET.iter().position(|&a| a == b)? as u64;
        }
        Some(v)
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

struct Generator {
    last_ms: u64,
    rand: u128,
}

static GENERATOR: Mutex<Option<Generator>> = Mutex::new(None);

fn next_parts() -> (u64, u128) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut guard = GENERATOR.lock().unwrap_or_else(|p| p.into_inner());
    let g = guard.get_or_insert_with(|| Generator {
        last_ms: 0,
        rand: seed_random(),
    });
    if now > g.last_ms {
        g.last_ms = now;
        g.rand = seed_random();
    } else {
        // Same (or an earlier, after a clock step) millisecond: stay monotonic.
        g.rand = (g.rand + 1) & ((1u128 << 80) - 1);
    }
    (g.last_ms, g.rand)
}

/// 80 random bits from the operating system (`getrandom`): ids made in the same
/// millisecond by processes on many machines, or by containers that are all PID 1,
/// must not collide. Should the OS refuse (it does not on the platforms we build for),
/// the clock's nanoseconds, the process id and the thread stand in, said once.
fn seed_random() -> u128 {
    let mut bytes = [0u8; 16];
    if let Err(e) = getrandom::fill(&mut bytes) {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            tracing::warn!(error = %e, "no randomness from the OS; job ids fall back to the clock and process id")
        });
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let thread = format!("{:?}", std::thread::current().id());
        let a =
            crate::model::synth::splitmix64(nanos as u64 ^ (u64::from(std::process::id()) << 32));
        let b = crate::model::synth::splitmix64(a ^ thread.len() as u64 ^ (nanos >> 64) as u64);
        bytes[..8].copy_from_slice(&a.to_le_bytes());
        bytes[8..].copy_from_slice(&b.to_le_bytes());
    }
    u128::from_le_bytes(bytes) & ((1u128 << 80) - 1)
}

/// 64 random bits from the operating system, for names that must not collide across
/// processes and machines (an attempt's output folder, a temporary file): the source
/// job ids use.
pub fn random_u64() -> u64 {
    seed_random() as u64
}

fn encode(ms: u64, rand: u128) -> String {
    let v: u128 = (u128::from(ms & ((1 << 48) - 1)) << 80) | rand;
    (0..26)
        .map(|i| ALPHABET[((v >> (125 - 5 * i)) & 31) as usize] as char)
        .collect()
}

/// A consumer name unique across machines and restarts: host, pid, lane, random.
pub fn unique_worker_id(lane: DeviceClass) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".into());
    let suffix = &JobId::new().to_string()[20..];
    format!(
        "{host}-{}-{lane}-{}",
        std::process::id(),
        suffix.to_ascii_lowercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_ordered() {
        let ids: Vec<JobId> = (0..10_000).map(|_| JobId::new()).collect();
        for w in ids.windows(2) {
            assert!(w[0] < w[1], "{} !< {}", w[0], w[1]);
        }
    }

    #[test]
    fn timestamp_round_trips() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let id = JobId::new();
        let ts = id.timestamp_ms().unwrap();
        assert!(ts >= before && ts < before + 5_000, "{ts} vs {before}");
        assert_eq!(id.as_str().len(), 26);
    }

    #[test]
    fn parse_refuses_garbage() {
        assert!(JobId::parse("").is_none());
        assert!(JobId::parse("a b").is_none());
        assert!(JobId::parse(&"x".repeat(200)).is_none());
        assert_eq!(JobId::parse("job-1").unwrap().as_str(), "job-1");
    }
}
