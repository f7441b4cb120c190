//! Reading with a live wake-up channel: which partitions an idle worker or scheduler
//! reads, and when.
//!
//! A reader keeps between calls the wake-up counters it last saw ([`Seen`]), the
//! partitions it still owes a read (named by a wake-up it has not read yet, or where its
//! last read filled its batch), and when it last read every partition. A call reads the
//! owed partitions and those named since; with nothing there it waits for the next
//! wake-up and reads the partitions that one named. It reads every partition when its
//! poll has passed since it last did (`RedisConfig::partition_poll`, shorter while work
//! comes unannounced; so a missed message, a plain `XADD` or a delayed retry coming due
//! costs at most that), when a wake-up named no partition it knows (a resubscription),
//! and on its first call. Either way it reads in the role's rotating order, so that no
//! partition's work waits behind another's.
//!
//! Why: the loop before read every partition before each wait, so with three partitions
//! each hop of an idle job (submit → scheduler, place → worker) cost every reader three
//! script calls, and on a busy machine those calls delayed the one that found the job.

use super::wakeup::{Seen, Since, Topic, Wakeups};
use super::{RedisQueue, Role, lock};
use gpujobs_core::QueueError;
use gpujobs_core::model::envelope::now_ms;
use std::future::Future;
use std::time::{Duration, Instant};

/// What one partition's read found.
pub(crate) struct Found<T> {
    /// The work it found, if any.
    pub(crate) value: Option<T>,
    /// The read filled its batch, so the partition may hold more.
    pub(crate) more: bool,
    /// When the partition's next delayed retry comes due (ms since the epoch), which
    /// bounds the wait: a retry is promoted by the read that comes after it.
    pub(crate) due_ms: Option<u64>,
}

/// What a reader keeps between calls.
#[derive(Debug, Default)]
pub(crate) struct ReaderState {
    /// The wake-up counters as of the reader's last reads.
    seen: Seen,
    /// Partitions to read first on the next call.
    owed: Vec<usize>,
    /// When the reader last read every partition (`None`: never).
    all_read: Option<Instant>,
}

/// A reader: role, topic and consumer name.
pub(crate) type ReaderKey = (u8, u8, String);

/// The partitions to read: those owed and those named since, each once; `None`: all.
fn plan_of(mut owed: Vec<usize>, since: Since) -> Option<Vec<usize>> {
    match since {
        Since::Unknown => None,
        Since::Parts(named) => {
            for p in named {
                if !owed.contains(&p) {
                    owed.push(p);
                }
            }
            Some(owed)
        }
    }
}

impl RedisQueue {
    /// The partitions `since` announced work in (a wake-up naming none may stand for
    /// any of them: a resubscription after messages were missed).
    fn announced(&self, since: &Since) -> Vec<usize> {
        match since {
            Since::Parts(p) => p.clone(),
            Since::Unknown => (0..self.shared.parts.len()).collect(),
        }
    }

    /// Reads partitions with `read` as the module describes until one finds work or
    /// `deadline` passes (`Ok(None)`).
    pub(super) async fn read_signalled<T, F, Fut>(
        &self,
        w: &Wakeups,
        role: Role,
        topic: Topic,
        consumer: &str,
        deadline: Instant,
        mut read: F,
    ) -> Result<Option<T>, QueueError>
    where
        F: FnMut(usize) -> Fut,
        Fut: Future<Output = Result<Found<T>, QueueError>>,
    {
        let key: ReaderKey = (role as u8, topic as u8, consumer.to_string());
        // Taken out while the call runs; an error leaves none, so the next call reads
        // every partition.
        let mut st = lock(&self.readers).remove(&key).unwrap_or_default();
        let all_due = st.all_read.is_none_or(|t| t.elapsed() >= self.poll(role));
        let since = w.since(topic, &st.seen);
        // Partitions a wake-up named: work found there was announced, not polled for.
        let mut announced = self.announced(&since);
        let mut plan = if all_due {
            None
        } else {
            plan_of(std::mem::take(&mut st.owed), since)
        };
        loop {
            // Taken before reading, so a wake-up during the reads ends the wait below.
            let seen = w.seen(topic);
            let all = plan.is_none();
            // In the role's rotating order either way (see the module's doc).
            let order: Vec<usize> = self.sweep(role).collect();
            let parts: Vec<usize> = match plan.take() {
                Some(p) => order.into_iter().filter(|q| p.contains(q)).collect(),
                None => order,
            };
            let mut due: Option<u64> = None;
            for (i, &p) in parts.iter().enumerate() {
                let found = read(p).await?;
                if let Some(d) = found.due_ms {
                    due = Some(due.map_or(d, |n| n.min(d)));
                }
                if let Some(v) = found.value {
                    let mut owed = Vec::with_capacity(parts.len() - i);
                    if found.more {
                        owed.push(p);
                    }
                    owed.extend_from_slice(&parts[i + 1..]);
                    if all {
                        st.all_read = Some(Instant::now());
                        if !announced.contains(&p) {
                            // Work that came unannounced (a plain `XADD`): read every
                            // partition often while it flows.
                            self.adapt_poll(role, true);
                        }
                    }
                    st.seen = seen;
                    st.owed = owed;
                    lock(&self.readers).insert(key, st);
                    return Ok(Some(v));
                }
            }
            if all {
                st.all_read = Some(Instant::now());
            }
            st.seen = seen;
            let now = Instant::now();
            if now >= deadline {
                lock(&self.readers).insert(key, st);
                return Ok(None);
            }
            // Every partition is read again when the poll has passed, or a retry came due.
            let mut all_due = st.all_read.map_or(now, |t| t + self.poll(role));
            if let Some(d) = due {
                let due = now + Duration::from_millis(d.saturating_sub(now_ms()).max(1));
                all_due = all_due.min(due);
            }
            let until = deadline.min(all_due);
            if w.wait(topic, &st.seen, tokio::time::Instant::from_std(until))
                .await
            {
                let since = w.since(topic, &st.seen);
                announced = self.announced(&since);
                plan = plan_of(Vec::new(), since);
            } else if until < all_due {
                // The caller's time is up and nothing is owed.
                lock(&self.readers).insert(key, st);
                return Ok(None);
            } else {
                self.adapt_poll(role, false);
                announced.clear();
                plan = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_names_each_partition_once() {
        assert_eq!(
            plan_of(vec![2, 0], Since::Parts(vec![0, 1])),
            Some(vec![2, 0, 1])
        );
        assert_eq!(plan_of(vec![2], Since::Unknown), None);
        assert_eq!(plan_of(Vec::new(), Since::Parts(Vec::new())), Some(vec![]));
    }
}
