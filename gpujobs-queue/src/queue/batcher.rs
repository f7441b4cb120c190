//! Group commit: calls that arrive while a batch is being written are written together
//! by the next one, one script call per partition. A lone call goes out at once (no
//! timer), so batching costs latency only when there is a queue of work to amortise it
//! over. Submits and completions go through one each.

use super::Shared;
use crate::keys::Keys;
use crate::scripts::{Complete, Completion, NewJob, Submit, ms};
use gpujobs_core::QueueError;
use gpujobs_core::model::envelope::now_ms;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most items written by one script call.
const MAX_BATCH: usize = 256;

/// What a batcher writes: items of one partition in one call, one answer per item.
pub(crate) trait BatchWrite: Send + Sync + 'static {
    type Item: Send + 'static;
    type Answer: Send + 'static;
    fn write(
        shared: &Shared,
        keys: &Keys,
        items: &[Self::Item],
    ) -> impl Future<Output = Result<Vec<Self::Answer>, QueueError>> + Send;
}

/// Completions: `true` when recorded, `false` when the lease was lost.
pub(crate) struct Completions;

impl BatchWrite for Completions {
    type Item = Completion;
    type Answer = bool;
    async fn write(
        shared: &Shared,
        keys: &Keys,
        items: &[Completion],
    ) -> Result<Vec<bool>, QueueError> {
        shared
            .call(&Complete {
                keys,
                now_ms: now_ms(),
                ttl_ms: ms(shared.cfg.finished_ttl),
                keep: shared
                    .cfg
                    .keep_succeeded
                    .div_ceil(shared.parts.len() as u64),
                jobs: items,
            })
            .await
    }
}

/// Submits: `true` when new, `false` when the id already existed.
pub(crate) struct Submits;

impl BatchWrite for Submits {
    type Item = NewJob;
    type Answer = bool;
    async fn write(
        shared: &Shared,
        keys: &Keys,
        items: &[NewJob],
    ) -> Result<Vec<bool>, QueueError> {
        shared
            .call(&Submit {
                keys,
                now_ms: now_ms(),
                high_water: shared.cfg.high_water,
                wake: &shared.wake,
                by_ref: shared.entry_form.by_ref(shared).await,
                jobs: items,
            })
            .await
    }
}

struct Pending<W: BatchWrite> {
    partition: u32,
    item: W::Item,
    reply: oneshot::Sender<Result<W::Answer, QueueError>>,
}

/// The handle's side of a batching task (which ends when the handle is dropped).
pub(crate) struct Batcher<W: BatchWrite> {
    tx: mpsc::UnboundedSender<Pending<W>>,
}

impl<W: BatchWrite> Batcher<W> {
    pub(crate) fn start(shared: Arc<Shared>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run::<W>(shared, rx));
        Batcher { tx }
    }

    /// Writes one item with whatever else is waiting.
    pub(crate) async fn write(
        &self,
        partition: u32,
        item: W::Item,
    ) -> Result<W::Answer, QueueError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Pending {
                partition,
                item,
                reply,
            })
            .map_err(|_| QueueError::Backend("the queue handle is shutting down".into()))?;
        rx.await
            .map_err(|_| QueueError::Backend("the batching task stopped".into()))?
    }
}

async fn run<W: BatchWrite>(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Pending<W>>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let by_part = shared.by_partition(batch.into_iter().map(|p| (p.partition, p)));
        for (i, group) in by_part.into_iter().enumerate() {
            if group.is_empty() {
                continue;
            }
            let (items, replies): (Vec<W::Item>, Vec<_>) =
                group.into_iter().map(|p| (p.item, p.reply)).unzip();
            match W::write(&shared, &shared.parts[i], &items).await {
                Ok(answers) => {
                    for (reply, a) in replies.into_iter().zip(answers) {
                        let _ = reply.send(Ok(a));
                    }
                }
                Err(e) => {
                    // Every caller of the batch gets the error, of the same kind (a full
                    // queue must read as full, not as a broken connection).
                    for reply in replies {
                        let _ = reply.send(Err(same_kind(&e)));
                    }
                }
            }
        }
    }
}

/// A copy of a batch's error for each of its callers (`QueueError` is not `Clone`: it
/// can hold a serde error), keeping the variants callers act on.
fn same_kind(e: &QueueError) -> QueueError {
    match e {
        QueueError::Full(m) => QueueError::Full(m.clone()),
        QueueError::LeaseLost(m) => QueueError::LeaseLost(m.clone()),
        QueueError::Misconfigured(m) => QueueError::Misconfigured(m.clone()),
        QueueError::Invalid(v) => QueueError::Invalid(v.clone()),
        other => QueueError::Backend(other.to_string()),
    }
}
