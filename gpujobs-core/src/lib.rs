#![doc = include_str!("../README.md")]

// The rooms, each depending only on rooms listed above it (docs/ARCHITECTURE.md):
pub mod buffer;
#[cfg(feature = "testkit")]
pub mod conformance;
pub mod embedded;
pub mod exec;
pub mod io;
pub mod kinds;
pub mod model;
pub mod queue;
pub mod scheduler;
pub mod shutdown;
pub mod worker;

pub use buffer::{BufferPool, HostBuf};
pub use embedded::{EmbeddedBuilder, EmbeddedCluster};
pub use exec::backend::{Backend, DeviceMemory};
pub use exec::executor::{CancelFlag, DynExecutor, ExecContext, Execution, Executor};
pub use exec::registry::Registry;
pub use model::cost::Cost;
pub use model::decision::PlacementDecision;
pub use model::device::{DeviceClass, DeviceInfo, DevicePref};
pub use model::envelope::{JobEnvelope, Priority, WIRE_VERSION};
pub use model::error::{ErrorClass, JobError, QueueError, ValidationError};
pub use model::fingerprint::Fingerprint;
pub use model::graph::{Graph, GraphError};
pub use model::id::JobId;
pub use model::job::{Check, Job, JobOutput};
pub use model::limits::Limits;
pub use model::retry::{Backoff, RetryPolicy};
pub use model::state::{JobRecord, JobResult, JobState};
pub use model::tensor::{Blobs, OutputRef, Tensor, TensorData};
pub use model::timing::{StageTimes, Timings};
pub use queue::client::{Client, ClientError, Finished};
pub use queue::validated::Validated;
pub use queue::{MemoryQueue, MemoryQueueConfig, Queue};
pub use scheduler::cost_model::{CalibratedCostModel, CostModelFile, LinearCost};
pub use scheduler::placement::{
    ClusterFacts, CostModel, EarliestFinish, NominalCostModel, Placement,
};
pub use scheduler::{Scheduler, SchedulerConfig, SchedulerObserver};
pub use shutdown::{Shutdown, ShutdownTrigger, shutdown_channel};
pub use worker::{Outcome, Worker, WorkerConfig, WorkerObserver, WorkerReport};

// The flat module paths of 0.1 (`gpujobs_core::tensor`, `gpujobs_core::jobs`, ...),
// kept so code written against them still builds; new code uses the rooms above.
// CHANGELOG.md says when they go.
#[doc(hidden)]
pub use exec::{backend, executor, registry};
#[doc(hidden)]
pub use io::npy;
#[doc(hidden)]
pub use kinds as jobs;
#[doc(hidden)]
pub use kinds::{filters, reference};
#[doc(hidden)]
pub use model::{
    cost, device, envelope, error, fingerprint, graph, id, job, limits, retry, state, synth,
    tensor, timing,
};
#[doc(hidden)]
pub use queue::client;
#[doc(hidden)]
pub use scheduler::{cost_model, locality, placement, simulate};
#[doc(hidden)]
pub use worker::output_cache;
