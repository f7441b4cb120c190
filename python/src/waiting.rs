//! Waiting for many jobs at once.

use gpujobs::redis::RedisQueue;
use gpujobs::{Client, ClientError, JobId, JobRecord};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Batches of records being read at once.
const IN_FLIGHT: usize = 8;
/// Most records one read asks for.
const BATCH: usize = 256;

/// Waits for every job of `ids`: on Redis by polling their states together, else one by
/// one. `TimedOut` names the first job still running at the deadline.
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
    // overlaps the waiting instead of following it.
    let mut reads = Reads::new(q.clone(), ids.len());
    let mut backoff = gpujobs::Backoff::new(Duration::from_millis(1), Duration::from_millis(50));
    let mut pending: Vec<usize> = (0..ids.len()).collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        let mut ended = Vec::new();
        for chunk in pending.chunks(1000) {
            let chunk_ids: Vec<JobId> = chunk.iter().map(|&i| ids[i].clone()).collect();
            let states = q.states(&chunk_ids).await?;
            for (&i, s) in chunk.iter().zip(states) {
                match s {
                    Some(s) if !s.is_terminal() => still.push(i),
                    None => return Err(gpujobs::QueueError::NotFound(ids[i].to_string()).into()),
                    Some(_) => ended.push((i, ids[i].clone())),
                }
            }
        }
        for batch in ended.chunks(BATCH) {
            reads.start(batch.to_vec()).await?;
        }
        if still.len() < pending.len() {
            backoff = gpujobs::Backoff::new(Duration::from_millis(1), Duration::from_millis(50));
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ClientError::TimedOut(ids[pending[0]].clone()));
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        tokio::time::sleep(backoff.next_delay().min(left)).await;
    }
    reads.finish().await
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
