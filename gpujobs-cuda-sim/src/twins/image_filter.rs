//! `image_filter.cu`: separable Gaussian blur passes and Sobel, reflect-101 borders,
//! the kernels' order of operations (`w[r]*x[r]`, then `fma(w[k], x[k] + x[2r-k], acc)`).

use super::Args;
use crate::abi::{CuResult, ILLEGAL_ADDRESS};
use crate::memory::Memory;

/// Outputs per thread of the row pass (`ROW_OUT`).
const ROW_OUT: usize = 4;
/// Output rows per block of the tiled column pass (`COL_ROWS`).
const COL_ROWS: usize = 128;

/// OpenCV's reflect-101 index, as `reflect101` in common.cuh.
pub(crate) fn reflect101(mut p: i64, n: i64) -> usize {
    if n == 1 {
        return 0;
    }
    while p < 0 || p >= n {
        p = if p < 0 { -p } else { 2 * n - 2 - p };
    }
    p as usize
}

/// The parameters every blur pass takes: `(in, out, h, w, weights, r)`, with the
/// image, its output as it is now, and the r+1 weights read from device memory.
struct Pass {
    out_ptr: u64,
    h: usize,
    w: usize,
    r: usize,
    input: Vec<f32>,
    out: Vec<f32>,
    wk: Vec<f32>,
}

impl Pass {
    fn read(a: &Args<'_>, m: &Memory) -> Result<Self, CuResult> {
        let (h, w, r) = (a.size(2)?, a.size(3)?, a.size(5)?);
        Ok(Pass {
            out_ptr: a.u64(1)?,
            h,
            w,
            r,
            input: m.read(a.u64(0)?, h * w)?,
            out: m.read(a.u64(1)?, h * w)?,
            wk: m.read(a.u64(4)?, r + 1)?,
        })
    }

    /// One output of a 1-D pass: `at(i)` is the input `i - r` places from the centre.
    fn tap(&self, at: impl Fn(i64) -> f32) -> f32 {
        let r = self.r;
        let mut acc = self.wk[r] * at(0);
        for k in 0..r {
            let d = k as i64 - r as i64;
            acc = self.wk[k].mul_add(at(d) + at(-d), acc);
        }
        acc
    }

    fn write(self, m: &mut Memory) -> Result<(), CuResult> {
        m.write(self.out_ptr, &self.out)
    }
}

/// `blur_rows`: block x = row, block y = a segment of `ROW_OUT * blockDim.x` columns.
pub(super) fn blur_rows(a: &Args<'_>, m: &mut Memory) -> Result<(), CuResult> {
    let mut p = Pass::read(a, m)?;
    let seg = ROW_OUT * a.block[0] as usize;
    if (a.shared as usize) < (p.r + 1 + seg + 2 * p.r) * 4 {
        return Err(ILLEGAL_ADDRESS); // the tile would overrun its shared memory
    }
    for y in 0..a.grid[0] as usize {
        if y >= p.h {
            return Err(ILLEGAL_ADDRESS);
        }
        for sy in 0..a.grid[1] as usize {
            for x in sy * seg..((sy + 1) * seg).min(p.w) {
                let row = &p.input[y * p.w..(y + 1) * p.w];
                let v = p.tap(|d| row[reflect101(x as i64 + d, p.w as i64)]);
                p.out[y * p.w + x] = v;
            }
        }
    }
    p.write(m)
}

/// `blur_rows_direct`: block x = row, one output per thread along y segments.
pub(super) fn blur_rows_direct(a: &Args<'_>, m: &mut Memory) -> Result<(), CuResult> {
    let mut p = Pass::read(a, m)?;
    let bx = a.block[0] as usize;
    for y in 0..a.grid[0] as usize {
        if y >= p.h {
            return Err(ILLEGAL_ADDRESS);
        }
        for x in 0..(a.grid[1] as usize * bx).min(p.w) {
            let row = &p.input[y * p.w..(y + 1) * p.w];
            p.out[y * p.w + x] = p.tap(|d| row[reflect101(x as i64 + d, p.w as i64)]);
        }
    }
    p.write(m)
}

/// `blur_cols`: 32x8 blocks, each 32 columns by `COL_ROWS` rows.
pub(super) fn blur_cols(a: &Args<'_>, m: &mut Memory) -> Result<(), CuResult> {
    a.require_block([32, 8, 1])?;
    let mut p = Pass::read(a, m)?;
    if (a.shared as usize) < (p.r + 1 + (COL_ROWS + 2 * p.r) * 32) * 4 {
        return Err(ILLEGAL_ADDRESS);
    }
    for x in 0..(a.grid[0] as usize * 32).min(p.w) {
        for y in 0..(a.grid[1] as usize * COL_ROWS).min(p.h) {
            let v = p.tap(|d| p.input[reflect101(y as i64 + d, p.h as i64) * p.w + x]);
            p.out[y * p.w + x] = v;
        }
    }
    p.write(m)
}

/// `blur_cols_direct`: one column per thread, rows strided by the grid's y.
pub(super) fn blur_cols_direct(a: &Args<'_>, m: &mut Memory) -> Result<(), CuResult> {
    let mut p = Pass::read(a, m)?;
    let cols = (a.grid[0] as usize * a.block[0] as usize).min(p.w);
    let rows = if a.grid[1] == 0 { 0 } else { p.h };
    for x in 0..cols {
        for y in 0..rows {
            let v = p.tap(|d| p.input[reflect101(y as i64 + d, p.h as i64) * p.w + x]);
            p.out[y * p.w + x] = v;
        }
    }
    p.write(m)
}

/// `sobel(in, out, h, w)`: 32x8 blocks, each a 32x32 tile.
pub(super) fn sobel(a: &Args<'_>, m: &mut Memory) -> Result<(), CuResult> {
    a.require_block([32, 8, 1])?;
    let (h, w) = (a.size(2)?, a.size(3)?);
    let input: Vec<f32> = m.read(a.u64(0)?, h * w)?;
    let mut out: Vec<f32> = m.read(a.u64(1)?, h * w)?;
    let at = |y: i64, x: i64| input[reflect101(y, h as i64) * w + reflect101(x, w as i64)];
    for y in 0..(a.grid[1] as usize * 32).min(h) {
        for x in 0..(a.grid[0] as usize * 32).min(w) {
            let (yi, xi) = (y as i64, x as i64);
            let (a0, a1, a2) = (at(yi - 1, xi - 1), at(yi - 1, xi), at(yi - 1, xi + 1));
            let (b0, b2) = (at(yi, xi - 1), at(yi, xi + 1));
            let (c0, c1, c2) = (at(yi + 1, xi - 1), at(yi + 1, xi), at(yi + 1, xi + 1));
            let gx = (a2 - a0) + 2.0 * (b2 - b0) + (c2 - c0);
            let gy = (c0 + 2.0 * c1 + c2) - (a0 + 2.0 * a1 + a2);
            out[y * w + x] = gx.mul_add(gx, gy * gy).sqrt();
        }
    }
    m.write(a.u64(1)?, &out)
}
