//! One lane of the embedded queue: ready jobs per priority, delayed retries, and the
//! fetch order between priorities.
//!
//! Fetch order is smooth weighted round-robin over the priorities that have ready jobs,
//! with weights high 6, normal 3, low 1: a high-priority job submitted behind a backlog
//! of normal ones is fetched within the next two picks, while a steady stream of high
//! jobs still leaves normal and low work 30% and 10% of the picks, so nothing starves.

use crate::model::envelope::Priority;
use crate::model::id::JobId;
use std::collections::{BTreeMap, HashMap, VecDeque};
use tokio::time::Instant;

use super::FETCH_WEIGHTS as WEIGHTS;

#[derive(Default)]
pub(crate) struct LaneQueue {
    ready: [VecDeque<JobId>; 3],
    delayed: BTreeMap<(Instant, u64), (JobId, Priority)>,
    credit: [i64; 3],
    seq: u64,
    /// Sum of the placement estimates (seconds) of its waiting jobs: added when a job
    /// is put on the lane, taken when it leaves (each job keeps its own figure, so
    /// what is taken is what was added).
    backlog: f64,
    /// Jobs placed by locality, per worker (consumer): offered to that worker alone
    /// until their deadline, then to the whole lane (see [`crate::scheduler::placement`]).
    near: HashMap<String, VecDeque<(JobId, Priority, Instant)>>,
}

impl LaneQueue {
    pub(crate) fn push(&mut self, id: JobId, p: Priority) {
        self.ready[p.index()].push_back(id);
    }

    /// Puts a released job back at the head of its priority: it was next in line.
    pub(crate) fn push_front(&mut self, id: JobId, p: Priority) {
        self.ready[p.index()].push_front(id);
    }

    pub(crate) fn push_delayed(&mut self, id: JobId, p: Priority, at: Instant) {
        self.seq += 1;
        self.delayed.insert((at, self.seq), (id, p));
    }

    /// Offers a job to `worker` alone until `until`.
    pub(crate) fn push_near(&mut self, worker: &str, id: JobId, p: Priority, until: Instant) {
        self.near
            .entry(worker.to_string())
            .or_default()
            .push_back((id, p, until));
    }

    /// The oldest job placed on `worker` by locality.
    pub(crate) fn pop_near(&mut self, worker: &str) -> Option<JobId> {
        let q = self.near.get_mut(worker)?;
        let got = q.pop_front().map(|(id, _, _)| id);
        if q.is_empty() {
            self.near.remove(worker);
        }
        got
    }

    /// Moves jobs their worker did not take by their deadline to the ready queues;
    /// whether there were any.
    pub(crate) fn expire_near(&mut self, now: Instant) -> bool {
        let mut due = Vec::new();
        for q in self.near.values_mut() {
            q.retain(|(id, p, until)| {
                let keep = *until > now;
                if !keep {
                    due.push((id.clone(), *p));
                }
                keep
            });
        }
        self.near.retain(|_, q| !q.is_empty());
        let moved = !due.is_empty();
        for (id, p) in due {
            self.push(id, p);
        }
        moved
    }

    /// Moves every job placed on `worker` to the ready queues (it is leaving); whether
    /// there were any.
    pub(crate) fn release_near(&mut self, worker: &str) -> bool {
        let Some(q) = self.near.remove(worker) else {
            return false;
        };
        for (id, p, _) in q {
            self.push(id, p);
        }
        true
    }

    /// When the next job placed by locality is offered to the whole lane.
    pub(crate) fn next_near_due(&self) -> Option<Instant> {
        self.near
            .values()
            .flatten()
            .map(|(_, _, until)| *until)
            .min()
    }

    /// Moves delayed jobs whose time has come to the ready queues.
    pub(crate) fn promote_due(&mut self, now: Instant) {
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (id, p) = entry.remove();
            self.push(id, p);
        }
    }

    /// When the next delayed job becomes ready.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.delayed.keys().next().map(|k| k.0)
    }

    /// The next job in fetch order.
    pub(crate) fn pop(&mut self) -> Option<JobId> {
        let active: Vec<usize> = (0..3).filter(|&i| !self.ready[i].is_empty()).collect();
        if active.is_empty() {
            return None;
        }
        let total: i64 = active.iter().map(|&i| WEIGHTS[i]).sum();
        for &i in &active {
            self.credit[i] += WEIGHTS[i];
        }
        let pick = *active
            .iter()
            .max_by_key(|&&i| (self.credit[i], -(i as i64)))?;
        self.credit[pick] -= total;
        // Classes with nothing ready keep no credit, so a burst cannot be saved up.
        for i in 0..3 {
            if self.ready[i].is_empty() {
                self.credit[i] = 0;
            }
        }
        self.ready[pick].pop_front()
    }

    /// Removes a job wherever it waits (cancellation).
    pub(crate) fn remove(&mut self, id: &JobId) {
        for q in &mut self.ready {
            q.retain(|j| j != id);
        }
        self.delayed.retain(|_, (j, _)| j != id);
        for q in self.near.values_mut() {
            q.retain(|(j, _, _)| j != id);
        }
        self.near.retain(|_, q| !q.is_empty());
    }

    /// Counts a job's estimate in the backlog.
    pub(crate) fn add_backlog(&mut self, estimate_s: f64) {
        self.backlog += estimate_s;
    }

    /// Takes a job's estimate out of the backlog (it was fetched or ended).
    pub(crate) fn take_backlog(&mut self, estimate_s: f64) {
        self.backlog -= estimate_s;
    }

    /// Jobs waiting on the lane, those placed on one worker included.
    pub(crate) fn ready_len(&self) -> usize {
        self.ready.iter().map(VecDeque::len).sum::<usize>()
            + self.near.values().map(VecDeque::len).sum::<usize>()
    }

    pub(crate) fn delayed_len(&self) -> usize {
        self.delayed.len()
    }

    /// The backlog in seconds; rounding of the running sum never shows as a negative
    /// or stray figure, and an empty lane has none.
    pub(crate) fn backlog_s(&self) -> f64 {
        if self.ready_len() == 0 && self.delayed.is_empty() {
            return 0.0;
        }
        self.backlog.max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(prefix: &str, n: usize) -> Vec<JobId> {
        (0..n)
            .map(|i| JobId::parse(&format!("{prefix}{i}")).unwrap())
            .collect()
    }

    #[test]
    fn high_overtakes_a_backlog_and_low_is_not_starved() {
        let mut lane = LaneQueue::default();
        for id in ids("n", 100) {
            lane.push(id, Priority::Normal);
        }
        for id in ids("l", 100) {
            lane.push(id, Priority::Low);
        }
        lane.pop();
        lane.push(JobId::parse("h0").unwrap(), Priority::High);
        let next: Vec<String> = (0..2)
            .filter_map(|_| lane.pop())
            .map(|j| j.to_string())
            .collect();
        assert!(next.contains(&"h0".to_string()), "{next:?}");
        // With a backlog of normal and low only, low gets a quarter of the picks.
        let picks: Vec<String> = (0..40)
            .filter_map(|_| lane.pop())
            .map(|j| j.to_string())
            .collect();
        let lows = picks.iter().filter(|s| s.starts_with('l')).count();
        assert!((8..=12).contains(&lows), "{lows} low picks of 40");
    }

    #[test]
    fn fifo_within_a_priority() {
        let mut lane = LaneQueue::default();
        for id in ids("n", 5) {
            lane.push(id, Priority::Normal);
        }
        let got: Vec<String> = (0..5)
            .filter_map(|_| lane.pop())
            .map(|j| j.to_string())
            .collect();
        assert_eq!(got, vec!["n0", "n1", "n2", "n3", "n4"]);
    }
}
