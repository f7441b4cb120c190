//! Custom GPU job kinds: a user's own kernels run by the same device thread, stream,
//! admission and timing as the built-in kinds.
//!
//! A kind ships its PTX in a [`KernelModule`]; its executor calls
//! [`CudaExecutor::run_custom`] with a closure that gets a [`DeviceContext`]: admit the
//! job's device memory, upload inputs, launch kernels (each argument checked against
//! the kernel's PTX signature, as the built-in launches are), download outputs. The
//! module is loaded once per device; the context records host-to-device, compute and
//! device-to-host times with CUDA events into the [`StageTimes`] every result carries.
//! `examples/custom_gpu_kind.rs` is a whole kind, with the CPU twin that lets it run on
//! the simulated driver.

use super::CudaExecutor;
use super::state::DeviceState;
use crate::ptx;
use cust::event::Event;
use cust::memory::DeviceBuffer;
use gpujobs_core::{HostBuf, JobError, StageTimes};
use std::ffi::c_void;
use std::time::Duration;

/// A kind's PTX: a name (unique per process: modules are cached by it) and the text.
#[derive(Debug, Clone)]
pub struct KernelModule {
    name: String,
    ptx: String,
}

impl KernelModule {
    /// A module from PTX text (`nvcc -ptx`), refused when it has no `.entry`.
    pub fn new(name: impl Into<String>, ptx: impl Into<String>) -> Result<Self, JobError> {
        let (name, ptx) = (name.into(), ptx.into());
        if ptx::entries(&ptx).is_empty() {
            return Err(JobError::permanent(format!(
                "module `{name}` has no .entry: is it PTX text?"
            )));
        }
        Ok(KernelModule { name, ptx })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its kernels and their parameter types (`.u64`, `.f32`, ...).
    pub fn kernels(&self) -> Vec<(String, Vec<String>)> {
        ptx::signatures(&self.ptx)
    }
}

/// An `f32` array in device memory, freed when dropped.
#[derive(Debug)]
pub struct DeviceArray {
    buf: DeviceBuffer<f32>,
    len: usize,
}

impl DeviceArray {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no values.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A kernel argument, checked against the kernel's PTX parameter type at launch.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    /// A device array (a `.u64` pointer parameter).
    Array(&'a DeviceArray),
    /// A `.u64`/`.s64` value.
    U64(u64),
    /// A `.u32`/`.s32` value.
    U32(u32),
    /// A `.s32`/`.u32` value.
    I32(i32),
    /// A `.f32` value.
    F32(f32),
}

impl Arg<'_> {
    /// The value's bits, low bytes first, and the PTX types it may bind to.
    fn bits(&self) -> (u64, &'static [&'static str], &'static str) {
        const WIDE: &[&str] = &[".u64", ".s64", ".b64"];
        const NARROW: &[&str] = &[".u32", ".s32", ".b32"];
        match *self {
            Arg::Array(a) => (a.buf.as_device_ptr().as_raw(), WIDE, "a device array"),
            Arg::U64(v) => (v, WIDE, "a u64"),
            Arg::U32(v) => (u64::from(v), NARROW, "a u32"),
            Arg::I32(v) => (u64::from(v as u32), NARROW, "an i32"),
            Arg::F32(v) => (u64::from(v.to_bits()), &[".f32", ".b32"], "an f32"),
        }
    }
}

/// The device as a custom kind's executor sees it, on the device thread.
pub struct DeviceContext<'a> {
    state: &'a mut DeviceState,
    h2d: Duration,
    d2h: Duration,
    first_launch: Option<Event>,
    compute_end: Option<Event>,
}

impl std::fmt::Debug for DeviceContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceContext")
            .field("device", &self.state.info)
            .finish()
    }
}

impl DeviceContext<'_> {
    /// Refuses a job needing more device memory than the device has (permanent) or
    /// has free now (temporary: the queue retries it later).
    pub fn admit(&mut self, bytes: u64) -> Result<(), JobError> {
        self.state.admit(bytes)
    }

    /// An uninitialised device array of `len` values.
    pub fn alloc(&mut self, len: usize) -> Result<DeviceArray, JobError> {
        Ok(DeviceArray {
            buf: self.state.alloc::<f32>(len)?,
            len,
        })
    }

    /// A device array holding `values` (timed as host-to-device).
    pub fn upload(&mut self, values: &[f32]) -> Result<DeviceArray, JobError> {
        let mut buf = self.state.alloc::<f32>(values.len())?;
        if !values.is_empty() {
            self.h2d += self.state.upload(&mut [(values, &mut buf)])?;
        }
        Ok(DeviceArray {
            buf,
            len: values.len(),
        })
    }

    /// Launches `entry` of `module` on the job stream, loading the module on this
    /// device the first time. Every argument must match the kernel's PTX parameter.
    pub fn launch(
        &mut self,
        module: &KernelModule,
        entry: &str,
        grid: (u32, u32, u32),
        block: (u32, u32, u32),
        shared_bytes: u32,
        args: &[Arg<'_>],
    ) -> Result<(), JobError> {
        let types = ptx::signatures(&module.ptx)
            .into_iter()
            .find(|(name, _)| name == entry)
            .map(|(_, t)| t)
            .ok_or_else(|| {
                JobError::permanent(format!("module `{}` has no kernel `{entry}`", module.name))
            })?;
        if types.len() != args.len() {
            return Err(JobError::permanent(format!(
                "kernel `{entry}` takes {} parameters, the launch passes {}",
                types.len(),
                args.len()
            )));
        }
        let mut values = Vec::with_capacity(args.len());
        for (i, (arg, ty)) in args.iter().zip(&types).enumerate() {
            let (bits, fits, what) = arg.bits();
            if !fits.contains(&ty.as_str()) {
                return Err(JobError::permanent(format!(
                    "kernel `{entry}` parameter {i} is {ty}; the launch passes {what}"
                )));
            }
            values.push(bits);
        }
        self.state.load_custom(&module.name, &module.ptx)?;
        if self.first_launch.is_none() {
            self.first_launch = Some(self.state.mark()?);
        }
        // Each pointer refers to a u64 whose low bytes hold the value (little-endian),
        // so 4-byte parameters read the right bytes.
        let mut ptrs: Vec<*mut c_void> = values
            .iter_mut()
            .map(|v| v as *mut u64 as *mut c_void)
            .collect();
        self.state
            .launch_custom(&module.name, entry, grid, block, shared_bytes, &mut ptrs)?;
        self.compute_end = None;
        Ok(())
    }

    /// Copies the first `len` values of `array` into a pooled host buffer (timed as
    /// device-to-host); waits for everything queued before it.
    pub fn download(&mut self, array: &DeviceArray, len: usize) -> Result<HostBuf, JobError> {
        if len > array.len {
            return Err(JobError::permanent(format!(
                "download of {len} values from an array of {}",
                array.len
            )));
        }
        if self.first_launch.is_some() && self.compute_end.is_none() {
            let end = self.state.mark()?;
            self.compute_end = Some(end);
        }
        let before = self.state.mark()?;
        let (out, host, done) = self.state.download(&array.buf, len)?;
        self.d2h += self.state.between(&before, &done)? + host;
        Ok(out)
    }

    fn finish(self) -> Result<StageTimes, JobError> {
        self.state.sync()?;
        let compute = match (&self.first_launch, &self.compute_end) {
            (Some(a), Some(b)) => self.state.between(a, b)?,
            (Some(a), None) => {
                let end = self.state.mark()?;
                self.state.sync()?;
                self.state.between(a, &end)?
            }
            _ => Duration::ZERO,
        };
        Ok(StageTimes {
            prepare: Duration::ZERO,
            h2d: self.h2d,
            compute,
            d2h: self.d2h,
        })
    }
}

impl CudaExecutor {
    /// Runs a custom kind's device work on this device's thread and stream: `f` gets a
    /// [`DeviceContext`]; the result comes back with the stage times it recorded.
    pub async fn run_custom<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut DeviceContext<'_>) -> Result<R, JobError> + Send + 'static,
    ) -> Result<(R, StageTimes), JobError> {
        self.on_device(move |state| {
            let mut ctx = DeviceContext {
                state,
                h2d: Duration::ZERO,
                d2h: Duration::ZERO,
                first_launch: None,
                compute_end: None,
            };
            let out = f(&mut ctx)?;
            let times = ctx.finish()?;
            Ok((out, times))
        })
        .await
    }
}
