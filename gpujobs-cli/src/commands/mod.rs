//! One module per command.

pub mod demo;
#[cfg(feature = "cuda")]
pub mod gpu_check;
pub mod run;
