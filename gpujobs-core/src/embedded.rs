//! An in-process cluster: the embedded queue, a scheduler and workers on tokio tasks.
//!
//! This is how a service uses gpujobs without Redis, and what `gpujobs demo` and
//! `gpujobs run` start. Must be started inside a tokio runtime.

use crate::exec::registry::Registry;
use crate::queue::client::Client;
use crate::queue::{MemoryQueue, MemoryQueueConfig, Queue};
use crate::scheduler::placement::{EarliestFinish, Placement};
use crate::scheduler::{Scheduler, SchedulerConfig, SchedulerReport};
use crate::shutdown::{ShutdownTrigger, shutdown_channel};
use crate::worker::{Worker, WorkerConfig, WorkerReport, WorkerStats};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Builds an [`EmbeddedCluster`].
pub struct EmbeddedBuilder {
    queue_config: MemoryQueueConfig,
    placement: Arc<dyn Placement>,
    kinds: Registry,
    workers: Vec<(WorkerConfig, Arc<Registry>)>,
    scheduler: SchedulerConfig,
}

impl Default for EmbeddedBuilder {
    fn default() -> Self {
        EmbeddedBuilder {
            queue_config: MemoryQueueConfig::default(),
            placement: Arc::new(EarliestFinish::default()),
            kinds: Registry::with_builtin_kinds(),
            workers: Vec::new(),
            scheduler: SchedulerConfig::default(),
        }
    }
}

impl EmbeddedBuilder {
    /// Queue settings (retry backoff, TTLs).
    pub fn queue_config(mut self, c: MemoryQueueConfig) -> Self {
        self.queue_config = c;
        self
    }

    /// The placement policy (default: earliest finish with nominal costs).
    pub fn placement(mut self, p: Arc<dyn Placement>) -> Self {
        self.placement = p;
        self
    }

    /// Scheduler settings.
    pub fn scheduler_config(mut self, c: SchedulerConfig) -> Self {
        self.scheduler = c;
        self
    }

    /// Adds a worker running `registry`'s executors; its kinds become known to the
    /// scheduler and the client.
    pub fn worker(mut self, config: WorkerConfig, registry: Arc<Registry>) -> Self {
        self.kinds.absorb_kinds(&registry);
        self.workers.push((config, registry));
        self
    }

    /// Starts the scheduler and the workers.
    pub fn start(self) -> EmbeddedCluster {
        let queue = Arc::new(MemoryQueue::new(self.queue_config));
        let dyn_queue: Arc<dyn Queue> = queue.clone();
        let kinds = Arc::new(self.kinds);
        let (trigger, shutdown) = shutdown_channel();
        let limits = self.scheduler.limits;
        let scheduler = Scheduler::new(
            dyn_queue.clone(),
            kinds.clone(),
            self.placement,
            self.scheduler,
        );
        let scheduler = tokio::spawn(scheduler.run(shutdown.clone()));
        let mut workers = Vec::new();
        let mut stats = Vec::new();
        for (config, registry) in self.workers {
            let worker = Worker::new(dyn_queue.clone(), registry, config);
            stats.push(worker.stats());
            workers.push(tokio::spawn(worker.run(shutdown.clone())));
        }
        EmbeddedCluster {
            client: Client::new(dyn_queue, kinds).with_limits(limits),
            queue,
            trigger,
            scheduler,
            workers,
            stats,
        }
    }
}

/// A running in-process cluster.
pub struct EmbeddedCluster {
    client: Client,
    queue: Arc<MemoryQueue>,
    trigger: ShutdownTrigger,
    scheduler: JoinHandle<SchedulerReport>,
    workers: Vec<JoinHandle<WorkerReport>>,
    stats: Vec<Arc<WorkerStats>>,
}

impl EmbeddedCluster {
    /// A builder with the built-in kinds and no workers.
    pub fn builder() -> EmbeddedBuilder {
        EmbeddedBuilder::default()
    }

    /// The client to submit with.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The queue.
    pub fn queue(&self) -> &Arc<MemoryQueue> {
        &self.queue
    }

    /// Waits until every worker of the cluster has announced itself (so the first
    /// placement decision sees all of them), at most `within`; whether they all did.
    pub async fn wait_for_workers(&self, within: std::time::Duration) -> bool {
        let want = self.workers.len();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let live = <dyn crate::queue::Queue>::workers(self.queue.as_ref())
                .await
                .map(|w| w.len())
                .unwrap_or(0);
            if live >= want {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    /// Live counters of each worker, in the order they were added.
    pub fn worker_stats(&self) -> &[Arc<WorkerStats>] {
        &self.stats
    }

    /// Stops fetching, lets in-flight jobs finish within each worker's grace period,
    /// and returns what the scheduler and workers did.
    pub async fn shutdown(self) -> (SchedulerReport, Vec<WorkerReport>) {
        self.trigger.trigger();
        let sched = self.scheduler.await.unwrap_or_default();
        let mut reports = Vec::new();
        for w in self.workers {
            reports.push(w.await.unwrap_or_default());
        }
        (sched, reports)
    }
}
