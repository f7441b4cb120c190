//! Host buffers registered for DMA in place (`cuMemHostRegister`), once per buffer.
//!
//! Buffers from a [`gpujobs_core::BufferPool`] are page-aligned and recycled, so the
//! same memory carries job after job's inputs and outputs: registering it once lets the
//! device copy straight from and into it, with no staging copy on the host. A
//! registration must not outlive its memory: gpujobs-core calls [`release`] (installed
//! with `set_release_hook`) just before a region goes back to the OS, and it
//! unregisters every registration inside it, from whatever thread drops the memory.
//! Registrations are portable (valid in every context), so one table serves all
//! devices.

use cust::sys;
use std::collections::BTreeMap;
use std::ffi::c_void;
use std::sync::Mutex;

/// Registered ranges: start → (bytes, the context that registered it).
static REGISTERED: Mutex<BTreeMap<usize, (usize, usize)>> = Mutex::new(BTreeMap::new());

fn table() -> std::sync::MutexGuard<'static, BTreeMap<usize, (usize, usize)>> {
    REGISTERED.lock().unwrap_or_else(|p| p.into_inner())
}

/// A driver call's failure: its code and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    /// The `CUresult` code.
    pub(crate) code: u32,
    /// `cuGetErrorName`'s text.
    pub(crate) name: String,
}

fn check(r: sys::CUresult) -> Result<(), Refused> {
    if r == sys::cudaError_enum::CUDA_SUCCESS {
        return Ok(());
    }
    let mut name: *const std::ffi::c_char = std::ptr::null();
    // SAFETY: cuGetErrorName fills a pointer to a static string (or leaves it null).
    #[allow(unsafe_code)]
    let name = unsafe {
        sys::cuGetErrorName(r, &mut name);
        if name.is_null() {
            String::from("CUDA_ERROR_UNKNOWN")
        } else {
            std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned()
        }
    };
    Err(Refused {
        code: r as u32,
        name,
    })
}

/// Installs [`release`] as gpujobs-core's release hook (once per process).
pub(crate) fn install() {
    let _ = gpujobs_core::buffer::set_release_hook(release);
}

/// Makes sure `[start, start + bytes)` is registered; `ctx` is the calling thread's
/// current context (raw). Returns whether this call registered it. A registration of
/// another size inside the range (memory reused with another layout) is replaced.
pub(crate) fn ensure(ctx: usize, start: usize, bytes: usize) -> Result<bool, Refused> {
    let mut t = table();
    if let Some((&s, &(len, _))) = t.range(..=start).next_back()
        && s == start
        && len == bytes
    {
        return Ok(false);
    }
    let stale: Vec<usize> = t
        .range(..start + bytes)
        .filter(|(s, (len, _))| **s + *len > start)
        .map(|(s, _)| *s)
        .collect();
    for s in stale {
        t.remove(&s);
        // SAFETY: `s` was registered by us and is still mapped (inside a live buffer).
        #[allow(unsafe_code)]
        let _ = unsafe { sys::cuMemHostUnregister(s as *mut c_void) };
    }
    // SAFETY: the range is a live page-aligned region of host memory, unregistered by
    // `release` before it is unmapped.
    #[allow(unsafe_code)]
    let r = check(unsafe {
        sys::cuMemHostRegister_v2(
            start as *mut c_void,
            bytes,
            sys::CU_MEMHOSTREGISTER_PORTABLE,
        )
    });
    match r {
        Ok(()) => {}
        // Registered by a context whose table entry a reset made us forget.
        Err(e) if e.name == "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED" => {}
        Err(e) => return Err(e),
    }
    t.insert(start, (bytes, ctx));
    Ok(true)
}

/// The release hook: unregisters every registration inside `[start, start + bytes)`.
/// Runs on the thread dropping the memory, which may have no current context: the
/// registering context is made current around the call and the previous one restored.
fn release(start: usize, bytes: usize) {
    let mut t = table();
    let inside: Vec<(usize, usize)> = t
        .range(start..start + bytes)
        .map(|(s, (_, ctx))| (*s, *ctx))
        .collect();
    for (s, ctx) in inside {
        t.remove(&s);
        // SAFETY: plain driver calls on a range we registered and a context we hold
        // (the primary context stays retained while its device thread lives; after a
        // reset the registration is gone and the call fails harmlessly).
        #[allow(unsafe_code)]
        unsafe {
            let mut prev: sys::CUcontext = std::ptr::null_mut();
            let _ = sys::cuCtxGetCurrent(&mut prev);
            let _ = sys::cuCtxSetCurrent(ctx as sys::CUcontext);
            let _ = sys::cuMemHostUnregister(s as *mut c_void);
            let _ = sys::cuCtxSetCurrent(prev);
        }
    }
}

/// Forgets registrations made in a context that was reset (the reset dropped them).
pub(crate) fn forget_context(ctx: usize) {
    table().retain(|_, (_, c)| *c != ctx);
}
