//! One module per command.

pub mod bench;
pub mod calibrate;
pub mod dashboard;
pub mod demo;
pub mod doctor;
#[cfg(feature = "cuda")]
pub mod gpu_check;
pub mod healthcheck;
pub mod run;
pub mod scheduler;
pub mod shell;
pub mod status;
pub mod submit;
pub mod wait;
pub mod watch;
pub mod worker;
