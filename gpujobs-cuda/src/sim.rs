//! The simulated driver's control interface (feature `cuda`), for tests.
//!
//! When a program built with `--features cuda` runs on the simulated driver
//! (`scripts/cuda-sim.sh`, crate `gpujobs-cuda-sim`) instead of NVIDIA's, the loaded
//! `libcuda.so.1` also exports `gpujobs_sim_*` functions: [`simulator`] finds them with
//! `dlsym` and returns `None` on a real driver. Through them a test reads what the
//! device did ([`Counters`]: bytes each way, copies per host buffer, registrations,
//! launches per kernel, streams, violations), arms faults ([`Fault`]), pauses the
//! device's background thread so a missing synchronisation is deterministic, and
//! registers the CPU twin of a custom kernel ([`Simulator::register_twin`]).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::ffi::{CString, c_char, c_void};

/// What a kernel's CPU twin is given: the launch and device-memory accessors. The
/// layout is the simulator's (`gpujobs-cuda-sim/src/twins/foreign.rs`).
#[repr(C)]
#[derive(Debug)]
pub struct TwinLaunch {
    /// Blocks per grid, x y z.
    pub grid: [u32; 3],
    /// Threads per block, x y z.
    pub block: [u32; 3],
    /// Dynamic shared memory bytes.
    pub shared: u32,
    /// Number of parameters.
    pub nparams: u32,
    params: *const *const u8,
    param_sizes: *const usize,
    memory: *mut c_void,
    read: extern "C" fn(memory: *mut c_void, ptr: u64, dst: *mut u8, len: usize) -> u32,
    write: extern "C" fn(memory: *mut c_void, ptr: u64, src: *const u8, len: usize) -> u32,
    user: *const c_void,
}

/// A CUDA error code a twin returns (`CUDA_ERROR_ILLEGAL_ADDRESS` is 700).
pub type SimError = u32;

/// `CUDA_ERROR_INVALID_VALUE`: a parameter a twin cannot read.
pub const INVALID_VALUE: SimError = 1;

impl TwinLaunch {
    /// Parameter `i`'s bytes, as the launch passed them.
    pub fn param(&self, i: usize) -> Result<&[u8], SimError> {
        if i >= self.nparams as usize {
            return Err(INVALID_VALUE);
        }
        // SAFETY: the simulator passes `nparams` pointers and sizes, alive for the call.
        #[allow(unsafe_code)]
        unsafe {
            let p = *self.params.add(i);
            let n = *self.param_sizes.add(i);
            Ok(std::slice::from_raw_parts(p, n))
        }
    }

    /// Parameter `i` as a `u64` (device pointers too).
    pub fn u64(&self, i: usize) -> Result<u64, SimError> {
        let b = self.param(i)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| INVALID_VALUE)?))
    }

    /// Parameter `i` as a `u32`/`int`.
    pub fn u32(&self, i: usize) -> Result<u32, SimError> {
        let b = self.param(i)?;
        Ok(u32::from_le_bytes(b.try_into().map_err(|_| INVALID_VALUE)?))
    }

    /// Parameter `i` as a `float`.
    pub fn f32(&self, i: usize) -> Result<f32, SimError> {
        self.u32(i).map(f32::from_bits)
    }

    /// `n` floats of device memory at `ptr`.
    pub fn read_f32(&self, ptr: u64, n: usize) -> Result<Vec<f32>, SimError> {
        let mut bytes = vec![0u8; n * 4];
        match (self.read)(self.memory, ptr, bytes.as_mut_ptr(), bytes.len()) {
            0 => Ok(bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()),
            e => Err(e),
        }
    }

    /// Writes floats to device memory at `ptr`.
    pub fn write_f32(&self, ptr: u64, values: &[f32]) -> Result<(), SimError> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        match (self.write)(self.memory, ptr, bytes.as_ptr(), bytes.len()) {
            0 => Ok(()),
            e => Err(e),
        }
    }
}

/// A CPU twin: computes what the kernel computes over the launched grid, or fails with
/// a CUDA error code (an illegal address from `read_f32`/`write_f32`, say).
pub type Twin = fn(&TwinLaunch) -> Result<(), SimError>;

/// The C function the simulator calls: it runs the Rust twin registered with it.
extern "C" fn trampoline(launch: *const TwinLaunch) -> u32 {
    // SAFETY: the simulator passes a launch valid for the call, whose `user` is the
    // `Twin` given to `register_twin` (a plain function pointer).
    #[allow(unsafe_code)]
    let (launch, twin) = unsafe {
        let l = &*launch;
        (l, std::mem::transmute::<*const c_void, Twin>(l.user))
    };
    match std::panic::catch_unwind(|| twin(launch)) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => e,
        Err(_) => 719, // CUDA_ERROR_LAUNCH_FAILED
    }
}

type CTwin = extern "C" fn(*const TwinLaunch) -> u32;

/// A fault the simulator can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `cuMemAlloc` runs out of memory.
    OutOfMemory,
    /// A kernel hits an illegal address (sticky: the context must be reset).
    IllegalAddress,
    /// A kernel times out (sticky).
    LaunchTimeout,
    /// A synchronisation returns without waiting, as if the code had none.
    DropSync,
}

impl Fault {
    fn name(self) -> &'static std::ffi::CStr {
        match self {
            Fault::OutOfMemory => c"oom",
            Fault::IllegalAddress => c"illegal_address",
            Fault::LaunchTimeout => c"launch_timeout",
            Fault::DropSync => c"drop_sync",
        }
    }
}

/// What the simulated device did since the counters were last reset.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct Counters {
    /// Bytes copied host to device.
    pub h2d_bytes: u64,
    /// Bytes copied device to host.
    pub d2h_bytes: u64,
    /// Bytes copied device to device.
    pub d2d_bytes: u64,
    /// Host-to-device copies.
    pub h2d_copies: u64,
    /// Device-to-host copies.
    pub d2h_copies: u64,
    /// Copies whose host side was pageable (staged by the driver).
    pub pageable_copies: u64,
    /// Copies whose host side was pinned or registered.
    pub pinned_copies: u64,
    /// Successful `cuMemHostRegister` calls.
    pub host_registrations: u64,
    /// Successful `cuMemHostUnregister` calls.
    pub host_unregistrations: u64,
    /// Pinned host allocations.
    pub pinned_allocations: u64,
    /// Device allocations.
    pub device_allocations: u64,
    /// Streams created.
    pub streams_created: u64,
    /// The most streams with queued work at once.
    pub max_busy_streams: u64,
    /// Kernels that ran while a copy was queued on another stream.
    pub kernel_copy_overlap: u64,
    /// Synchronisations the `DropSync` fault skipped.
    pub dropped_syncs: u64,
    /// Faults that fired.
    pub faults_fired: u64,
    /// Device bytes allocated now.
    pub device_bytes_in_use: u64,
    /// The most device bytes allocated at once (since the process started).
    pub device_bytes_peak: u64,
    /// Live device allocations.
    pub live_device_allocations: u64,
    /// Copies per host buffer (hex address → count).
    pub copies_per_host_buffer: BTreeMap<String, u64>,
    /// Registrations per host address.
    pub registrations_per_host_buffer: BTreeMap<String, u64>,
    /// Launches per kernel name.
    pub launches: BTreeMap<String, u64>,
    /// Streams that ran work (0 is the legacy default stream).
    pub streams_used: Vec<u64>,
    /// Misuse the simulator caught.
    pub violations: Vec<String>,
}

impl Counters {
    /// Launches of kernel `name`.
    pub fn launches_of(&self, name: &str) -> u64 {
        self.launches.get(name).copied().unwrap_or(0)
    }
}

type CountersFn = unsafe extern "C" fn(*mut u8, usize) -> usize;
type FaultFn = unsafe extern "C" fn(*const c_char, u64, u64) -> u32;
type RegisterFn = unsafe extern "C" fn(*const c_char, Option<CTwin>, *const c_void) -> u32;

/// The simulated driver's control functions.
#[derive(Debug, Clone, Copy)]
pub struct Simulator {
    counters: CountersFn,
    reset: extern "C" fn(),
    fault: FaultFn,
    background: extern "C" fn(i32),
    register: RegisterFn,
}

fn symbol(name: &std::ffi::CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads.
    #[allow(unsafe_code)]
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

/// The simulated driver's controls when the process runs on it; `None` on a real driver.
pub fn simulator() -> Option<Simulator> {
    symbol(c"gpujobs_sim_version")?;
    // SAFETY: each symbol is the simulator's function of exactly this signature
    // (gpujobs-cuda-sim/src/control.rs).
    #[allow(unsafe_code)]
    unsafe {
        Some(Simulator {
            counters: std::mem::transmute::<*mut c_void, CountersFn>(symbol(
                c"gpujobs_sim_counters",
            )?),
            reset: std::mem::transmute::<*mut c_void, extern "C" fn()>(symbol(
                c"gpujobs_sim_reset_counters",
            )?),
            fault: std::mem::transmute::<*mut c_void, FaultFn>(symbol(c"gpujobs_sim_fault")?),
            background: std::mem::transmute::<*mut c_void, extern "C" fn(i32)>(symbol(
                c"gpujobs_sim_set_background",
            )?),
            register: std::mem::transmute::<*mut c_void, RegisterFn>(symbol(
                c"gpujobs_sim_register_twin",
            )?),
        })
    }
}

impl Simulator {
    /// The counters now.
    pub fn counters(&self) -> Counters {
        let mut buf = vec![0u8; 4096];
        loop {
            // SAFETY: `buf` has `buf.len()` writable bytes.
            #[allow(unsafe_code)]
            let n = unsafe { (self.counters)(buf.as_mut_ptr(), buf.len()) };
            if n <= buf.len() {
                buf.truncate(n);
                break;
            }
            buf.resize(n, 0);
        }
        serde_json::from_slice(&buf).unwrap_or_default()
    }

    /// Zeroes the counters.
    pub fn reset_counters(&self) {
        (self.reset)();
    }

    /// Makes `fault` happen `times` times, after `after` matching calls pass.
    pub fn inject(&self, fault: Fault, after: u64, times: u64) {
        // SAFETY: a NUL-terminated name.
        #[allow(unsafe_code)]
        unsafe {
            (self.fault)(fault.name().as_ptr(), after, times);
        }
    }

    /// Pauses (`false`) or resumes the device's background thread: while paused,
    /// queued work runs only when the program synchronises.
    pub fn set_background(&self, on: bool) {
        (self.background)(i32::from(on));
    }

    /// Registers the CPU twin of kernel `name` (a custom kind's own kernel), so the
    /// simulator can run its launches.
    pub fn register_twin(&self, name: &str, twin: Twin) -> Result<(), SimError> {
        let name = CString::new(name).map_err(|_| INVALID_VALUE)?;
        // SAFETY: a NUL-terminated name, the trampoline, and the twin it calls.
        #[allow(unsafe_code)]
        match unsafe { (self.register)(name.as_ptr(), Some(trampoline), twin as *const c_void) } {
            0 => Ok(()),
            e => Err(e),
        }
    }
}
