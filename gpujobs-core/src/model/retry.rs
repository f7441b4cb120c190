//! Retry backoff: how long a failed job waits before its next attempt.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Exponential backoff with a cap and deterministic jitter.
///
/// The delay before attempt `n + 1` (after `n` failed attempts) is
/// `min(max, base · factor^(n−1))`, scaled by a jitter in `[1 − jitter, 1]` that is
/// derived from the job id, so many jobs failing together do not retry in lock-step,
/// yet a given job's schedule is reproducible.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub base: Duration,
    /// Growth per further failure.
    pub factor: f64,
    /// Upper bound of any delay.
    pub max: Duration,
    /// Share of the delay that jitter may remove, in `[0, 1]`.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_millis(500),
            factor: 2.0,
            max: Duration::from_secs(60),
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// No delay at all (tests).
    pub fn immediate() -> Self {
        RetryPolicy {
            base: Duration::ZERO,
            factor: 1.0,
            max: Duration::ZERO,
            jitter: 0.0,
        }
    }

    /// The wait after `failures` failed attempts (at least 1) of the job `key`.
    pub fn delay(&self, failures: u32, key: &str) -> Duration {
        let exp = self
            .factor
            .max(1.0)
            .powi(failures.saturating_sub(1).min(64) as i32);
        let raw = (self.base.as_secs_f64() * exp).min(self.max.as_secs_f64());
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for b in key.bytes().chain(failures.to_le_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let unit = (crate::model::synth::splitmix64(h) >> 11) as f64 / (1u64 << 53) as f64;
        let scale = 1.0 - self.jitter.clamp(0.0, 1.0) * unit;
        Duration::from_secs_f64((raw * scale).max(0.0))
    }
}

/// Doubling waits between tries of an operation that failed for a passing reason
/// (Redis restarting, a connection dropped): `first`, `2·first`, ... capped at `max`.
/// The one backoff of the worker, the scheduler, the queue's reconnects and `wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Starts at `first`, doubles up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            next: first,
            max,
        }
    }

    /// The wait before the next try; each call doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next.min(self.max);
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// Back to `first` (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let got: Vec<u128> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(got, [100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn delays_grow_and_stay_bounded(failures in 1u32..200, key in "[a-z0-9]{1,20}", base_ms in 0u64..5000, max_s in 0u64..600) {
            let p = RetryPolicy { base: Duration::from_millis(base_ms), factor: 2.0, max: Duration::from_secs(max_s), jitter: 0.2 };
            let d = p.delay(failures, &key);
            prop_assert!(d <= p.max);
            // Without jitter the sequence never decreases.
            let nj = RetryPolicy { jitter: 0.0, ..p };
            prop_assert!(nj.delay(failures, &key) <= nj.delay(failures + 1, &key));
            // Jitter removes at most its share.
            let full = nj.delay(failures, &key).as_secs_f64();
            prop_assert!(d.as_secs_f64() >= full * 0.8 - 1e-9);
        }
    }

    #[test]
    fn first_delays() {
        let p = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        assert_eq!(p.delay(1, "x"), Duration::from_millis(500));
        assert_eq!(p.delay(2, "x"), Duration::from_millis(1000));
        assert_eq!(p.delay(30, "x"), Duration::from_secs(60));
    }
}
