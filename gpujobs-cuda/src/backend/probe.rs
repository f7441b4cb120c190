//! Measurements of the device itself, for the GPU check and benchmarks: device-to-device
//! copy bandwidth (the roofline of memory-bound kernels) and every SGEMM variant.

use super::CudaExecutor;
use super::matmul::{Gemm, Operand};
use crate::kernels::SGEMM_VARIANTS;
use cust::memory::AsyncCopyDestination;
use gpujobs_core::{JobError, Tensor};

impl CudaExecutor {
    /// Device-to-device copy bandwidth in bytes per second, counting bytes read plus
    /// bytes written (the way a kernel's traffic is counted): median of `reps` copies of
    /// `bytes` bytes after a warm-up.
    pub async fn copy_bandwidth(&self, bytes: usize, reps: usize) -> Result<f64, JobError> {
        self.on_device(move |s| {
            let n = bytes / 4;
            s.admit(2 * bytes as u64)?;
            let src = s.alloc::<f32>(n)?;
            let mut dst = s.alloc::<f32>(n)?;
            let mut times = Vec::with_capacity(reps);
            for i in 0..=reps.max(1) {
                let start = s.mark()?;
                // SAFETY: both buffers are device memory of `n` values, alive until the
                // synchronisation below.
                #[allow(unsafe_code)]
                let r = unsafe { dst.async_copy_from(&*src, &s.stream) };
                r.map_err(|e| s.err("copying device to device", e))?;
                let end = s.mark()?;
                s.sync()?;
                if i > 0 {
                    times.push(s.between(&start, &end)?.as_secs_f64());
                }
            }
            times.sort_by(f64::total_cmp);
            Ok(2.0 * (n * 4) as f64 / times[times.len() / 2])
        })
        .await
    }

    /// Median seconds of each SGEMM variant that applies to an `m × k` by `k × n`
    /// product of synthetic data, `reps` timed runs each after a warm-up.
    pub async fn sgemm_variants(
        &self,
        m: usize,
        n: usize,
        k: usize,
        reps: usize,
    ) -> Result<Vec<(String, f64)>, JobError> {
        self.on_device(move |s| {
            s.admit(4 * (m * k + k * n + m * n) as u64)?;
            let mut a = s.alloc::<f32>(m * k)?;
            let mut b = s.alloc::<f32>(k * n)?;
            let c = s.alloc::<f32>(m * n)?;
            s.fill_synthetic(&Tensor::synthetic(vec![m, k], 1, -1.0, 1.0), &mut a)?;
            s.fill_synthetic(&Tensor::synthetic(vec![k, n], 2, -1.0, 1.0), &mut b)?;
            let ld =
                |x: usize| i32::try_from(x).map_err(|_| JobError::permanent("dimension too large"));
            let g = Gemm::plain(
                m,
                n,
                k,
                Operand {
                    ptr: a.as_device_ptr().as_raw(),
                    ld: ld(k)?,
                },
                Operand {
                    ptr: b.as_device_ptr().as_raw(),
                    ld: ld(n)?,
                },
                Operand {
                    ptr: c.as_device_ptr().as_raw(),
                    ld: ld(n)?,
                },
            );
            let mut out = Vec::new();
            for i in s.applicable_variants(&g) {
                out.push((
                    SGEMM_VARIANTS[i].kernel.name.to_string(),
                    s.time_variant(i, &g, reps)?,
                ));
            }
            Ok(out)
        })
        .await
    }
}
