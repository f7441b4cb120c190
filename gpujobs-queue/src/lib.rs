#![doc = include_str!("../README.md")]

mod codec;
mod config;
mod connection;
pub mod keys;
mod objects;
mod queue;
mod scripts;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use config::{RedisConfig, redact};
pub use objects::ObjectsConfig;
pub use queue::{Counts, Diagnosis, EndedCursor, RECORD_LISTPACK_VALUE, RedisQueue, history};
