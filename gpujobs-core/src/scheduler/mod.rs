//! The scheduler: the loop that takes submitted jobs and places each on a lane
//! ([`service`]); the placement policy ([`placement`]: earliest finish over the lanes'
//! backlog and a cost model); calibrated cost models ([`cost_model`]); placement by
//! locality, which sends a graph job to the worker holding its inputs ([`locality`]);
//! and a simulator that replays a workload through a policy ([`simulate`]).

pub mod cost_model;
pub mod locality;
pub mod placement;
pub mod service;
pub mod simulate;

pub use service::{Scheduler, SchedulerConfig, SchedulerObserver, SchedulerReport};
