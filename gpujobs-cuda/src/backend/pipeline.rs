//! The device pipeline (on with `gpujobs_cuda::set_pipeline(true)` or
//! `gpujobs worker --cuda-pipeline`; off by default until a GPU run has verified it).
//!
//! For a memory-bound job the transfers are the job: the verified path copies inputs
//! into pinned staging memory on the host, uploads, computes, downloads into staging
//! and copies out again, one stage after another. The pipeline instead
//! - registers the inputs' and the output's pooled, page-aligned memory for DMA in place
//!   (once per buffer, `pinning`), so no byte is copied on the host, and
//! - splits the job into chunks alternating over two streams, so the upload of chunk
//!   i+1 and the download of chunk i-1 run while chunk i computes.
//!
//! Stage times are each stage's device time summed over the chunks; because stages
//! overlap, their sum can exceed the job's wall time.

use super::state::DeviceState;
use crate::kernels::KernelSpec;
use cust::event::{Event, EventFlags};
use cust::memory::{AsyncCopyDestination, DeviceBuffer};
use cust::stream::{Stream, StreamWaitEventFlags};
use gpujobs_core::model::tensor::Values;
use gpujobs_core::{HostBuf, JobError, StageTimes, Tensor, TensorData};
use std::time::Duration;

/// Bytes of one input per chunk: large enough that a chunk's copy dwarfs its launch.
const CHUNK_BYTES: usize = 4 << 20;
/// At most this many chunks (their events and launches cost host time).
const MAX_CHUNKS: usize = 16;

/// How many chunks `n` values make.
pub(crate) fn chunks(n: usize) -> usize {
    (n * 4).div_ceil(CHUNK_BYTES).clamp(1, MAX_CHUNKS)
}

/// An input of an element-wise job: generated on the device, or host values
/// registered in place.
pub(crate) enum Input {
    /// Already on the device (synthetic data generated there).
    OnDevice,
    /// Host values, registered for DMA.
    Host(Values),
}

impl DeviceState {
    fn stream_of(&self, side: bool) -> &Stream {
        if side {
            self.side.as_ref().unwrap_or(&self.stream)
        } else {
            &self.stream
        }
    }

    fn mark_on(&mut self, side: bool) -> Result<Event, JobError> {
        let e = Event::new(EventFlags::DEFAULT).map_err(|e| self.err("creating an event", e))?;
        let r = e.record(self.stream_of(side));
        r.map_err(|e| self.err("recording an event", e))?;
        Ok(e)
    }

    /// Prepares an element-wise job's inputs for the pipeline: synthetic ones are
    /// generated on the device; host ones must be registrable in place. `None` when
    /// some input cannot be (an adopted `Vec`): the caller takes the verified path.
    /// Returns the inputs and the preparation time.
    pub(crate) fn pipeline_inputs(
        &mut self,
        items: &mut [(&Tensor, &mut DeviceBuffer<f32>)],
    ) -> Result<Option<(Vec<Input>, Duration)>, JobError> {
        let mut inputs = Vec::with_capacity(items.len());
        for (t, _) in items.iter() {
            match t.data() {
                TensorData::Synthetic(_) => inputs.push(Input::OnDevice),
                TensorData::Values(v) => {
                    if !self.pin(v.buf())? {
                        return Ok(None);
                    }
                    inputs.push(Input::Host(v.clone()));
                }
                _ => return Ok(None),
            }
        }
        let prepare = self.prepare_synthetic(items)?;
        Ok(Some((inputs, prepare)))
    }

    /// Runs an element-wise kernel `out[i] = f(in_0[i], in_1[i], ...)` over `n` values
    /// in chunks on two streams: per chunk, upload the host inputs' slices, launch
    /// `spec` with `args(offset, len)`, download the output's slice into a registered
    /// pooled buffer. Returns the output and the stage times (prepare left zero).
    pub(crate) fn pipeline_elementwise(
        &mut self,
        spec: &KernelSpec,
        inputs: &[(Input, &mut DeviceBuffer<f32>)],
        out: &DeviceBuffer<f32>,
        n: usize,
        args: impl Fn(usize, usize) -> Vec<u64>,
        blocks: impl Fn(usize) -> u32,
    ) -> Result<(HostBuf, StageTimes), JobError> {
        let mut host_out = self.pool().take(n)?;
        if !self.pin(&host_out)? {
            return Err(JobError::temporary(
                "the output buffer cannot be registered for DMA",
            ));
        }
        let count = chunks(n);
        if count > 1 {
            self.ensure_side()?;
            // The side stream starts after everything queued on the job stream so far.
            let ready = self.mark()?;
            let side = self.side.as_ref().unwrap_or(&self.stream);
            let r = side.wait_event(ready, StreamWaitEventFlags::DEFAULT);
            r.map_err(|e| self.err("ordering the side stream", e))?;
        }
        // Chunks start 256-byte aligned: kernels load 16 bytes at a time (a misaligned
        // chunk is a misaligned-address error on the device, which the simulator
        // reproduces).
        let per = n.div_ceil(count).next_multiple_of(64);
        let mut marks = Vec::with_capacity(count);
        for i in 0..count {
            let off = i * per;
            if off >= n {
                break;
            }
            let len = per.min(n - off);
            let side = i % 2 == 1;
            let e0 = self.mark_on(side)?;
            for (input, dev) in inputs {
                if let Input::Host(v) = input {
                    let src = &v.as_slice()[off..off + len];
                    // SAFETY: `src` is registered memory held by `inputs` until the
                    // synchronisation at the end; the device range has `len` values.
                    #[allow(unsafe_code)]
                    let r = unsafe {
                        dev.index(off..off + len)
                            .async_copy_from(src, self.stream_of(side))
                    };
                    r.map_err(|e| self.err("copying a chunk to the device", e))?;
                }
            }
            let e1 = self.mark_on(side)?;
            let mut values = args(off, len);
            let mut ptrs: Vec<*mut std::ffi::c_void> = values
                .iter_mut()
                .map(|v| v as *mut u64 as *mut std::ffi::c_void)
                .collect();
            self.launch_raw_on(side, spec, blocks(len), 256, 0, &mut ptrs)?;
            let e2 = self.mark_on(side)?;
            {
                let dst = &mut host_out.as_mut_slice()[off..off + len];
                // SAFETY: `dst` is registered pooled memory owned here until the
                // synchronisation at the end.
                #[allow(unsafe_code)]
                let r = unsafe {
                    out.index(off..off + len)
                        .async_copy_to(dst, self.stream_of(side))
                };
                r.map_err(|e| self.err("copying a chunk from the device", e))?;
            }
            let e3 = self.mark_on(side)?;
            marks.push([e0, e1, e2, e3]);
        }
        if count > 1 {
            let done = self.mark_on(true)?;
            let r = self.stream.wait_event(done, StreamWaitEventFlags::DEFAULT);
            r.map_err(|e| self.err("joining the side stream", e))?;
        }
        self.sync()?;
        let mut times = StageTimes::default();
        for [e0, e1, e2, e3] in &marks {
            times.h2d += self.between(e0, e1)?;
            times.compute += self.between(e1, e2)?;
            times.d2h += self.between(e2, e3)?;
        }
        Ok((host_out, times))
    }
}
