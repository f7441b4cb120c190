//! A simulated CUDA driver: a `libcuda.so.1` that implements the part of the driver API
//! `cust` uses, so the real `gpujobs-cuda` code runs unchanged on a machine without a
//! GPU. Test infrastructure only: it is never a backend, it names itself
//! "simulated" wherever a device name appears, and no timing from it is a measurement.
//!
//! What it makes testable:
//! - **memory** ([`memory`]): device pointers are handles into a bounded arena at
//!   non-canonical addresses, so a host dereference faults and out-of-memory is real;
//!   pinned and registered host memory is tracked ([`host`]);
//! - **deferred execution** ([`stream`]): asynchronous copies and launches are queued per
//!   stream and run later, at synchronisation points or by a background thread in a
//!   seeded random order that respects stream order and event waits, so a missing
//!   synchronisation gives a wrong result instead of passing by luck;
//! - **kernels** ([`ptx`], [`twins`]): a module's `.entry` signatures come from its PTX;
//!   a launch decodes its parameters by that signature and runs the kernel's CPU twin
//!   over the grid it was launched with; a kernel without a twin fails loudly;
//! - **counters and faults** ([`counters`], [`faults`]), read and set by tests through
//!   the `gpujobs_sim_*` functions ([`control`]).
//!
//! Build it with `scripts/cuda-sim.sh`, which prints the folder to use as
//! `CUDA_LIBRARY_PATH` (and, with `/lib64`, as `LD_LIBRARY_PATH`).
#![allow(unsafe_code)] // the whole crate is a C ABI over raw pointers

pub mod abi;
pub mod control;
pub mod counters;
mod driver;
pub mod faults;
pub mod host;
pub mod memory;
pub mod ptx;
pub mod state;
pub mod stream;
pub mod twins;
