//! `image-filter` on the GPU: separable Gaussian blur (a row pass, then a tiled or
//! direct column pass) and Sobel magnitude.

use super::CudaExecutor;
use crate::kernels;
use async_trait::async_trait;
use gpujobs_core::kinds::filters::gaussian_kernel_f32;
use gpujobs_core::kinds::{FilterOp, ImageFilter, ImageFilterOutput};
use gpujobs_core::{ExecContext, Execution, Executor, JobError, StageTimes};

/// Shared memory a block may use without opting in to more.
const SHARED_LIMIT: usize = 48 * 1024;
/// Output columns per block of the row pass (`ROW_OUT` × 256 threads in the kernel).
const ROW_SEGMENT: usize = 1024;
/// Output rows per block of the tiled column pass (`COL_ROWS` in the kernel).
const COL_TILE_ROWS: usize = 128;

#[async_trait]
impl Executor<ImageFilter> for CudaExecutor {
    async fn run(
        &self,
        job: ImageFilter,
        ctx: &ExecContext,
    ) -> Result<Execution<ImageFilterOutput>, JobError> {
        ctx.cancel.check()?;
        self.on_device(move |s| {
            let (h, w) = job.dims();
            let (hi, wi) = (
                i32::try_from(h).map_err(|_| JobError::permanent(format!("image height {h} too large for the GPU kernels")))?,
                i32::try_from(w).map_err(|_| JobError::permanent(format!("image width {w} too large for the GPU kernels")))?,
            );
            if h.div_ceil(32) > 65_535 || w.div_ceil(256) > 65_535 {
                return Err(JobError::permanent(format!("a {w}x{h} image exceeds the GPU kernels' grid (at most 2097120 rows and 16776960 columns)")));
            }
            let n = h * w;
            s.admit(12 * n as u64)?;
            let mut img = s.alloc::<f32>(n)?;
            let out = s.alloc::<f32>(n)?;
            let (pi, po) = (img.as_device_ptr().as_raw(), out.as_device_ptr().as_raw());
            match job.filter {
                FilterOp::GaussianBlur { sigma } => {
                    let weights = gaussian_kernel_f32(f64::from(sigma));
                    let r = weights.len() / 2;
                    let mut wdev = s.alloc::<f32>(weights.len())?;
                    let tmp = s.alloc::<f32>(n)?;
                    let (prepare, h2d_img) = s.inputs(&mut [(&job.image, &mut img)])?;
                    let h2d_weights = s.upload(&mut [(&weights, &mut wdev)])?;
                    let (pw, pt, ri) = (wdev.as_device_ptr().as_raw(), tmp.as_device_ptr().as_raw(), r as i32);
                    // Shared memory: the r+1 weights used, then the tile with its halo.
                    let row_shared = (r + 1 + ROW_SEGMENT + 2 * r) * 4;
                    let col_shared = (r + 1 + (COL_TILE_ROWS + 2 * r) * 32) * 4;
                    let k0 = s.mark()?;
                    if row_shared <= SHARED_LIMIT {
                        let grid = (h as u32, w.div_ceil(ROW_SEGMENT) as u32, 1);
                        crate::launch!(s, kernels::BLUR_ROWS, grid, 256, row_shared as u32; pi, pt, hi, wi, pw, ri)?;
                    } else {
                        let grid = (h as u32, w.div_ceil(256) as u32, 1);
                        crate::launch!(s, kernels::BLUR_ROWS_DIRECT, grid, 256, 0; pi, pt, hi, wi, pw, ri)?;
                    }
                    if col_shared <= SHARED_LIMIT {
                        let grid = (w.div_ceil(32) as u32, h.div_ceil(COL_TILE_ROWS) as u32, 1);
                        crate::launch!(s, kernels::BLUR_COLS, grid, (32, 8, 1), col_shared as u32; pt, po, hi, wi, pw, ri)?;
                    } else {
                        let grid = (w.div_ceil(256) as u32, h.min(65_535) as u32, 1);
                        crate::launch!(s, kernels::BLUR_COLS_DIRECT, grid, 256, 0; pt, po, hi, wi, pw, ri)?;
                    }
                    let k1 = s.mark()?;
                    let (data, compute, d2h) = s.collect(&k0, &k1, &out, n)?;
                    let times = StageTimes {
                        prepare,
                        h2d: h2d_img + h2d_weights,
                        compute,
                        d2h,
                    };
                    let image = s.output(vec![h, w], data, out)?;
                    Ok(Execution { output: ImageFilterOutput { image }, times })
                }
                FilterOp::Sobel => {
                    let (prepare, h2d) = s.inputs(&mut [(&job.image, &mut img)])?;
                    let k0 = s.mark()?;
                    let grid = (w.div_ceil(32) as u32, h.div_ceil(32) as u32, 1);
                    crate::launch!(s, kernels::SOBEL, grid, (32, 8, 1), 0; pi, po, hi, wi)?;
                    let k1 = s.mark()?;
                    let (data, compute, d2h) = s.collect(&k0, &k1, &out, n)?;
                    let times = StageTimes { prepare, h2d, compute, d2h };
                    let image = s.output(vec![h, w], data, out)?;
                    Ok(Execution { output: ImageFilterOutput { image }, times })
                }
            }
        })
        .await
    }
}
