//! How many jobs a worker runs at once, by size: tiny jobs (below
//! [`crate::WorkerConfig::light_below`]) run under a wide limit of their own, everything
//! else under `concurrency`. A job is tiny when the scheduler estimated it so *and* its
//! kind has run that fast on this worker: a kind seen for the first time, or a custom
//! kind whose cost model knows nothing, counts as large until it has been timed. So one default serves both ends: a CPU worker
//! runs one matrix product at a time (it already uses every core) yet thousands of
//! tiny jobs a second, which at one at a time would wait on round trips, not cores.
//!
//! A fetch asks for room in the light lane only while recent deliveries were mostly
//! light, so a worker fed large jobs does not hoard them from other workers. A job that
//! arrives without a free slot of its kind waits for one in its own task, renewing its
//! lease meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Run times seen on this worker per job kind (moving average, seconds).
#[derive(Clone, Default)]
pub(crate) struct RunTimes(Arc<Mutex<HashMap<String, f64>>>);

impl RunTimes {
    /// Records that a job of `kind` ran for `secs`.
    pub(crate) fn record(&self, kind: &str, secs: f64) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match m.get_mut(kind) {
            Some(avg) => *avg += (secs - *avg) / 8.0,
            None => {
                m.insert(kind.to_string(), secs);
            }
        }
    }

    fn get(&self, kind: &str) -> Option<f64> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(kind)
            .copied()
    }
}

/// Share of light jobs among recent deliveries above which fetches ask for light room.
const LIGHT_MODE: f64 = 0.8;

/// The two limits and what the worker has seen lately.
pub(crate) struct Slots {
    heavy: Arc<Semaphore>,
    light: Arc<Semaphore>,
    light_cap: usize,
    light_below_s: f64,
    run_times: RunTimes,
    /// Moving share of light jobs among recent deliveries (weight 1/8 per delivery).
    recent_light: f64,
}

/// A job's right to run, or the limit it waits on.
pub(crate) enum Ticket {
    Ready(OwnedSemaphorePermit),
    Wait(Arc<Semaphore>),
}

impl Slots {
    pub(crate) fn new(concurrency: usize, light_concurrency: usize, light_below_s: f64) -> Self {
        Slots {
            heavy: Arc::new(Semaphore::new(concurrency.max(1))),
            light: Arc::new(Semaphore::new(light_concurrency)),
            light_cap: light_concurrency,
            light_below_s,
            run_times: RunTimes::default(),
            recent_light: 0.0,
        }
    }

    /// Where jobs report how long they ran.
    pub(crate) fn run_times(&self) -> RunTimes {
        self.run_times.clone()
    }

    /// How many jobs the next fetch may take.
    pub(crate) fn room(&self) -> usize {
        let light = if self.recent_light > LIGHT_MODE {
            self.light.available_permits()
        } else {
            0
        };
        self.heavy.available_permits() + light
    }

    /// Whether the next fetch should wait a moment for more light jobs to finish: while
    /// light jobs stream through, fetching one slot at a time as each ends would cost a
    /// round trip per job; waiting until a quarter of the light slots are free (at most
    /// a couple of milliseconds, see the worker) fetches them in batches.
    pub(crate) fn filling(&self) -> bool {
        let free = self.light.available_permits();
        self.recent_light > LIGHT_MODE && free < self.light_cap && free < self.light_cap / 4
    }

    /// Whether a job of `kind` with this estimate counts as light.
    pub(crate) fn is_light(&self, kind: &str, estimate_s: Option<f64>) -> bool {
        let below = |s: f64| s < self.light_below_s;
        self.light_below_s > 0.0
            && estimate_s.is_some_and(below)
            && self.run_times.get(kind).is_some_and(below)
    }

    /// A slot for a delivered job: now when one of its kind is free, else the limit to
    /// wait on.
    pub(crate) fn admit(&mut self, kind: &str, estimate_s: Option<f64>) -> Ticket {
        let light = self.is_light(kind, estimate_s);
        self.recent_light += (f64::from(u8::from(light)) - self.recent_light) / 8.0;
        let sem = if light { &self.light } else { &self.heavy };
        match sem.clone().try_acquire_owned() {
            Ok(p) => Ticket::Ready(p),
            Err(_) => Ticket::Wait(sem.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn light_room_opens_only_after_mostly_light_deliveries() {
        let mut a = Slots::new(1, 64, 0.002);
        assert_eq!(a.room(), 1, "heavy room only at first");
        assert!(!a.is_light("tiny", Some(0.0001)), "not timed yet");
        a.run_times().record("tiny", 0.0001);
        a.run_times().record("slow", 0.5);
        assert!(
            !a.is_light("slow", Some(0.0001)),
            "estimated tiny, ran slow"
        );
        let mut held = Vec::new();
        for _ in 0..20 {
            match a.admit("tiny", Some(0.0001)) {
                Ticket::Ready(p) => held.push(p),
                Ticket::Wait(_) => panic!("light slots are free"),
            }
        }
        assert_eq!(a.room(), 1 + 64 - 20);
        // Large jobs close the light room again.
        let mut waiting = 0;
        for _ in 0..20 {
            match a.admit("tiny", Some(5.0)) {
                Ticket::Ready(p) => held.push(p),
                Ticket::Wait(_) => waiting += 1,
            }
        }
        assert_eq!(waiting, 19, "one heavy slot");
        assert_eq!(
            a.room(),
            0,
            "the one heavy slot is taken, light room closed"
        );
        assert!(
            matches!(a.admit("tiny", None), Ticket::Wait(_)),
            "unknown size is heavy"
        );
    }
}
