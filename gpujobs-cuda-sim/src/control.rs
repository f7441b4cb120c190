//! The simulator's own functions, found by tests with `dlsym` (through
//! `gpujobs_cuda::sim`): counters, faults, the background thread, foreign twins.
//! A real driver has none of them, which is how a program tells it runs on the
//! simulator.
#![allow(missing_docs)]

use crate::abi::{CuResult, INVALID_VALUE, SUCCESS};
use crate::faults::Fault;
use crate::state::sim;
use crate::twins::foreign::ForeignFn;
use std::ffi::{CStr, c_char};

/// The control interface's version; its presence says "simulated driver".
#[unsafe(no_mangle)]
pub extern "C" fn gpujobs_sim_version() -> u32 {
    1
}

/// Writes the counters as JSON into `buf` (up to `cap` bytes, no NUL) and returns their
/// full length: call again with a larger buffer when it is larger than `cap`.
///
/// # Safety
/// `buf` is null or has `cap` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gpujobs_sim_counters(buf: *mut u8, cap: usize) -> usize {
    let json = {
        let s = sim();
        s.counters
            .to_json(s.memory.used(), s.memory.peak(), s.memory.live())
    };
    if !buf.is_null() && json.len() <= cap {
        // SAFETY: the caller's buffer has `cap` bytes.
        unsafe { std::ptr::copy_nonoverlapping(json.as_ptr(), buf, json.len()) };
    }
    json.len()
}

/// Zeroes the counters (violations included).
#[unsafe(no_mangle)]
pub extern "C" fn gpujobs_sim_reset_counters() {
    sim().counters = Default::default();
}

/// Arms fault `kind` (`oom`, `illegal_address`, `launch_timeout`, `drop_sync`) to fire
/// `times` times after `after` matching calls pass.
///
/// # Safety
/// `kind` is null or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gpujobs_sim_fault(
    kind: *const c_char,
    after: u64,
    times: u64,
) -> CuResult {
    if kind.is_null() {
        return INVALID_VALUE;
    }
    // SAFETY: the caller passes a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(kind) }.to_string_lossy();
    match Fault::parse(&name) {
        Some(f) => {
            sim().faults.arm(f, after, times);
            SUCCESS
        }
        None => INVALID_VALUE,
    }
}

/// Pauses (0) or resumes (1) the background thread; while paused, queued work runs
/// only at synchronisation points, which makes a missing synchronisation
/// deterministic in a test.
#[unsafe(no_mangle)]
pub extern "C" fn gpujobs_sim_set_background(on: i32) {
    sim().paused = on == 0;
}

/// Registers a CPU twin for kernel `name` (a user's own kind's kernel); `user` is
/// handed back to it in every launch.
///
/// # Safety
/// `name` is null or a NUL-terminated string; `twin` follows the `TwinLaunch` contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gpujobs_sim_register_twin(
    name: *const c_char,
    twin: Option<ForeignFn>,
    user: *const std::ffi::c_void,
) -> CuResult {
    let (false, Some(twin)) = (name.is_null(), twin) else {
        return INVALID_VALUE;
    };
    // SAFETY: the caller passes a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned();
    sim().foreign.insert(name, (twin, user as usize));
    SUCCESS
}
