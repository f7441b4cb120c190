#![doc = include_str!("../README.md")]

pub use gpujobs_core as core;
pub use gpujobs_core::*;

pub use gpujobs_cpu as cpu;
pub use gpujobs_cuda as cuda;
#[cfg(feature = "redis")]
pub use gpujobs_queue as redis;

/// The attribute an [`Executor`] implementation needs (`#[gpujobs::async_trait]`), so
/// a crate that adds its own job kind doesn't have to depend on `async-trait` itself.
pub use async_trait::async_trait;

pub mod prelude;
