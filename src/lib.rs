#![doc = include_str!("../README.md")]

pub use gpujobs_core as core;
pub use gpujobs_core::*;

pub use gpujobs_cpu as cpu;
pub use gpujobs_cuda as cuda;
#[cfg(feature = "redis")]
pub use gpujobs_queue as redis;
