//! Running a job on a device: the [`Executor`](executor::Executor) trait, the
//! [`Registry`](registry::Registry) that maps kind names to executors, and
//! [`Backend`](backend::Backend), what a device backend (CPU, CUDA) offers a worker.

pub mod backend;
pub mod executor;
pub mod registry;
