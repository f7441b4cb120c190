//! Twins registered at run time by a program (a user's own GPU kind): a C function that
//! gets the launch and reads and writes device memory through callbacks.
//! `gpujobs_cuda::sim` mirrors these types on the Rust side.

use super::Args;
use crate::abi::{CuResult, INVALID_VALUE, SUCCESS};
use crate::memory::Memory;
use std::ffi::c_void;

/// What a foreign twin is given (`#[repr(C)]`, mirrored by `gpujobs_cuda::sim::TwinLaunch`).
#[repr(C)]
#[derive(Debug)]
pub struct TwinLaunch {
    /// Blocks per grid.
    pub grid: [u32; 3],
    /// Threads per block.
    pub block: [u32; 3],
    /// Dynamic shared memory bytes.
    pub shared: u32,
    /// Number of parameters.
    pub nparams: u32,
    /// Each parameter's bytes.
    pub params: *const *const u8,
    /// Each parameter's size.
    pub param_sizes: *const usize,
    /// Opaque: pass back to `read`/`write`.
    pub memory: *mut c_void,
    /// Copies `len` bytes of device memory at `ptr` into `dst`; non-zero on an illegal address.
    pub read: extern "C" fn(memory: *mut c_void, ptr: u64, dst: *mut u8, len: usize) -> u32,
    /// Copies `len` bytes from `src` to device memory at `ptr`; non-zero on an illegal address.
    pub write: extern "C" fn(memory: *mut c_void, ptr: u64, src: *const u8, len: usize) -> u32,
    /// The pointer given at registration, for the twin's own use.
    pub user: *const c_void,
}

/// A foreign twin: returns 0 on success or a CUDA error code.
pub type ForeignFn = extern "C" fn(launch: *const TwinLaunch) -> u32;

extern "C" fn read(memory: *mut c_void, ptr: u64, dst: *mut u8, len: usize) -> u32 {
    // SAFETY: `memory` is the `&mut Memory` `run` passes, alive for the call.
    let m = unsafe { &*(memory as *const Memory) };
    match m.bytes(ptr, len) {
        Ok(b) => {
            // SAFETY: the twin promises `dst` has `len` writable bytes.
            unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), dst, len) };
            SUCCESS
        }
        Err(e) => e,
    }
}

extern "C" fn write(memory: *mut c_void, ptr: u64, src: *const u8, len: usize) -> u32 {
    // SAFETY: as in `read`.
    let m = unsafe { &mut *(memory as *mut Memory) };
    match m.bytes_mut(ptr, len) {
        Ok(b) => {
            // SAFETY: the twin promises `src` has `len` readable bytes.
            unsafe { std::ptr::copy_nonoverlapping(src, b.as_mut_ptr(), len) };
            SUCCESS
        }
        Err(e) => e,
    }
}

/// Runs a foreign twin over a launch.
pub fn run(f: ForeignFn, user: usize, a: &Args<'_>, m: &mut Memory) -> Result<(), CuResult> {
    let ptrs: Vec<*const u8> = a.params.iter().map(|p| p.as_ptr()).collect();
    let sizes: Vec<usize> = a.params.iter().map(Vec::len).collect();
    let launch = TwinLaunch {
        grid: a.grid,
        block: a.block,
        shared: a.shared,
        nparams: u32::try_from(a.params.len()).map_err(|_| INVALID_VALUE)?,
        params: ptrs.as_ptr(),
        param_sizes: sizes.as_ptr(),
        memory: m as *mut Memory as *mut c_void,
        read,
        write,
        user: user as *const c_void,
    };
    match f(&launch) {
        SUCCESS => Ok(()),
        e => Err(e),
    }
}
