//! `image-filter` on the CPU: separable Gaussian blur and Sobel magnitude with OpenCV's
//! semantics (see `gpujobs_core::kinds::filters`).
//!
//! The blur never writes a full intermediate image. Each thread takes a strip of output
//! rows and keeps the horizontally filtered source rows it needs in a ring of `ksize`
//! rows (a few hundred KiB, resident in L2): for output row `y` it filters the source
//! rows the window `y-r..=y+r` lacks (mapped through reflect-101), then runs the
//! vertical pass over the ring. Both passes use the kernel's symmetry,
//! `w[r]·x[r] + Σ w[k]·(x[k] + x[2r−k])`, and vectorize across x in register blocks.

use crate::CpuExecutor;
use crate::parallel::{materialize, row_strips};
use crate::simd::{Madd, multiversion};
use async_trait::async_trait;
use gpujobs_core::kinds::filters::{gaussian_kernel_f32, reflect101};
use gpujobs_core::kinds::{FilterOp, ImageFilter, ImageFilterOutput};
use gpujobs_core::model::fingerprint::BlockDigests;
use gpujobs_core::model::tensor::Values;
use gpujobs_core::model::timing::timed;
use gpujobs_core::{ExecContext, Execution, Executor, JobError, StageTimes, Tensor};
use rayon::prelude::*;

/// Register block: output values computed together across x.
const BLOCK: usize = 32;

/// Horizontal pass of one row: `out[x] = Σ_k w[k] · padded[x + k]`, where `padded` is
/// the row extended by `r` reflected pixels on each side.
#[inline(always)]
fn hpass_impl<M: Madd>(padded: &[f32], weights: &[f32], out: &mut [f32]) {
    let r = weights.len() / 2;
    let w = out.len();
    let full = w / BLOCK * BLOCK;
    for x0 in (0..full).step_by(BLOCK) {
        let mut acc = [0f32; BLOCK];
        let centre = &padded[x0 + r..x0 + r + BLOCK];
        for i in 0..BLOCK {
            acc[i] = weights[r] * centre[i];
        }
        for k in 0..r {
            let lo = &padded[x0 + k..x0 + k + BLOCK];
            let hi = &padded[x0 + 2 * r - k..x0 + 2 * r - k + BLOCK];
            for i in 0..BLOCK {
                acc[i] = M::madd(weights[k], lo[i] + hi[i], acc[i]);
            }
        }
        out[x0..x0 + BLOCK].copy_from_slice(&acc);
    }
    for x in full..w {
        let mut acc = weights[r] * padded[x + r];
        for k in 0..r {
            acc = M::madd(weights[k], padded[x + k] + padded[x + 2 * r - k], acc);
        }
        out[x] = acc;
    }
}

multiversion!(fn hpass(padded: &[f32], weights: &[f32], out: &mut [f32]) = hpass_impl);

/// Vertical pass of one output row over `rows` (the `ksize` filtered source rows of
/// its window, in order).
#[inline(always)]
fn vpass_impl<M: Madd>(rows: &[&[f32]], weights: &[f32], out: &mut [f32]) {
    let r = weights.len() / 2;
    let w = out.len();
    let full = w / BLOCK * BLOCK;
    for x0 in (0..full).step_by(BLOCK) {
        let mut acc = [0f32; BLOCK];
        let centre = &rows[r][x0..x0 + BLOCK];
        for i in 0..BLOCK {
            acc[i] = weights[r] * centre[i];
        }
        for k in 0..r {
            let lo = &rows[k][x0..x0 + BLOCK];
            let hi = &rows[2 * r - k][x0..x0 + BLOCK];
            for i in 0..BLOCK {
                acc[i] = M::madd(weights[k], lo[i] + hi[i], acc[i]);
            }
        }
        out[x0..x0 + BLOCK].copy_from_slice(&acc);
    }
    for x in full..w {
        let mut acc = weights[r] * rows[r][x];
        for k in 0..r {
            acc = M::madd(weights[k], rows[k][x] + rows[2 * r - k][x], acc);
        }
        out[x] = acc;
    }
}

multiversion!(fn vpass(rows: &[&[f32]], weights: &[f32], out: &mut [f32]) = vpass_impl);

/// `cv2.GaussianBlur(img, (0, 0), sigma)` of a row-major `h × w` image into a new
/// vector (see [`gaussian_blur_into`]).
pub fn gaussian_blur(img: &[f32], h: usize, w: usize, sigma: f32) -> Vec<f32> {
    let mut out = crate::buffer::zeroed(h * w);
    gaussian_blur_into(img, h, w, sigma, &mut out);
    out
}

/// `cv2.GaussianBlur(img, (0, 0), sigma)` of a row-major `h × w` image into `out`
/// (every value overwritten). Panics if `img` or `out` is not `h * w` long.
pub fn gaussian_blur_into(img: &[f32], h: usize, w: usize, sigma: f32, out: &mut [f32]) {
    blur_digested(img, h, w, sigma, out, None);
}

/// [`gaussian_blur_into`], digesting the output for its fingerprint block by block as
/// each strip's rows complete a block, while they are in cache.
fn blur_digested(
    img: &[f32],
    h: usize,
    w: usize,
    sigma: f32,
    out: &mut [f32],
    digests: Option<&BlockDigests>,
) {
    assert!(img.len() == h * w && out.len() == h * w, "image size");
    let weights = gaussian_kernel_f32(f64::from(sigma));
    let ksize = weights.len();
    let r = ksize / 2;
    row_strips(out, h, w, 16)
        .into_par_iter()
        .for_each(|(y0, dst)| {
            let mut padded = vec![0f32; w + 2 * r];
            let mut ring = vec![0f32; ksize * w];
            let mut tags = vec![usize::MAX; ksize];
            for dy in 0..dst.len() / w.max(1) {
                let y = y0 + dy;
                for k in 0..ksize {
                    let s = reflect101(y as isize + k as isize - r as isize, h);
                    let slot = s % ksize;
                    if tags[slot] != s {
                        let src = &img[s * w..(s + 1) * w];
                        padded[r..r + w].copy_from_slice(src);
                        for i in 0..r {
                            padded[i] = src[reflect101(i as isize - r as isize, w)];
                            padded[r + w + i] = src[reflect101((w + i) as isize, w)];
                        }
                        hpass(&padded, &weights, &mut ring[slot * w..(slot + 1) * w]);
                        tags[slot] = s;
                    }
                }
                let rows: Vec<&[f32]> = (0..ksize)
                    .map(|k| {
                        let slot = reflect101(y as isize + k as isize - r as isize, h) % ksize;
                        &ring[slot * w..(slot + 1) * w]
                    })
                    .collect();
                vpass(&rows, &weights, &mut dst[dy * w..(dy + 1) * w]);
                if let Some(d) = digests {
                    d.written(y0 * w, &dst[..(dy + 1) * w]);
                }
            }
        });
}

/// One row of Sobel magnitude from the rows above (`a`), at (`b`) and below (`c`).
#[inline(always)]
fn sobel_row_impl<M: Madd>(a: &[f32], b: &[f32], c: &[f32], out: &mut [f32]) {
    let w = out.len();
    let px = |x: usize, l: usize, rr: usize| -> f32 {
        let gx = (a[rr] - a[l]) + 2.0 * (b[rr] - b[l]) + (c[rr] - c[l]);
        let gy = (c[l] + 2.0 * c[x] + c[rr]) - (a[l] + 2.0 * a[x] + a[rr]);
        M::madd(gx, gx, gy * gy).sqrt()
    };
    if w == 1 {
        out[0] = px(0, 0, 0);
        return;
    }
    out[0] = px(0, 1, 1);
    out[w - 1] = px(w - 1, w - 2, w - 2);
    // Interior: equal-length shifted views, so the loop has no bounds checks and
    // vectorizes.
    let n = w - 2;
    let (al, ac, ar) = (&a[..n], &a[1..=n], &a[2..n + 2]);
    let (bl, br) = (&b[..n], &b[2..n + 2]);
    let (cl, cc, cr) = (&c[..n], &c[1..=n], &c[2..n + 2]);
    for (i, o) in out[1..=n].iter_mut().enumerate() {
        let gx = (ar[i] - al[i]) + 2.0 * (br[i] - bl[i]) + (cr[i] - cl[i]);
        let gy = (cl[i] + 2.0 * cc[i] + cr[i]) - (al[i] + 2.0 * ac[i] + ar[i]);
        *o = M::madd(gx, gx, gy * gy).sqrt();
    }
}

multiversion!(fn sobel_row(a: &[f32], b: &[f32], c: &[f32], out: &mut [f32]) = sobel_row_impl);

/// Magnitude of `cv2.Sobel` (ksize 3, reflect-101) in x and y of a row-major `h × w`
/// image, into a new vector (see [`sobel_magnitude_into`]).
pub fn sobel_magnitude(img: &[f32], h: usize, w: usize) -> Vec<f32> {
    let mut out = crate::buffer::zeroed(h * w);
    sobel_magnitude_into(img, h, w, &mut out);
    out
}

/// Magnitude of `cv2.Sobel` (ksize 3, reflect-101) in x and y of a row-major `h × w`
/// image into `out` (every value overwritten). Panics if either is not `h * w` long.
pub fn sobel_magnitude_into(img: &[f32], h: usize, w: usize, out: &mut [f32]) {
    sobel_digested(img, h, w, out, None);
}

/// [`sobel_magnitude_into`] in strips of rows, digesting the output for its fingerprint
/// as each strip's rows complete a block, while they are in cache.
fn sobel_digested(
    img: &[f32],
    h: usize,
    w: usize,
    out: &mut [f32],
    digests: Option<&BlockDigests>,
) {
    assert!(img.len() == h * w && out.len() == h * w, "image size");
    row_strips(out, h, w, 16)
        .into_par_iter()
        .for_each(|(y0, dst)| {
            for dy in 0..dst.len() / w.max(1) {
                let y = y0 + dy;
                let above = reflect101(y as isize - 1, h);
                let below = reflect101(y as isize + 1, h);
                sobel_row(
                    &img[above * w..(above + 1) * w],
                    &img[y * w..(y + 1) * w],
                    &img[below * w..(below + 1) * w],
                    &mut dst[dy * w..(dy + 1) * w],
                );
                if let Some(d) = digests {
                    d.written(y0 * w, &dst[..(dy + 1) * w]);
                }
            }
        });
}

#[async_trait]
impl Executor<ImageFilter> for CpuExecutor {
    async fn run(
        &self,
        job: ImageFilter,
        ctx: &ExecContext,
    ) -> Result<Execution<ImageFilterOutput>, JobError> {
        ctx.cancel.check()?;
        let pool = self.pool.clone();
        let (h, w) = job.dims();
        // A few dozen operations per pixel for the filters (a blur's taps, Sobel's 3×3).
        let work = h.saturating_mul(w).saturating_mul(32);
        Self::compute(work, move || {
            let (img, prepare) = timed(|| materialize(&job.image, &pool));
            let img = img?;
            let mut out = pool.take(h * w)?;
            let digests = BlockDigests::new(h * w);
            let d = Some(&digests);
            let ((), compute) = timed(|| match job.filter {
                FilterOp::GaussianBlur { sigma } => blur_digested(&img, h, w, sigma, &mut out, d),
                FilterOp::Sobel => sobel_digested(&img, h, w, &mut out, d),
            });
            let fingerprint = digests.finish(&out);
            let out = Values::from(out).with_fingerprint(fingerprint);
            let image = Tensor::from_values(vec![h, w], out)?;
            Ok(Execution {
                output: ImageFilterOutput { image },
                times: StageTimes::cpu(prepare, compute),
            })
        })
        .await
    }
}
