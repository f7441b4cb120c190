//! The exported driver API: the functions `cust` 0.3.2 calls, with the driver's names
//! and C signatures. Anything else `cust` may reference answers
//! `CUDA_ERROR_NOT_SUPPORTED` (see the list at the end).
#![allow(
    non_snake_case,
    missing_docs,
    unreachable_pub,
    clippy::missing_safety_doc
)]

use crate::abi::{self, *};
use crate::faults::Fault;
use crate::state::{DEVICE_NAME, Function, Sim, code, sim};
use crate::stream::{EventRec, HostSource, Launch, Op, Queue, TwinKind};
use crate::twins;
use std::cell::Cell;
use std::ffi::{CStr, c_char, c_void};

type Handle = *mut c_void;

thread_local! {
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// The primary context's handle (one device).
const CONTEXT: usize = 0xC0_7E47;

fn h(p: Handle) -> usize {
    p as usize
}

unsafe fn out<T>(p: *mut T, v: T) -> CuResult {
    if p.is_null() {
        return INVALID_VALUE;
    }
    // SAFETY: the caller passes a valid out-pointer.
    unsafe { p.write(v) };
    SUCCESS
}

fn with(f: impl FnOnce(&mut Sim) -> Result<(), CuResult>) -> CuResult {
    let mut s = sim();
    if !s.initialised {
        return NOT_INITIALIZED;
    }
    code(s.check().and_then(|()| f(&mut s)))
}

#[unsafe(no_mangle)]
pub extern "C" fn cuInit(flags: u32) -> CuResult {
    if flags != 0 {
        return INVALID_VALUE;
    }
    sim().initialised = true;
    Sim::start_background();
    SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDriverGetVersion(v: *mut i32) -> CuResult {
    unsafe { out(v, 13000) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuGetErrorString(e: CuResult, s: *mut *const c_char) -> CuResult {
    let text: &'static CStr = match CStr::from_bytes_with_nul(leak_nul(abi::describe(e))) {
        Ok(c) => c,
        Err(_) => c"unknown error (simulated driver)",
    };
    unsafe { out(s, text.as_ptr()) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuGetErrorName(e: CuResult, s: *mut *const c_char) -> CuResult {
    let text: &'static CStr = match CStr::from_bytes_with_nul(leak_nul(abi::name(e))) {
        Ok(c) => c,
        Err(_) => c"CUDA_ERROR_UNKNOWN",
    };
    unsafe { out(s, text.as_ptr()) }
}

/// A NUL-terminated copy of a static string, made once per string.
fn leak_nul(s: &'static str) -> &'static [u8] {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static CACHE: Mutex<Option<HashMap<&'static str, &'static [u8]>>> = Mutex::new(None);
    let mut c = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    c.get_or_insert_with(HashMap::new)
        .entry(s)
        .or_insert_with(|| Box::leak(format!("{s}\0").into_bytes().into_boxed_slice()))
}

// --- devices ---------------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGetCount(n: *mut i32) -> CuResult {
    if !sim().initialised {
        return NOT_INITIALIZED;
    }
    unsafe { out(n, 1) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGet(d: *mut i32, ordinal: i32) -> CuResult {
    if ordinal != 0 {
        return INVALID_DEVICE;
    }
    unsafe { out(d, 0) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGetName(name: *mut c_char, len: i32, dev: i32) -> CuResult {
    if dev != 0 {
        return INVALID_DEVICE;
    }
    if name.is_null() || len <= 0 {
        return INVALID_VALUE;
    }
    let bytes = DEVICE_NAME.as_bytes();
    let n = bytes.len().min(len as usize - 1);
    // SAFETY: the caller's buffer has `len` bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), name as *mut u8, n);
        *name.add(n) = 0;
    }
    SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceTotalMem_v2(bytes: *mut usize, dev: i32) -> CuResult {
    if dev != 0 {
        return INVALID_DEVICE;
    }
    let total = sim().memory.capacity() as usize;
    unsafe { out(bytes, total) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGetAttribute(v: *mut i32, attrib: u32, dev: i32) -> CuResult {
    use abi::attribute::*;
    if dev != 0 {
        return INVALID_DEVICE;
    }
    let value = match attrib {
        MAX_THREADS_PER_BLOCK | MAX_BLOCK_DIM_X | MAX_BLOCK_DIM_Y => 1024,
        MAX_BLOCK_DIM_Z => 64,
        MAX_GRID_DIM_X => i32::MAX,
        MAX_GRID_DIM_Y | MAX_GRID_DIM_Z => 65535,
        MAX_SHARED_MEMORY_PER_BLOCK => SHARED_LIMIT as i32,
        WARP_SIZE => 32,
        MULTIPROCESSOR_COUNT => 8,
        COMPUTE_CAPABILITY_MAJOR => 9,
        COMPUTE_CAPABILITY_MINOR => 0,
        _ => 0,
    };
    unsafe { out(v, value) }
}

// --- contexts --------------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDevicePrimaryCtxRetain(ctx: *mut Handle, dev: i32) -> CuResult {
    if dev != 0 {
        return INVALID_DEVICE;
    }
    if !sim().initialised {
        return NOT_INITIALIZED;
    }
    unsafe { out(ctx, CONTEXT as Handle) }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuDevicePrimaryCtxRelease_v2(_dev: i32) -> CuResult {
    SUCCESS
}

#[unsafe(no_mangle)]
pub extern "C" fn cuDevicePrimaryCtxReset_v2(dev: i32) -> CuResult {
    if dev != 0 {
        return INVALID_DEVICE;
    }
    sim().reset();
    SUCCESS
}

#[unsafe(no_mangle)]
pub extern "C" fn cuDevicePrimaryCtxSetFlags_v2(_dev: i32, _flags: u32) -> CuResult {
    SUCCESS
}

#[unsafe(no_mangle)]
pub extern "C" fn cuCtxSetCurrent(ctx: Handle) -> CuResult {
    CURRENT.with(|c| c.set(h(ctx)));
    SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxGetCurrent(ctx: *mut Handle) -> CuResult {
    unsafe { out(ctx, CURRENT.with(Cell::get) as Handle) }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuCtxPushCurrent_v2(ctx: Handle) -> CuResult {
    cuCtxSetCurrent(ctx)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxPopCurrent_v2(ctx: *mut Handle) -> CuResult {
    let prev = CURRENT.with(|c| c.replace(0));
    if !ctx.is_null() {
        unsafe { ctx.write(prev as Handle) };
    }
    SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxCreate_v2(ctx: *mut Handle, _flags: u32, dev: i32) -> CuResult {
    unsafe { cuDevicePrimaryCtxRetain(ctx, dev) }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuCtxDestroy_v2(_ctx: Handle) -> CuResult {
    SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxGetApiVersion(_ctx: Handle, v: *mut u32) -> CuResult {
    unsafe { out(v, 13000) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxGetDevice(d: *mut i32) -> CuResult {
    unsafe { out(d, 0) }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuCtxSynchronize() -> CuResult {
    with(|s| {
        if s.faults.fires(Fault::DropSync) {
            s.counters.dropped_syncs += 1;
            return Ok(());
        }
        s.drain_all()
    })
}

// --- modules ---------------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuModuleLoadData(module: *mut Handle, image: *const c_void) -> CuResult {
    if image.is_null() {
        return INVALID_VALUE;
    }
    // SAFETY: a PTX image is NUL-terminated text.
    let text = unsafe { CStr::from_ptr(image as *const c_char) };
    let Ok(text) = text.to_str() else {
        return INVALID_IMAGE;
    };
    let entries = match crate::ptx::parse(text) {
        Ok(e) => e,
        Err(e) => return e,
    };
    let mut handle = 0;
    let r = with(|s| {
        s.modules.push(Some(entries));
        handle = s.modules.len();
        Ok(())
    });
    if r != SUCCESS {
        return r;
    }
    unsafe { out(module, handle as Handle) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuModuleLoadDataEx(
    module: *mut Handle,
    image: *const c_void,
    _n: u32,
    _options: *mut c_void,
    _values: *mut *mut c_void,
) -> CuResult {
    unsafe { cuModuleLoadData(module, image) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuModuleGetFunction(
    f: *mut Handle,
    module: Handle,
    name: *const c_char,
) -> CuResult {
    if name.is_null() {
        return INVALID_VALUE;
    }
    // SAFETY: the caller passes a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned();
    let mut handle = 0;
    let r = with(|s| {
        let m = h(module).checked_sub(1).ok_or(INVALID_HANDLE)?;
        let entries = s
            .modules
            .get(m)
            .and_then(Option::as_ref)
            .ok_or(INVALID_HANDLE)?;
        let entry = entries
            .iter()
            .find(|e| e.name == name)
            .cloned()
            .ok_or(NOT_FOUND)?;
        s.functions.push(Function { module: m, entry });
        handle = s.functions.len();
        Ok(())
    });
    if r != SUCCESS {
        return r;
    }
    unsafe { out(f, handle as Handle) }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuModuleUnload(module: Handle) -> CuResult {
    let mut s = sim();
    match h(module).checked_sub(1).and_then(|m| s.modules.get_mut(m)) {
        Some(slot @ Some(_)) => {
            *slot = None;
            SUCCESS
        }
        _ => INVALID_HANDLE,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuFuncGetAttribute(v: *mut i32, attrib: u32, _f: Handle) -> CuResult {
    // CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0; everything else reads as 0.
    unsafe { out(v, if attrib == 0 { 1024 } else { 0 }) }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuFuncSetCacheConfig(_f: Handle, _config: u32) -> CuResult {
    SUCCESS
}

// --- memory ----------------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemAlloc_v2(ptr: *mut u64, bytes: usize) -> CuResult {
    if bytes == 0 {
        return INVALID_VALUE;
    }
    let mut p = 0;
    let r = with(|s| {
        if s.faults.fires(Fault::Oom) {
            s.counters.faults_fired += 1;
            return Err(OUT_OF_MEMORY);
        }
        p = s.memory.alloc(bytes as u64)?;
        s.counters.device_allocations += 1;
        Ok(())
    });
    if r != SUCCESS {
        return r;
    }
    unsafe { out(ptr, p) }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemFree_v2(ptr: u64) -> CuResult {
    let mut s = sim();
    // Frees still free after a sticky error (cust's drops ignore the result).
    let _ = s.drain_all();
    code(s.memory.free(ptr).and_then(|()| s.check()))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemGetInfo_v2(free: *mut usize, total: *mut usize) -> CuResult {
    let (f, t) = {
        let s = sim();
        if let Err(e) = s.check() {
            return e;
        }
        (
            (s.memory.capacity() - s.memory.used()) as usize,
            s.memory.capacity() as usize,
        )
    };
    unsafe {
        let r = out(free, f);
        if r != SUCCESS {
            return r;
        }
        out(total, t)
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemAllocHost_v2(pp: *mut *mut c_void, bytes: usize) -> CuResult {
    let mut p = 0;
    let r = with(|s| {
        p = s.host.alloc(bytes)?;
        s.counters.pinned_allocations += 1;
        Ok(())
    });
    if r != SUCCESS {
        return r;
    }
    unsafe { out(pp, p as *mut c_void) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemHostAlloc(
    pp: *mut *mut c_void,
    bytes: usize,
    _flags: u32,
) -> CuResult {
    unsafe { cuMemAllocHost_v2(pp, bytes) }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemFreeHost(p: *mut c_void) -> CuResult {
    let mut s = sim();
    if let Some((start, crate::host::Kind::Allocated)) = s.host.find(p as usize, 1) {
        let len = s.host.len_of(start);
        s.before_host_release(start, len, "cuMemFreeHost freed pinned memory");
    }
    code(s.host.free(p as usize))
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemHostRegister_v2(p: *mut c_void, bytes: usize, _flags: u32) -> CuResult {
    with(|s| {
        s.host.register(p as usize, bytes)?;
        s.counters.host_registrations += 1;
        *s.counters
            .registrations_per_host_buffer
            .entry(p as usize)
            .or_default() += 1;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemHostUnregister(p: *mut c_void) -> CuResult {
    let mut s = sim();
    if let Some((start, crate::host::Kind::Registered)) = s.host.find(p as usize, 1) {
        let len = s.host.len_of(start);
        s.before_host_release(start, len, "cuMemHostUnregister unregistered");
    }
    let r = s.host.unregister(p as usize);
    if r.is_ok() {
        s.counters.host_unregistrations += 1;
    }
    code(r)
}

impl Sim {
    /// Queues a host-to-device copy: pinned memory is read when it runs, pageable
    /// memory is staged now.
    fn h2d(
        &mut self,
        dst: u64,
        src: *const c_void,
        len: usize,
        stream: usize,
    ) -> Result<(), CuResult> {
        if src.is_null() {
            return Err(INVALID_VALUE);
        }
        let s = self.stream_index(stream)?;
        self.memory.bytes(dst, len).map_err(|_| INVALID_VALUE)?;
        let (source, buffer) = match self.host.find(src as usize, len) {
            Some((start, _)) => (HostSource::Pinned(src as usize), start),
            None => {
                // SAFETY: the caller's buffer has `len` readable bytes.
                let bytes = unsafe { std::slice::from_raw_parts(src as *const u8, len) }.to_vec();
                (HostSource::Staged(bytes), src as usize)
            }
        };
        self.enqueue(
            s,
            Op::H2D {
                dst,
                src: source,
                buffer,
                len,
            },
        )
    }

    /// Queues a device-to-host copy; into pageable memory it completes before returning.
    fn d2h(
        &mut self,
        dst: *mut c_void,
        src: u64,
        len: usize,
        stream: usize,
    ) -> Result<(), CuResult> {
        if dst.is_null() {
            return Err(INVALID_VALUE);
        }
        let s = self.stream_index(stream)?;
        self.memory.bytes(src, len).map_err(|_| INVALID_VALUE)?;
        let known = self.host.find(dst as usize, len);
        let buffer = known.map_or(dst as usize, |(start, _)| start);
        self.enqueue(
            s,
            Op::D2H {
                dst: dst as usize,
                buffer,
                src,
                len,
            },
        )?;
        if known.is_none() {
            self.drain(s)
        } else {
            Ok(())
        }
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemcpyHtoD_v2(dst: u64, src: *const c_void, len: usize) -> CuResult {
    with(|s| {
        s.h2d(dst, src, len, 0)?;
        s.drain_all()
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemcpyDtoH_v2(dst: *mut c_void, src: u64, len: usize) -> CuResult {
    with(|s| {
        s.d2h(dst, src, len, 0)?;
        s.drain_all()
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemcpyDtoD_v2(dst: u64, src: u64, len: usize) -> CuResult {
    with(|s| {
        s.enqueue(0, Op::D2D { dst, src, len })?;
        s.drain_all()
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemcpyHtoDAsync_v2(
    dst: u64,
    src: *const c_void,
    len: usize,
    stream: Handle,
) -> CuResult {
    with(|s| s.h2d(dst, src, len, h(stream)))
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemcpyDtoHAsync_v2(
    dst: *mut c_void,
    src: u64,
    len: usize,
    stream: Handle,
) -> CuResult {
    with(|s| s.d2h(dst, src, len, h(stream)))
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemcpyDtoDAsync_v2(dst: u64, src: u64, len: usize, stream: Handle) -> CuResult {
    with(|s| {
        let i = s.stream_index(h(stream))?;
        s.memory.bytes(src, len).map_err(|_| INVALID_VALUE)?;
        s.memory.bytes(dst, len).map_err(|_| INVALID_VALUE)?;
        s.enqueue(i, Op::D2D { dst, src, len })
    })
}

fn memset(dst: u64, value: Vec<u8>, count: usize, stream: usize, sync: bool) -> CuResult {
    with(|s| {
        let i = s.stream_index(stream)?;
        s.memory
            .bytes(dst, value.len() * count)
            .map_err(|_| INVALID_VALUE)?;
        s.enqueue(i, Op::Memset { dst, value, count })?;
        if sync { s.drain_all() } else { Ok(()) }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemsetD8_v2(dst: u64, v: u8, n: usize) -> CuResult {
    memset(dst, vec![v], n, 0, true)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemsetD16_v2(dst: u64, v: u16, n: usize) -> CuResult {
    memset(dst, v.to_le_bytes().to_vec(), n, 0, true)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemsetD32_v2(dst: u64, v: u32, n: usize) -> CuResult {
    memset(dst, v.to_le_bytes().to_vec(), n, 0, true)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemsetD8Async(dst: u64, v: u8, n: usize, stream: Handle) -> CuResult {
    memset(dst, vec![v], n, h(stream), false)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemsetD16Async(dst: u64, v: u16, n: usize, stream: Handle) -> CuResult {
    memset(dst, v.to_le_bytes().to_vec(), n, h(stream), false)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemsetD32Async(dst: u64, v: u32, n: usize, stream: Handle) -> CuResult {
    memset(dst, v.to_le_bytes().to_vec(), n, h(stream), false)
}

// --- streams and events ----------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuStreamCreate(stream: *mut Handle, _flags: u32) -> CuResult {
    let mut handle = 0;
    let r = with(|s| {
        s.streams.push(Some(Queue::new()));
        s.counters.streams_created += 1;
        handle = s.streams.len() - 1;
        Ok(())
    });
    if r != SUCCESS {
        return r;
    }
    unsafe { out(stream, handle as Handle) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuStreamCreateWithPriority(
    stream: *mut Handle,
    flags: u32,
    _priority: i32,
) -> CuResult {
    unsafe { cuStreamCreate(stream, flags) }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuStreamDestroy_v2(stream: Handle) -> CuResult {
    let mut s = sim();
    let i = h(stream);
    if i == 0 || s.stream_index(i).is_err() {
        return INVALID_HANDLE;
    }
    // Queued work still completes after a destroy.
    let r = s.drain(i);
    s.streams[i] = None;
    code(r)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuStreamSynchronize(stream: Handle) -> CuResult {
    with(|s| {
        let i = s.stream_index(h(stream))?;
        if s.faults.fires(Fault::DropSync) {
            s.counters.dropped_syncs += 1;
            s.counters.faults_fired += 1;
            return Ok(());
        }
        s.drain(i)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuStreamQuery(stream: Handle) -> CuResult {
    with(|s| {
        let i = s.stream_index(h(stream))?;
        if s.streams[i].as_ref().is_some_and(|q| !q.is_empty()) {
            Err(NOT_READY)
        } else {
            Ok(())
        }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuStreamWaitEvent(stream: Handle, event: Handle, _flags: u32) -> CuResult {
    with(|s| {
        let i = s.stream_index(h(stream))?;
        let e = s.event_index(h(event))?;
        let generation = s.events[e].as_ref().map_or(0, |ev| ev.pending);
        s.enqueue(
            i,
            Op::Wait {
                event: e,
                generation,
            },
        )
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuEventCreate(event: *mut Handle, _flags: u32) -> CuResult {
    let mut handle = 0;
    let r = with(|s| {
        s.events.push(Some(EventRec::default()));
        handle = s.events.len();
        Ok(())
    });
    if r != SUCCESS {
        return r;
    }
    unsafe { out(event, handle as Handle) }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuEventDestroy_v2(event: Handle) -> CuResult {
    let mut s = sim();
    match s.event_index(h(event)) {
        Ok(e) => {
            // Records still queued complete first: streams waiting on them still wait.
            let slot = &mut s.events[e];
            if slot.as_ref().is_some_and(|ev| ev.done < ev.pending) {
                if let Some(ev) = slot.as_mut() {
                    ev.destroyed = true;
                }
            } else {
                *slot = None;
            }
            SUCCESS
        }
        Err(e) => e,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuEventRecord(event: Handle, stream: Handle) -> CuResult {
    with(|s| {
        let i = s.stream_index(h(stream))?;
        let e = s.event_index(h(event))?;
        let generation = {
            let ev = s.events[e].as_mut().ok_or(INVALID_HANDLE)?;
            ev.pending += 1;
            ev.pending
        };
        s.enqueue(
            i,
            Op::Record {
                event: e,
                generation,
            },
        )
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuEventSynchronize(event: Handle) -> CuResult {
    with(|s| {
        let e = s.event_index(h(event))?;
        if s.faults.fires(Fault::DropSync) {
            s.counters.dropped_syncs += 1;
            s.counters.faults_fired += 1;
            return Ok(());
        }
        s.drain_event(e)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuEventQuery(event: Handle) -> CuResult {
    with(|s| {
        let e = s.event_index(h(event))?;
        match &s.events[e] {
            Some(ev) if ev.done < ev.pending => Err(NOT_READY),
            _ => Ok(()),
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuEventElapsedTime(ms: *mut f32, start: Handle, end: Handle) -> CuResult {
    let mut value = 0f32;
    let r = with(|s| {
        let (a, b) = (s.event_index(h(start))?, s.event_index(h(end))?);
        let times = |i: usize| s.events[i].as_ref().map(|e| (e.pending, e.done, e.at));
        match (times(a), times(b)) {
            (Some((pa, da, Some(ta))), Some((pb, db, Some(tb)))) if da == pa && db == pb => {
                value = if tb >= ta {
                    (tb - ta).as_secs_f32() * 1e3
                } else {
                    -((ta - tb).as_secs_f32() * 1e3)
                };
                Ok(())
            }
            (Some((0, ..)), _) | (_, Some((0, ..))) => Err(INVALID_HANDLE),
            _ => Err(NOT_READY),
        }
    });
    if r != SUCCESS {
        return r;
    }
    unsafe { out(ms, value) }
}

// --- launches --------------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuLaunchKernel(
    f: Handle,
    gx: u32,
    gy: u32,
    gz: u32,
    bx: u32,
    by: u32,
    bz: u32,
    shared: u32,
    stream: Handle,
    params: *mut *mut c_void,
    extra: *mut *mut c_void,
) -> CuResult {
    with(|s| {
        if !extra.is_null() {
            return Err(NOT_SUPPORTED);
        }
        let func = h(f)
            .checked_sub(1)
            .and_then(|i| s.functions.get(i))
            .ok_or(INVALID_HANDLE)?;
        if s.modules
            .get(func.module)
            .and_then(Option::as_ref)
            .is_none()
        {
            return Err(INVALID_HANDLE);
        }
        let entry = func.entry.clone();
        let threads = u64::from(bx) * u64::from(by) * u64::from(bz);
        if gx == 0
            || gy == 0
            || gz == 0
            || threads == 0
            || threads > 1024
            || bz > 64
            || gy > 65535
            || gz > 65535
        {
            return Err(INVALID_VALUE);
        }
        if shared > SHARED_LIMIT {
            return Err(INVALID_VALUE);
        }
        if params.is_null() && !entry.params.is_empty() {
            return Err(INVALID_VALUE);
        }
        let values: Vec<Vec<u8>> = entry
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                // SAFETY: `params` has one pointer per kernel parameter (the PTX
                // signature), each to a value of that parameter's size.
                let ptr = unsafe { *params.add(i) } as *const u8;
                if ptr.is_null() {
                    return Err(INVALID_VALUE);
                }
                Ok(unsafe { std::slice::from_raw_parts(ptr, p.size) }.to_vec())
            })
            .collect::<Result<_, _>>()?;
        let twin = match twins::builtin(&entry.name) {
            Some(t) if t.params == entry.params.len() => TwinKind::Builtin(t),
            _ => match s.foreign.get(&entry.name) {
                Some(&(f, user)) => TwinKind::Foreign(f, user),
                None => {
                    let what = format!(
                        "kernel {} has no CPU twin: the simulated driver cannot run it (register one with gpujobs_cuda::sim)",
                        entry.name
                    );
                    eprintln!("gpujobs-cuda-sim: {what}");
                    s.counters.violations.push(what);
                    return Err(NOT_SUPPORTED);
                }
            },
        };
        let i = s.stream_index(h(stream))?;
        s.enqueue(
            i,
            Op::Launch(Box::new(Launch {
                name: entry.name,
                grid: [gx, gy, gz],
                block: [bx, by, bz],
                shared,
                params: values,
                twin,
            })),
        )
    })
}

/// Driver functions `cust` references that the simulator does not implement: each
/// answers `CUDA_ERROR_NOT_SUPPORTED`, so a program that starts using one fails loudly.
macro_rules! not_supported {
    ($($name:ident),* $(,)?) => {$(
        #[unsafe(no_mangle)]
        pub extern "C" fn $name() -> CuResult {
            eprintln!(concat!("gpujobs-cuda-sim: ", stringify!($name), " is not simulated"));
            NOT_SUPPORTED
        }
    )*};
}

not_supported!(
    cuMemAdvise,
    cuLinkAddData_v2,
    cuCtxSetSharedMemConfig,
    cuCtxSetLimit,
    cuCtxSetCacheConfig,
    cuCtxGetStreamPriorityRange,
    cuCtxGetSharedMemConfig,
    cuCtxGetLimit,
    cuCtxGetFlags,
    cuCtxGetCacheConfig,
    cuMemcpy2D_v2,
    cuMemPrefetchAsync,
    cuGraphGetNodes,
    cuGraphGetEdges,
    cuGraphDebugDotPrint,
    cuArrayDestroy,
    cuTexObjectGetResourceViewDesc,
    cuTexObjectGetResourceDesc,
    cuTexObjectDestroy,
    cuTexObjectCreate,
    cuSurfObjectGetResourceDesc,
    cuSurfObjectDestroy,
    cuSurfObjectCreate,
    cuStreamGetPriority,
    cuStreamGetFlags,
    cuOccupancyMaxPotentialBlockSize,
    cuOccupancyMaxActiveBlocksPerMultiprocessor,
    cuOccupancyAvailableDynamicSMemPerBlock,
    cuModuleLoad,
    cuModuleGetGlobal_v2,
    cuMemcpyHtoA_v2,
    cuMemcpyAtoH_v2,
    cuMemFreeAsync,
    cuMemAllocPitch,
    cuMemAllocManaged,
    cuMemAllocAsync,
    cuLinkDestroy,
    cuLinkCreate_v2,
    cuLinkComplete,
    cuLaunchHostFunc,
    cuImportExternalMemory,
    cuGraphNodeGetType,
    cuGraphKernelNodeGetParams,
    cuGraphDestroy,
    cuGraphCreate,
    cuGraphAddKernelNode,
    cuFuncSetSharedMemConfig,
    cuExternalMemoryGetMappedBuffer,
    cuDestroyExternalMemory,
    cuArray3DGetDescriptor_v2,
    cuArray3DCreate_v2,
);
