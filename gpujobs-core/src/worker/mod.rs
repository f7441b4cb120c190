//! The worker: the loop that fetches jobs of one lane, runs them in its slots, keeps
//! their leases alive and records results ([`service`]); how many jobs it runs at once
//! (`slots`); how it finds a graph job's inputs (`graph_inputs`: its own cache, the
//! queue, or running the producer again); and the bounded cache of outputs it keeps and
//! advertises in heartbeats ([`output_cache`]).

mod graph_inputs;
pub mod output_cache;
pub mod service;
mod slots;

pub use crate::model::id::unique_worker_id;
pub use service::{
    DEFAULT_CACHE_BYTES, DEFAULT_INPUT_WAIT, Outcome, Worker, WorkerConfig, WorkerObserver,
    WorkerReport, WorkerStats,
};
