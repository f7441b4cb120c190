//! Waiting for many jobs at once.

use gpujobs::model::envelope::now_ms;
use gpujobs::redis::RedisQueue;
use gpujobs::{Client, ClientError, JobId, JobRecord};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Batches of records being read at once.
const IN_FLIGHT: usize = 8;
/// Most records one read asks for.
const BATCH: usize = 256;

/// Waits for every job of `ids`: on Redis by reading which jobs ended from the queue's
/// ended-jobs streams, else one by one. `TimedOut` names the first job still running at
/// the deadline.
pub(crate) async fn wait_all(
    client: Client,
    redis: Option<Arc<RedisQueue>>,
    ids: Vec<JobId>,
    timeout: Duration,
) -> Result<Vec<JobRecord>, ClientError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let Some(q) = redis else {
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            out.push(client.wait(id, left).await?);
        }
        return Ok(out);
    };
    // Records are read as their jobs end, while the others still run: the reading
    // overlaps the waiting instead of following it. Which jobs ended comes from the
    // ended-jobs streams (a few commands per round, however many jobs), after one read
    // of every state (jobs that ended before this call are found there), with a slow
    // poll of the oldest states beneath (entries trimmed from the capped streams).
    let mut reads = Reads::new(q.clone(), ids.len());
    let mut pending = Pending::new(&ids);
    let mut cursor = q.ended_cursor(now_ms().saturating_sub(10_000));
    pending.poll(&q, &mut reads, false).await?;
    let mut polled = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    while !pending.is_empty() {
        let mut ended = Vec::new();
        for (id, _state) in q.ended_since(&mut cursor, 10_000).await? {
            ended.extend(pending.take(&id));
        }
        let progressed = !ended.is_empty();
        for batch in ended.chunks(BATCH) {
            reads.start(batch.to_vec()).await?;
        }
        if polled.elapsed() >= SAFETY_POLL {
            pending.poll(&q, &mut reads, true).await?;
            polled = tokio::time::Instant::now();
        }
        if pending.is_empty() {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ClientError::TimedOut(pending.first()));
        }
        if progressed {
            pause = Duration::from_millis(1);
        } else {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
    reads.finish().await
}

/// How often the oldest pending states are read beneath the ended-jobs streams.
const SAFETY_POLL: Duration = Duration::from_secs(1);

/// The jobs still waited for: where each id is in the caller's list (an id listed twice
/// gets its record in both places), and the order they were given in.
struct Pending {
    places: HashMap<JobId, Vec<usize>>,
    order: Vec<JobId>,
}

impl Pending {
    fn new(ids: &[JobId]) -> Self {
        let mut places: HashMap<JobId, Vec<usize>> = HashMap::new();
        let mut order = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let at = places.entry(id.clone()).or_default();
            if at.is_empty() {
                order.push(id.clone());
            }
            at.push(i);
        }
        Pending { places, order }
    }

    fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    /// The first job still waited for, in the caller's order.
    fn first(&self) -> JobId {
        self.order
            .iter()
            .find(|id| self.places.contains_key(*id))
            .cloned()
            .unwrap_or_else(JobId::new)
    }

    /// Stops waiting for `id`: its places in the caller's list (none if not waited for).
    fn take(&mut self, id: &JobId) -> Vec<(usize, JobId)> {
        self.places
            .remove(id)
            .map(|at| at.into_iter().map(|i| (i, id.clone())).collect())
            .unwrap_or_default()
    }

    /// Reads the states of the pending jobs in order, a chunk at a time, and starts
    /// reading the records of those that ended; with `oldest_only`, stops after the
    /// first chunk that still has running jobs (jobs end roughly in submit order). A
    /// job without a record is an error: it was never submitted, or expired.
    async fn poll(
        &mut self,
        q: &RedisQueue,
        reads: &mut Reads,
        oldest_only: bool,
    ) -> Result<(), ClientError> {
        let places = &self.places;
        self.order.retain(|id| places.contains_key(id));
        let order = std::mem::take(&mut self.order);
        let mut ended = Vec::new();
        for chunk in order.chunks(1000) {
            let states = q.states(chunk).await?;
            let mut running = false;
            for (id, s) in chunk.iter().zip(states) {
                match s {
                    Some(s) if !s.is_terminal() => running = true,
                    None => return Err(gpujobs::QueueError::NotFound(id.to_string()).into()),
                    Some(_) => ended.extend(self.take(id)),
                }
            }
            if running && oldest_only {
                break;
            }
        }
        self.order = order;
        for batch in ended.chunks(BATCH) {
            reads.start(batch.to_vec()).await?;
        }
        Ok(())
    }
}

/// One job's read: its place in the caller's list, its record (`None`: expired), its id.
type Read = (usize, Option<JobRecord>, JobId);

/// Reads of ended jobs' records, a batch per read (`RedisQueue::records`: two
/// pipelined round trips per partition), up to [`IN_FLIGHT`] batches at once, into
/// their places.
struct Reads {
    queue: Arc<RedisQueue>,
    set: JoinSet<Result<Vec<Read>, gpujobs::QueueError>>,
    out: Vec<Option<JobRecord>>,
}

impl Reads {
    fn new(queue: Arc<RedisQueue>, n: usize) -> Self {
        Reads {
            queue,
            set: JoinSet::new(),
            out: vec![None; n],
        }
    }

    /// Starts reading a batch of ended jobs' records (first waiting for a slot).
    async fn start(&mut self, batch: Vec<(usize, JobId)>) -> Result<(), ClientError> {
        while self.set.len() >= IN_FLIGHT {
            self.join_one().await?;
        }
        let q = self.queue.clone();
        self.set.spawn(async move {
            let ids: Vec<JobId> = batch.iter().map(|(_, id)| id.clone()).collect();
            let recs = q.records(&ids).await?;
            Ok(batch
                .into_iter()
                .zip(recs)
                .map(|((i, id), rec)| (i, rec, id))
                .collect())
        });
        Ok(())
    }

    async fn join_one(&mut self) -> Result<(), ClientError> {
        if let Some(done) = self.set.join_next().await {
            let batch = done.map_err(|e| gpujobs::QueueError::Backend(e.to_string()))??;
            for (i, rec, id) in batch {
                let rec = rec.ok_or_else(|| gpujobs::QueueError::NotFound(id.to_string()))?;
                self.out[i] = Some(rec);
            }
        }
        Ok(())
    }

    /// Every record, in order, once all reads are done.
    async fn finish(mut self) -> Result<Vec<JobRecord>, ClientError> {
        while !self.set.is_empty() {
            self.join_one().await?;
        }
        Ok(self.out.into_iter().flatten().collect())
    }
}
