//! Group commit of completions: results that arrive while a batch is being recorded
//! are recorded together by the next one, one script call per partition. An idle
//! worker's single completion goes out at once (no timer), so batching costs latency
//! only when there is a queue of results to amortise it over.

use super::Shared;
use crate::scripts::{Complete, Completion, Fence, ms};
use gpujobs_core::QueueError;
use gpujobs_core::envelope::now_ms;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most completions recorded by one script call.
const MAX_BATCH: usize = 256;

struct Pending {
    partition: u32,
    completion: Completion,
    reply: oneshot::Sender<Result<bool, QueueError>>,
}

/// The handle's side of the batching task (which ends when the handle is dropped).
pub(crate) struct Completer {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Completer {
    pub(crate) fn start(shared: Arc<Shared>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(shared, rx));
        Completer { tx }
    }

    /// Records one result; `Ok(false)` when the lease was lost.
    pub(crate) async fn complete(
        &self,
        partition: u32,
        fence: &Fence<'_>,
        result_json: String,
    ) -> Result<bool, QueueError> {
        let (reply, rx) = oneshot::channel();
        let pending = Pending {
            partition,
            completion: Completion::new(fence, result_json),
            reply,
        };
        self.tx
            .send(pending)
            .map_err(|_| QueueError::Backend("the queue handle is shutting down".into()))?;
        rx.await
            .map_err(|_| QueueError::Backend("the completion task stopped".into()))?
    }
}

async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let mut by_part: Vec<Vec<Pending>> = shared.parts.iter().map(|_| Vec::new()).collect();
        for p in batch {
            let i = (p.partition as usize).min(by_part.len() - 1);
            by_part[i].push(p);
        }
        for (i, group) in by_part.into_iter().enumerate() {
            if group.is_empty() {
                continue;
            }
            let (jobs, replies): (Vec<Completion>, Vec<_>) =
                group.into_iter().map(|p| (p.completion, p.reply)).unzip();
            let call = Complete {
                keys: &shared.parts[i],
                now_ms: now_ms(),
                ttl_ms: ms(shared.cfg.finished_ttl),
                jobs: &jobs,
            };
            match shared.call(&call).await {
                Ok(done) => {
                    for (reply, ok) in replies.into_iter().zip(done) {
                        let _ = reply.send(Ok(ok));
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(QueueError::Backend(e.to_string())));
                    }
                }
            }
        }
    }
}
