//! What a job is, wherever it runs: ids, device classes, tensors and their blobs, the
//! envelope a job travels in, the [`Job`](job::Job) trait, limits, fingerprints, job
//! records and states, timings, cost estimates, placement decisions, graphs (outputs as
//! inputs), retry policies, seeded synthetic data, and the errors of all of these.
//!
//! The model depends on no other room but [`crate::buffer`] (tensors hold host
//! buffers); every other room depends on it.

pub mod cost;
pub mod decision;
pub mod device;
pub mod envelope;
pub mod error;
pub mod fingerprint;
pub mod graph;
pub mod id;
pub mod job;
pub mod limits;
pub mod retry;
pub mod state;
pub mod synth;
pub mod tensor;
pub mod tensor_json;
pub mod timing;
