//! Everything one device owns, living on its device thread: the context, the loaded
//! modules, the job stream, pinned staging memory, and the SGEMM choices.

use crate::CudaError;
use crate::kernels::{self, Module};
use crate::ptx;
use cust::context::Context;
use cust::device::{Device, DeviceAttribute};
use cust::error::CudaError as DriverError;
use cust::event::{Event, EventFlags};
use cust::memory::{AsyncCopyDestination, DeviceBuffer, LockedBuffer};
use cust::stream::{Stream, StreamFlags};
use gpujobs_core::model::tensor::Values;
use gpujobs_core::{BufferPool, DeviceClass, DeviceInfo, HostBuf, JobError, Tensor, TensorData};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Number of CUDA devices, initialising the driver.
pub(crate) fn device_count() -> Result<u32, CudaError> {
    cust::init(cust::CudaFlags::empty()).map_err(|e| match e {
        DriverError::NoDevice => CudaError::NoDevice,
        other => CudaError::NoDriver(other.to_string()),
    })?;
    match Device::num_devices() {
        Ok(0) | Err(DriverError::NoDevice) => Err(CudaError::NoDevice),
        Ok(n) => Ok(n),
        Err(e) => Err(CudaError::NoDriver(e.to_string())),
    }
}

/// Errors after which the context cannot be used any more.
fn is_sticky(e: DriverError) -> bool {
    matches!(
        e,
        DriverError::IllegalAddress
            | DriverError::LaunchFailed
            | DriverError::LaunchTimeout
            | DriverError::HardwareStackError
            | DriverError::IllegalInstruction
            | DriverError::MisalignedAddress
            | DriverError::InvalidAddressSpace
            | DriverError::InvalidProgramCounter
            | DriverError::AssertError
            | DriverError::EccUncorrectable
            | DriverError::ContextIsDestroyed
    )
}

/// A device's state; fields drop in order, the context last.
pub(crate) struct DeviceState {
    pub(crate) info: DeviceInfo,
    pub(crate) sms: u32,
    modules: HashMap<Module, cust::module::Module>,
    /// Custom kinds' modules, by name, loaded on first use.
    custom: HashMap<String, cust::module::Module>,
    pub(crate) stream: Stream,
    /// Outputs kept in device memory for the jobs that read them (pipeline only).
    pub(crate) resident: super::resident::Resident,
    /// Most bytes `resident` may hold: a quarter of the device's memory.
    resident_bound: u64,
    /// A second stream, made on first use by the pipeline to overlap chunks.
    pub(crate) side: Option<Stream>,
    staging: Option<LockedBuffer<f32>>,
    /// Fastest SGEMM variant per shape class, found by timing (see `matmul`).
    pub(crate) sgemm_choice: HashMap<(u32, u32, u32, bool), usize>,
    broken: bool,
    /// Where downloaded outputs land: recycled, pre-faulted host buffers.
    pool: BufferPool,
    _context: Context,
}

impl DeviceState {
    /// Opens device `ordinal`: retains its primary context (current on this thread),
    /// loads every module and creates the job stream. Outputs go into `pool`'s buffers.
    pub(crate) fn open(ordinal: u32, pool: BufferPool) -> Result<Self, CudaError> {
        let drv = |doing: &str| {
            let doing = doing.to_string();
            move |e: DriverError| CudaError::Driver {
                doing: doing.clone(),
                message: e.to_string(),
            }
        };
        device_count()?;
        let device = Device::get_device(ordinal).map_err(drv("opening the device"))?;
        let context = Context::new(device).map_err(drv("creating the context"))?;
        let name = device.name().map_err(drv("reading the device name"))?;
        let total = device
            .total_memory()
            .map_err(drv("reading device memory"))? as u64;
        let attr = |a| device.get_attribute(a).unwrap_or(0);
        let (major, minor) = (
            attr(DeviceAttribute::ComputeCapabilityMajor),
            attr(DeviceAttribute::ComputeCapabilityMinor),
        );
        let sms = attr(DeviceAttribute::MultiprocessorCount).max(1) as u32;
        let mut modules = HashMap::new();
        for m in Module::ALL {
            modules.insert(m, load_module(m)?);
        }
        let stream =
            Stream::new(StreamFlags::NON_BLOCKING, None).map_err(drv("creating a stream"))?;
        let info = DeviceInfo {
            class: DeviceClass::Gpu,
            name: format!(
                "{name} (sm_{major}{minor}, {sms} SMs, {:.1} GiB)",
                total as f64 / (1u64 << 30) as f64
            ),
            ordinal,
        };
        Ok(DeviceState {
            info,
            sms,
            modules,
            custom: HashMap::new(),
            stream,
            resident: Default::default(),
            resident_bound: total / 4,
            side: None,
            staging: None,
            sgemm_choice: HashMap::new(),
            broken: false,
            pool,
            _context: context,
        })
    }

    /// The context's raw handle (for the registration table).
    pub(crate) fn context_raw(&self) -> usize {
        self._context.as_raw() as usize
    }

    /// The pool outputs are downloaded into.
    pub(crate) fn pool(&self) -> &BufferPool {
        &self.pool
    }

    /// Makes sure the side stream exists.
    pub(crate) fn ensure_side(&mut self) -> Result<(), JobError> {
        if self.side.is_none() {
            let s = Stream::new(StreamFlags::NON_BLOCKING, None)
                .map_err(|e| self.err("creating a second stream", e))?;
            self.side = Some(s);
        }
        Ok(())
    }

    /// Registers `buf`'s memory for DMA in place, once per buffer (see `pinning`);
    /// `false` when it cannot be (an adopted `Vec`, not our page-aligned memory).
    pub(crate) fn pin(&mut self, buf: &HostBuf) -> Result<bool, JobError> {
        let Some((start, bytes)) = buf.dma_range() else {
            return Ok(false);
        };
        match super::pinning::ensure(self.context_raw(), start, bytes) {
            Ok(_) => Ok(true),
            Err(e) => Err(JobError::temporary(format!(
                "CUDA error while registering {bytes} bytes of host memory for DMA on {}: {} ({})",
                self.info, e.name, e.code
            ))),
        }
    }

    /// Resets the primary context (after a sticky error) and opens the device again.
    pub(crate) fn reopen(ordinal: u32, pool: BufferPool) -> Result<Self, CudaError> {
        let device = Device::get_device(ordinal).map_err(|e| CudaError::Driver {
            doing: "finding the device".into(),
            message: e.to_string(),
        })?;
        // SAFETY: the previous state, and with it every object of the context, has been
        // dropped on this thread, the only one that uses the device.
        #[allow(unsafe_code)]
        unsafe {
            let _ = Context::reset(&device);
        }
        Self::open(ordinal, pool)
    }

    /// Whether a sticky error has made the context unusable.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }

    /// Turns a driver error into a job error, remembering sticky ones.
    pub(crate) fn err(&mut self, doing: &str, e: DriverError) -> JobError {
        if is_sticky(e) {
            self.broken = true;
        }
        let msg = format!("CUDA error while {doing} on {}: {e}", self.info);
        match e {
            DriverError::OutOfMemory => JobError::temporary(format!(
                "out of device memory while {doing} on {}",
                self.info
            )),
            DriverError::InvalidValue | DriverError::LaunchOutOfResources => {
                JobError::permanent(msg)
            }
            _ => JobError::temporary(msg),
        }
    }

    /// Free and total device memory.
    pub(crate) fn memory_info(&mut self) -> Result<(u64, u64), JobError> {
        match cust::memory::mem_get_info() {
            Ok((free, total)) => Ok((free as u64, total as u64)),
            Err(e) => Err(self.err("reading memory info", e)),
        }
    }

    /// Admission: refuses a job that can never fit (permanent), and one that does not
    /// fit now (temporary: the queue retries it later with backoff).
    pub(crate) fn admit(&mut self, bytes: u64) -> Result<(), JobError> {
        let (mut free, total) = self.memory_info()?;
        // Kept outputs go before a job is refused for lack of memory.
        while bytes > free && bytes <= total / 100 * 95 && self.resident.evict_one().is_some() {
            free = self.memory_info()?.0;
        }
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        if bytes > total / 100 * 95 {
            return Err(JobError::permanent(format!(
                "needs {:.2} GiB of device memory; {} has {:.2} GiB",
                gib(bytes),
                self.info,
                gib(total)
            )));
        }
        if bytes > free {
            return Err(JobError::temporary(format!(
                "needs {:.2} GiB of device memory, {:.2} GiB free now",
                gib(bytes),
                gib(free)
            )));
        }
        Ok(())
    }

    /// An uninitialised device buffer of `n` values (at least one, so pointers are valid).
    pub(crate) fn alloc<T: cust::memory::DeviceCopy>(
        &mut self,
        n: usize,
    ) -> Result<DeviceBuffer<T>, JobError> {
        // SAFETY: every buffer is fully written (by a copy or a kernel) before it is read.
        #[allow(unsafe_code)]
        let r = unsafe { DeviceBuffer::uninitialized(n.max(1)) };
        r.map_err(|e| self.err("allocating device memory", e))
    }

    /// The module holding `m`'s kernels.
    pub(crate) fn module(&self, m: Module) -> &cust::module::Module {
        &self.modules[&m]
    }

    /// A job's output tensor from its downloaded values; with the pipeline on, `dev`
    /// (the output's device copy) is kept for the jobs that read it next.
    pub(crate) fn output(
        &mut self,
        shape: Vec<usize>,
        data: HostBuf,
        dev: DeviceBuffer<f32>,
    ) -> Result<Tensor, JobError> {
        let values: Values = data.into();
        if crate::pipeline_enabled() {
            self.resident.insert(&values, dev, self.resident_bound);
        }
        Ok(Tensor::from_values(shape, values)?)
    }

    /// Loads a custom kind's module on this device once.
    pub(crate) fn load_custom(&mut self, name: &str, ptx: &str) -> Result<(), JobError> {
        if !self.custom.contains_key(name) {
            let module = cust::module::Module::from_ptx(ptx, &[])
                .map_err(|e| self.err(&format!("loading the PTX of module `{name}`"), e))?;
            self.custom.insert(name.to_string(), module);
        }
        Ok(())
    }

    /// Launches a loaded custom module's kernel on the job stream with prepared
    /// argument pointers (checked by the caller against the PTX signature).
    pub(crate) fn launch_custom(
        &mut self,
        module: &str,
        entry: &str,
        grid: (u32, u32, u32),
        block: (u32, u32, u32),
        shared: u32,
        args: &mut [*mut std::ffi::c_void],
    ) -> Result<(), JobError> {
        let result = match self.custom.get(module) {
            None => {
                return Err(JobError::permanent(format!(
                    "module `{module}` is not loaded"
                )));
            }
            Some(m) => match m.get_function(entry) {
                // SAFETY: the caller checked each argument against the PTX parameter
                // types; device pointers refer to arrays alive until the job's end.
                #[allow(unsafe_code)]
                Ok(function) => unsafe { self.stream.launch(&function, grid, block, shared, args) },
                Err(e) => Err(e),
            },
        };
        result.map_err(|e| self.err(&format!("launching {entry}"), e))
    }

    /// Pinned host memory of at least `n` values, reused across jobs.
    fn staging(&mut self, n: usize) -> Result<&mut LockedBuffer<f32>, JobError> {
        if self.staging.as_ref().is_none_or(|s| s.len() < n) {
            self.staging = None;
            let size = n.max(1 << 20).next_power_of_two();
            // SAFETY: staging memory is always written before it is read.
            #[allow(unsafe_code)]
            let buf = unsafe { LockedBuffer::uninitialized(size) };
            let buf = buf.map_err(|e| self.err("allocating pinned host memory", e))?;
            self.staging = Some(buf);
        }
        self.staging
            .as_mut()
            .ok_or_else(|| JobError::temporary("no staging buffer"))
    }

    /// A new event recorded on the job stream now.
    pub(crate) fn mark(&mut self) -> Result<Event, JobError> {
        let e = Event::new(EventFlags::DEFAULT).map_err(|e| self.err("creating an event", e))?;
        e.record(&self.stream)
            .map_err(|e| self.err("recording an event", e))?;
        Ok(e)
    }

    /// Waits for everything queued on the job stream.
    pub(crate) fn sync(&mut self) -> Result<(), JobError> {
        self.stream
            .synchronize()
            .map_err(|e| self.err("synchronising the stream", e))
    }

    /// Time between two recorded events (after they completed).
    pub(crate) fn between(&mut self, start: &Event, end: &Event) -> Result<Duration, JobError> {
        let ms = end
            .elapsed_time_f32(start)
            .map_err(|e| self.err("reading event times", e))?;
        Ok(Duration::from_secs_f64(f64::from(ms.max(0.0)) / 1e3))
    }

    /// Copies host slices to device buffers through pinned staging memory, with
    /// asynchronous copies on the job stream, and waits for them. Returns the whole
    /// host-to-device time: staging into pinned memory (wall clock) plus the copies
    /// (CUDA events).
    pub(crate) fn upload(
        &mut self,
        pairs: &mut [(&[f32], &mut DeviceBuffer<f32>)],
    ) -> Result<Duration, JobError> {
        let total: usize = pairs.iter().map(|(h, _)| h.len()).sum();
        let start = Instant::now();
        let staging = self.staging(total)?;
        let mut offset = 0;
        for (host, _) in pairs.iter() {
            staging.as_mut_slice()[offset..offset + host.len()].copy_from_slice(host);
            offset += host.len();
        }
        let staged = start.elapsed();
        let c0 = self.mark()?;
        let mut offset = 0;
        for (host, dev) in pairs.iter_mut() {
            let n = host.len();
            let Some(staging) = self.staging.as_ref() else {
                break;
            };
            let src = &staging.as_slice()[offset..offset + n];
            // SAFETY: `src` is pinned and untouched until the synchronisation below;
            // `dev` has at least `n` elements.
            #[allow(unsafe_code)]
            let r = unsafe { dev.index(..n).async_copy_from(src, &self.stream) };
            r.map_err(|e| self.err("copying to the device", e))?;
            offset += n;
        }
        let c1 = self.mark()?;
        self.sync()?;
        Ok(staged + self.between(&c0, &c1)?)
    }

    /// Downloads a job's output after its kernels ran between the events `k0` and `k1`:
    /// the values, the kernels' time, and the device-to-host time (the copy plus
    /// unstaging on the host).
    pub(crate) fn collect(
        &mut self,
        k0: &Event,
        k1: &Event,
        dev: &DeviceBuffer<f32>,
        n: usize,
    ) -> Result<(HostBuf, Duration, Duration), JobError> {
        let (out, host, done) = self.download(dev, n)?;
        let compute = self.between(k0, k1)?;
        let d2h = self.between(k1, &done)? + host;
        Ok((out, compute, d2h))
    }

    /// Copies `n` values from the device into a pooled host buffer through pinned
    /// staging memory; synchronises the stream. Returns the buffer and the host-side
    /// time. The pooled buffer is already faulted in once the pool is warm, so the
    /// host side is one memcpy.
    pub(crate) fn download(
        &mut self,
        dev: &DeviceBuffer<f32>,
        n: usize,
    ) -> Result<(HostBuf, Duration, Event), JobError> {
        if crate::pipeline_enabled() {
            let mut out = self.pool.take(n)?;
            if self.pin(&out)? {
                // SAFETY: `out` is registered pooled memory, untouched until the
                // synchronisation below.
                #[allow(unsafe_code)]
                let r = unsafe {
                    dev.index(..n)
                        .async_copy_to(&mut out.as_mut_slice()[..n], &self.stream)
                };
                r.map_err(|e| self.err("copying from the device", e))?;
                let done = self.mark()?;
                self.sync()?;
                return Ok((out, Duration::ZERO, done));
            }
        }
        self.staging(n)?;
        let Some(staging) = self.staging.as_mut() else {
            return Err(JobError::temporary("no staging buffer"));
        };
        // SAFETY: the staging range is not read until the stream is synchronised below.
        #[allow(unsafe_code)]
        let r = unsafe {
            dev.index(..n)
                .async_copy_to(&mut staging.as_mut_slice()[..n], &self.stream)
        };
        r.map_err(|e| self.err("copying from the device", e))?;
        let done = self.mark()?;
        self.sync()?;
        let start = Instant::now();
        let mut out = self.pool.take(n)?;
        if let Some(s) = self.staging.as_ref() {
            out.copy_from_slice(&s.as_slice()[..n]);
        }
        Ok((out, start.elapsed(), done))
    }

    /// Fills `dev` with a synthetic tensor's values, generated on the device.
    pub(crate) fn fill_synthetic(
        &mut self,
        t: &Tensor,
        dev: &mut DeviceBuffer<f32>,
    ) -> Result<(), JobError> {
        let TensorData::Synthetic(s) = t.data() else {
            return Err(JobError::permanent(
                "fill_synthetic on a tensor that is not synthetic",
            ));
        };
        let n = t.numel().unwrap_or(0) as u64;
        let (out, seed, start, lo, hi) = (dev.as_device_ptr().as_raw(), s.seed, 0u64, s.lo, s.hi);
        let blocks = (n.div_ceil(256)).min(u64::from(self.sms) * 32).max(1) as u32;
        crate::launch!(self, kernels::FILL_UNIFORM, blocks, 256, 0; out, n, seed, start, lo, hi)
    }

    /// Generates the synthetic tensors among `items` on the device and waits; returns
    /// the time it took (the job's preparation).
    pub(crate) fn prepare_synthetic(
        &mut self,
        items: &mut [(&Tensor, &mut DeviceBuffer<f32>)],
    ) -> Result<Duration, JobError> {
        let p0 = self.mark()?;
        for (t, dev) in items.iter_mut() {
            if matches!(t.data(), TensorData::Synthetic(_)) {
                self.fill_synthetic(t, dev)?;
            }
        }
        let p1 = self.mark()?;
        self.sync()?;
        self.between(&p0, &p1)
    }

    /// Puts each tensor's values into its device buffer: synthetic ones generated on the
    /// device (timed as preparation), real ones uploaded (timed as host-to-device).
    /// Returns (prepare, h2d).
    pub(crate) fn inputs(
        &mut self,
        items: &mut [(&Tensor, &mut DeviceBuffer<f32>)],
    ) -> Result<(Duration, Duration), JobError> {
        let prepare = self.prepare_synthetic(items)?;
        let values: Vec<_> = items
            .iter()
            .map(|(t, _)| match t.data() {
                TensorData::Values(v) => Ok(Some(v.clone())),
                TensorData::Synthetic(_) => Ok(None),
                TensorData::Blob(k) => Err(JobError::permanent(format!(
                    "tensor blob `{k}` was not resolved"
                ))),
                TensorData::Output(r) => {
                    Err(JobError::permanent(format!("input {r} was not resolved")))
                }
                TensorData::Url(u) => Err(JobError::permanent(
                    gpujobs_core::ValidationError::NotFetched(u.clone()).to_string(),
                )),
            })
            .collect::<Result<_, _>>()?;
        let mut pairs: Vec<(&Values, &mut DeviceBuffer<f32>)> = Vec::new();
        for ((_, dev), v) in items.iter_mut().zip(&values) {
            if let Some(v) = v {
                pairs.push((v, &mut **dev));
            }
        }
        let h2d = self.upload_values(&mut pairs)?;
        Ok((prepare, h2d))
    }

    /// Puts host values into device buffers and waits: through pinned staging memory,
    /// or with the pipeline on, without staging where it can (device to device from a
    /// kept output, or straight from registered memory). Returns the host-to-device time.
    pub(crate) fn upload_values(
        &mut self,
        items: &mut [(&Values, &mut DeviceBuffer<f32>)],
    ) -> Result<Duration, JobError> {
        let mut direct = Duration::ZERO;
        let mut pairs: Vec<(&[f32], &mut DeviceBuffer<f32>)> = Vec::new();
        if crate::pipeline_enabled() {
            let d0 = self.mark()?;
            let mut any = false;
            for (v, dev) in items.iter_mut() {
                if self.copy_in_place(v, dev)? {
                    any = true;
                } else {
                    pairs.push((v.as_slice(), &mut **dev));
                }
            }
            if any {
                let d1 = self.mark()?;
                self.sync()?;
                direct = self.between(&d0, &d1)?;
            }
        } else {
            for (v, dev) in items.iter_mut() {
                pairs.push((v.as_slice(), &mut **dev));
            }
        }
        let staged = if pairs.is_empty() {
            Duration::ZERO
        } else {
            self.upload(&mut pairs)?
        };
        Ok(staged + direct)
    }

    /// Pipeline: queues the copy of `v` into `dev` without staging — device to device
    /// from a kept output, or straight from registered host memory. `false` when
    /// neither applies (the caller stages it).
    fn copy_in_place(&mut self, v: &Values, dev: &mut DeviceBuffer<f32>) -> Result<bool, JobError> {
        let n = v.len();
        if n == 0 {
            return Ok(true);
        }
        let r = if let Some(src) = self.resident.find(v) {
            // SAFETY: both are device buffers of at least `n` values alive until the
            // job's synchronisation.
            #[allow(unsafe_code)]
            unsafe {
                dev.index(..n)
                    .async_copy_from(&src.index(..n), &self.stream)
            }
        } else if self.pin(v.buf())? {
            // SAFETY: `v` is registered memory the job holds until it synchronises.
            #[allow(unsafe_code)]
            unsafe {
                dev.index(..n).async_copy_from(v.as_slice(), &self.stream)
            }
        } else {
            return Ok(false);
        };
        r.map_err(|e| self.err("copying to the device", e))?;
        Ok(true)
    }
}

/// Loads a module, turning the driver's refusal of a too-new PTX into a message that
/// names the PTX ISA version and the driver's CUDA version.
fn load_module(m: Module) -> Result<cust::module::Module, CudaError> {
    let ptx = m.ptx();
    cust::module::Module::from_ptx(ptx, &[]).map_err(|e| {
        let isa = ptx::isa_version(ptx).unwrap_or((0, 0));
        let driver = cust::CudaApiVersion::get()
            .map(|v| (v.major() as u32, v.minor() as u32))
            .unwrap_or((0, 0));
        let need = ptx::min_driver_for_isa(isa);
        let driver_code = driver.0 * 1000 + driver.1 * 10;
        // cust 0.3.2 maps CUDA_ERROR_UNSUPPORTED_PTX_VERSION (222) to UnknownError, so
        // compare the versions ourselves.
        if matches!(
            e,
            DriverError::UnknownError | DriverError::InvalidPtx | DriverError::InvalidImage
        ) && driver_code < need
        {
            CudaError::UnsupportedPtx {
                module: m.name().into(),
                isa_major: isa.0,
                isa_minor: isa.1,
                driver_major: driver.0,
                driver_minor: driver.1,
                need_major: need / 1000,
                need_minor: (need % 1000) / 10,
            }
        } else {
            CudaError::Driver {
                doing: format!(
                    "loading the PTX of module `{}` (PTX ISA {}.{})",
                    m.name(),
                    isa.0,
                    isa.1
                ),
                message: e.to_string(),
            }
        }
    })
}
