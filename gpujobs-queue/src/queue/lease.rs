//! What workers call: fetch (lease) jobs, renew, complete, fail, release, reclaim.
//!
//! A [`Lease`]'s entry is `<lane stream>|<stream entry id>`; the stream names the
//! partition.

use super::batcher::{BatchWrite, Completions};
use super::blobs::BlobError;
use super::signalled::Found;
use super::wakeup::Topic;
use super::{RedisQueue, Role, lock};
use crate::codec::Begun;
use crate::keys::{Keys, WORKERS};
use crate::scripts::{Begin, Completion, Fail, Fence, Fetch, Reclaim, Release, Renew, ms};
use async_trait::async_trait;
use gpujobs_core::model::envelope::now_ms;
use gpujobs_core::queue::LeaseQueue;
use gpujobs_core::queue::{Delivery, FETCH_WEIGHTS, FailOutcome, Lease, RemoteInput, RenewOutcome};
use gpujobs_core::{Blobs, DeviceClass, JobEnvelope, JobError, JobId, JobResult, QueueError};
use std::time::{Duration, Instant};

/// Splits `max` fetch slots between priorities by smooth weighted round-robin, keeping
/// the credits between calls so that single-slot fetches still rotate.
fn quotas(credits: &mut [i64; 3], max: usize) -> [usize; 3] {
    let weights = FETCH_WEIGHTS;
    let total: i64 = weights.iter().sum();
    let mut q = [0usize; 3];
    for _ in 0..max {
        for i in 0..3 {
            credits[i] += weights[i];
        }
        let pick = (0..3)
            .max_by_key(|&i| (credits[i], -(i as i64)))
            .unwrap_or(0);
        credits[pick] -= total;
        q[pick] += 1;
    }
    q
}

/// What one partition's `fetch` call gave.
struct Fetched {
    deliveries: Vec<Delivery>,
    /// Rows the script returned (deliveries, and entries it dropped or dead-lettered).
    rows: usize,
    /// When the partition's next delayed retry comes due, ms since the epoch.
    due_ms: Option<u64>,
}

impl RedisQueue {
    /// One `fetch` script call on partition `p`: its near stream and lanes by the
    /// priority quotas, or, the first time this consumer reads `p` from this handle,
    /// the entries it left pending there (a restarted worker's own).
    async fn fetch_from(
        &self,
        p: usize,
        lane: DeviceClass,
        consumer: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Fetched, QueueError> {
        let keys = &self.shared.parts[p];
        let own = lock(&self.drained).insert((lane, consumer.to_string(), keys.partition()));
        let quotas = if own {
            [max; 3]
        } else {
            quotas(
                lock(&self.credits)
                    .entry((consumer.to_string(), keys.partition()))
                    .or_insert([0; 3]),
                max,
            )
        };
        let fetched = self
            .shared
            .call(&Fetch {
                keys,
                lane,
                consumer,
                now_ms: now_ms(),
                lease_ms: ms(lease),
                own,
                quotas,
                max,
            })
            .await?;
        if own && !fetched.rows.is_empty() {
            tracing::info!(
                consumer,
                count = fetched.rows.len(),
                "re-delivering this consumer's pending entries"
            );
        }
        let rows = fetched.rows.len();
        let deliveries = self.deliveries(keys, lane, consumer, fetched.rows).await?;
        Ok(Fetched {
            deliveries,
            rows,
            due_ms: fetched.next_due_ms,
        })
    }
}

#[async_trait]
impl LeaseQueue for RedisQueue {
    async fn fetch(
        &self,
        lane: DeviceClass,
        consumer: &str,
        max: usize,
        lease: Duration,
        wait: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        let deadline = Instant::now() + wait;
        let order: Vec<usize> = self.sweep(Role::Fetch).collect();
        loop {
            // The subscription comes up during the first call: from then on, by wake-ups.
            if let Some(w) = self.live_wakeups() {
                let read = |p: usize| async move {
                    let got = self.fetch_from(p, lane, consumer, max, lease).await?;
                    Ok(Found {
                        more: got.rows >= max,
                        value: (!got.deliveries.is_empty()).then_some(got.deliveries),
                        due_ms: got.due_ms,
                    })
                };
                let got = self
                    .read_signalled(w, Role::Fetch, Topic::lane(lane), consumer, deadline, read)
                    .await?;
                return Ok(got.unwrap_or_default());
            }
            let mut next_due: Option<u64> = None;
            for &p in &order {
                let got = self.fetch_from(p, lane, consumer, max, lease).await?;
                if let Some(d) = got.due_ms {
                    next_due = Some(next_due.map_or(d, |n| n.min(d)));
                }
                if !got.deliveries.is_empty() {
                    self.adapt_slice(Role::Fetch, true);
                    return Ok(got.deliveries);
                }
            }
            let mut left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Vec::new());
            }
            // Block no longer than until the next retry comes due, so it is promoted.
            if let Some(due) = next_due {
                left = left.min(Duration::from_millis(due.saturating_sub(now_ms()).max(1)));
            }
            let keys = &self.shared.parts[order[0]];
            // Its near stream first: a job placed on this worker by locality wakes it.
            let mut streams = vec![keys.near(lane, consumer)];
            streams.extend(keys.lane_streams(lane));
            let entries = self
                .read_group(
                    WORKERS,
                    consumer,
                    &streams,
                    &[">", ">", ">", ">"],
                    max,
                    Some(self.block_slice(Role::Fetch, left)),
                )
                .await?;
            self.adapt_slice(Role::Fetch, !entries.is_empty());
            if !entries.is_empty() {
                let rows = self
                    .shared
                    .call(&Begin {
                        keys,
                        lane,
                        consumer,
                        now_ms: now_ms(),
                        lease_ms: ms(lease),
                        entries: &entries,
                    })
                    .await?;
                let got = self.deliveries(keys, lane, consumer, rows).await?;
                if !got.is_empty() {
                    return Ok(got);
                }
            }
            if Instant::now() >= deadline {
                return Ok(Vec::new());
            }
        }
    }

    async fn load_remote(&self, lease: &Lease, remote: &[RemoteInput]) -> Result<Blobs, JobError> {
        if remote.is_empty() {
            return Ok(Blobs::new());
        }
        self.read_remote(&lease.job_id, remote)
            .await
            .map_err(|e| match e {
                BlobError::Malformed(m) => JobError::permanent(m),
                BlobError::Unreachable(m) => JobError::temporary(m),
            })
    }

    async fn renew(&self, lease: &Lease, extend: Duration) -> Result<RenewOutcome, QueueError> {
        self.shared
            .call(&Renew {
                keys: self.keys_of_lease(lease),
                fence: Fence::of(lease)?,
                lease_ms: ms(extend),
            })
            .await
    }

    async fn complete(&self, lease: &Lease, result: JobResult) -> Result<(), QueueError> {
        let Some(prepared) = self.prepare_completion(lease, &result).await? else {
            return Ok(());
        };
        let partition = self.keys_of_lease(lease).partition();
        let (completion, after) = prepared.split();
        let recorded = self.completions.write(partition, completion).await?;
        self.after_completion(lease, after, recorded).await
    }

    /// A worker's batch: blobs stored job by job, then one `complete` call per
    /// partition.
    async fn complete_batch(&self, batch: Vec<(Lease, JobResult)>) -> Vec<Result<(), QueueError>> {
        let mut out: Vec<Result<(), QueueError>> = Vec::with_capacity(batch.len());
        let mut ready = Vec::with_capacity(batch.len());
        let mut afters = Vec::with_capacity(batch.len());
        for (i, (lease, result)) in batch.iter().enumerate() {
            out.push(Ok(()));
            afters.push(None);
            match self.prepare_completion(lease, result).await {
                Ok(Some(p)) => {
                    let (c, after) = p.split();
                    afters[i] = Some(after);
                    ready.push((self.keys_of_lease(lease).partition(), (i, c)));
                }
                Ok(None) => {}
                Err(e) => out[i] = Err(e),
            }
        }
        for (p, group) in self.shared.by_partition(ready).into_iter().enumerate() {
            if group.is_empty() {
                continue;
            }
            let (idx, jobs): (Vec<usize>, Vec<Completion>) = group.into_iter().unzip();
            match Completions::write(&self.shared, &self.shared.parts[p], &jobs).await {
                Ok(recorded) => {
                    for (i, ok) in idx.into_iter().zip(recorded) {
                        if let Some(after) = afters[i].take() {
                            out[i] = self.after_completion(&batch[i].0, after, ok).await;
                        }
                    }
                }
                Err(e) => {
                    for i in idx {
                        out[i] = Err(QueueError::Backend(e.to_string()));
                    }
                }
            }
        }
        out
    }

    async fn fail(&self, lease: &Lease, error: &JobError) -> Result<FailOutcome, QueueError> {
        let cfg = &self.shared.cfg;
        self.shared
            .call(&Fail {
                keys: self.keys_of_lease(lease),
                fence: Fence::of(lease)?,
                lane: lease.lane,
                error,
                error_json: serde_json::to_string(error)?,
                delay: cfg.retry.delay(lease.attempt, lease.job_id.as_str()),
                now_ms: now_ms(),
                ttl_ms: ms(cfg.finished_ttl),
            })
            .await
    }

    async fn release(&self, lease: &Lease) -> Result<(), QueueError> {
        self.shared
            .call(&Release {
                keys: self.keys_of_lease(lease),
                fence: Fence::of(lease)?,
                lane: lease.lane,
                now_ms: now_ms(),
                ttl_ms: ms(self.shared.cfg.finished_ttl),
            })
            .await
    }

    async fn reclaim_expired(
        &self,
        lane: DeviceClass,
        consumer: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        let mut out = Vec::new();
        for p in self.sweep(Role::Reclaim) {
            if out.len() >= max {
                break;
            }
            let keys = &self.shared.parts[p];
            let rows = self
                .shared
                .call(&Reclaim {
                    keys,
                    lane,
                    consumer,
                    now_ms: now_ms(),
                    lease_ms: ms(lease),
                    max: max - out.len(),
                })
                .await?;
            out.extend(self.deliveries(keys, lane, consumer, rows).await?);
        }
        Ok(out)
    }
}

impl RedisQueue {
    /// The partition of a lease (its stream's hash tag).
    pub(super) fn keys_of_lease(&self, lease: &Lease) -> &Keys {
        self.shared.keys_of(&lease.job_id)
    }

    /// Turns begun rows into deliveries. A job whose envelope or blobs cannot be read
    /// fails alone (permanently when the data is malformed, as a retryable attempt when
    /// Redis did not answer); the others of the batch are delivered.
    async fn deliveries(
        &self,
        keys: &Keys,
        lane: DeviceClass,
        consumer: &str,
        rows: Vec<Begun>,
    ) -> Result<Vec<Delivery>, QueueError> {
        let mut out = Vec::new();
        for row in rows.into_iter().filter(|r| r.status == 1) {
            let Some(id) = JobId::parse(&row.id) else {
                continue;
            };
            let mut lease = Lease {
                job_id: id.clone(),
                lane,
                attempt: row.attempts,
                consumer: consumer.to_string(),
                entry: format!("{}|{}", row.stream, row.entry),
                results_to: None,
            };
            match self.open_envelope(keys, &row, &mut lease).await {
                Ok((envelope, remote)) => {
                    if row.cancel {
                        tracing::debug!(job = %id, "delivered with cancellation already requested");
                    }
                    out.push(Delivery {
                        lease,
                        envelope: envelope.into(),
                        estimate_s: row.est,
                        remote,
                    });
                }
                Err(error) => {
                    tracing::warn!(job = %id, %error, "cannot start job");
                    if let Err(e) = self.fail(&lease, &error).await {
                        tracing::warn!(job = %id, error = %e, "could not record the failure; the lease will expire");
                    }
                }
            }
        }
        Ok(out)
    }

    /// The delivered job's envelope with its blobs in Redis, and its inputs in object
    /// storage (left for the worker to read: [`Delivery::remote`]), or why it cannot
    /// run; the checked destination of its outputs goes on its lease. Touches Redis
    /// only, so a slow store never holds up a fetch.
    async fn open_envelope(
        &self,
        keys: &Keys,
        row: &Begun,
        lease: &mut Lease,
    ) -> Result<(JobEnvelope, Vec<RemoteInput>), JobError> {
        let id = &lease.job_id;
        let mut env = match row.env.as_deref().map(serde_json::from_str::<JobEnvelope>) {
            Some(Ok(env)) => env,
            Some(Err(e)) => {
                return Err(JobError::permanent(format!(
                    "stored envelope is unreadable: {e}"
                )));
            }
            None => return Err(JobError::permanent("stored envelope is missing")),
        };
        env.id = id.clone();
        env.attempts = row.attempts;
        env.created_us = row.created_us.max(env.created_us);
        let as_job_error = |e| match e {
            BlobError::Malformed(m) => JobError::permanent(m),
            BlobError::Unreachable(m) => JobError::temporary(m),
        };
        let remote = self
            .load_delivered_blobs(keys, &mut env)
            .await
            .map_err(as_job_error)?;
        if let Some(url) = &env.results_to {
            // Checked before the job runs, so a destination it may not write to costs
            // no compute.
            let url = self
                .objects
                .check_writable(url)
                .map_err(|e| JobError::permanent(format!("results_to: {e}")))?;
            lease.results_to = Some(url);
        }
        Ok((env, remote))
    }
}

#[cfg(test)]
mod tests {
    use super::quotas;

    #[test]
    fn quotas_follow_the_weights_and_rotate() {
        let mut c = [0; 3];
        assert_eq!(quotas(&mut c, 10), [6, 3, 1]);
        let mut c = [0; 3];
        let picks: Vec<usize> = (0..10)
            .map(|_| quotas(&mut c, 1).iter().position(|&q| q == 1).unwrap())
            .collect();
        assert_eq!(picks.iter().filter(|&&p| p == 0).count(), 6);
        assert_eq!(picks.iter().filter(|&&p| p == 2).count(), 1);
        assert_eq!(picks[0], 0, "high first");
    }
}
