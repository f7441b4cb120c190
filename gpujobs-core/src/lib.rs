#![doc = include_str!("../README.md")]

mod admission;
pub mod backend;
pub mod buffer;
pub mod client;
#[cfg(feature = "testkit")]
pub mod conformance;
pub mod cost;
pub mod cost_model;
pub mod device;
pub mod embedded;
pub mod envelope;
pub mod error;
pub mod executor;
pub mod filters;
pub mod fingerprint;
pub mod graph;
mod graph_inputs;
pub mod id;
pub mod job;
pub mod jobs;
pub mod limits;
pub mod locality;
pub mod npy;
pub mod output_cache;
pub mod placement;
pub mod queue;
pub mod reference;
pub mod registry;
pub mod retry;
pub mod scheduler;
pub mod shutdown;
pub mod simulate;
pub mod state;
pub mod synth;
pub mod tensor;
pub mod timing;
pub mod worker;

pub use backend::{Backend, DeviceMemory};
pub use buffer::{BufferPool, HostBuf};
pub use client::{Client, ClientError, Finished};
pub use cost::Cost;
pub use cost_model::{CalibratedCostModel, CostModelFile, LinearCost};
pub use device::{DeviceClass, DeviceInfo, DevicePref};
pub use embedded::{EmbeddedBuilder, EmbeddedCluster};
pub use envelope::{JobEnvelope, Priority, WIRE_VERSION};
pub use error::{ErrorClass, JobError, QueueError, ValidationError};
pub use executor::{CancelFlag, DynExecutor, ExecContext, Execution, Executor};
pub use fingerprint::Fingerprint;
pub use graph::{Graph, GraphError};
pub use id::JobId;
pub use job::{Check, Job, JobOutput};
pub use limits::Limits;
pub use placement::{
    ClusterFacts, CostModel, EarliestFinish, NominalCostModel, Placement, PlacementDecision,
};
pub use queue::{MemoryQueue, MemoryQueueConfig, Queue};
pub use registry::Registry;
pub use retry::{Backoff, RetryPolicy};
pub use scheduler::{Scheduler, SchedulerConfig, SchedulerObserver};
pub use shutdown::{Shutdown, ShutdownTrigger, shutdown_channel};
pub use state::{JobRecord, JobResult, JobState};
pub use tensor::{Blobs, OutputRef, Tensor, TensorData};
pub use timing::{StageTimes, Timings};
pub use worker::{Outcome, Worker, WorkerConfig, WorkerObserver, WorkerReport};
