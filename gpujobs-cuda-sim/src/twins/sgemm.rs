//! `sgemm.cu`: `C = alpha * A(MxK) * B(KxN) + beta * C`, row-major, one BM x BN tile of
//! C per block, each element accumulated over k in ascending order with fused
//! multiply-adds, as the kernels do. Vectorised variants need 16-byte alignment and
//! K, N and the leading dimensions divisible by 4; a launch that breaks that is a
//! misaligned address, as on the device.

use super::Args;
use crate::abi::{CuResult, ILLEGAL_ADDRESS, INVALID_VALUE, MISALIGNED_ADDRESS};
use crate::memory::Memory;

/// A variant's tile: rows and columns of C per block, threads per block, vectorised.
pub(super) fn variant(name: &str) -> Option<(usize, usize, u32, bool)> {
    Some(match name {
        "sgemm_128x128x8_vec" | "sgemm_128x128x16_vec" => (128, 128, 256, true),
        "sgemm_128x64x8_vec" => (128, 64, 256, true),
        "sgemm_64x64x8_vec" => (64, 64, 256, true),
        "sgemm_128x128x8_scalar" => (128, 128, 256, false),
        "sgemm_64x64x8_scalar" => (64, 64, 256, false),
        _ => return None,
    })
}

/// Runs any variant: the tile comes from the kernel's name.
pub(super) fn sgemm(a: &Args<'_>, m: &mut Memory) -> Result<(), CuResult> {
    let (mm, nn, kk) = (a.size(0)?, a.size(1)?, a.size(2)?);
    let (alpha, pa, lda, pb, ldb, beta, pc, ldc) = (
        a.f32(3)?,
        a.u64(4)?,
        a.size(5)?,
        a.u64(6)?,
        a.size(7)?,
        a.f32(8)?,
        a.u64(9)?,
        a.size(10)?,
    );
    let (bm, bn, threads, vec) = variant(a.name).ok_or(INVALID_VALUE)?;
    if a.block[0] * a.block[1] * a.block[2] != threads {
        return Err(INVALID_VALUE);
    }
    if vec
        && (kk % 4 != 0
            || nn % 4 != 0
            || lda % 4 != 0
            || ldb % 4 != 0
            || ldc % 4 != 0
            || pa % 16 != 0
            || pb % 16 != 0
            || pc % 16 != 0)
    {
        return Err(MISALIGNED_ADDRESS);
    }
    if mm == 0 || nn == 0 {
        return Ok(());
    }
    if lda < kk || ldb < nn || ldc < nn {
        return Err(ILLEGAL_ADDRESS);
    }
    let rows = (a.grid[1] as usize * bm).min(mm);
    let cols = (a.grid[0] as usize * bn).min(nn);
    let av: Vec<f32> = m.read(pa, (mm - 1) * lda + kk.max(1))?;
    let bv: Vec<f32> = if kk == 0 {
        Vec::new()
    } else {
        m.read(pb, (kk - 1) * ldb + nn)?
    };
    let mut cv: Vec<f32> = m.read(pc, (mm - 1) * ldc + nn)?;
    let shape = Shape {
        kk,
        ldb,
        cols,
        alpha,
        beta,
    };
    let chunk = rows
        .div_ceil(
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(8),
        )
        .max(1);
    std::thread::scope(|scope| {
        for (i, part) in cv
            .chunks_mut(chunk * ldc)
            .enumerate()
            .take(rows.div_ceil(chunk))
        {
            let (av, bv, shape) = (&av, &bv, &shape);
            scope.spawn(move || {
                let first = i * chunk;
                let last = (first + chunk).min(rows);
                for r in first..last {
                    let out = &mut part[(r - first) * ldc..];
                    shape.row(&av[r * lda..], bv, out);
                }
            });
        }
    });
    m.write(pc, &cv)
}

struct Shape {
    kk: usize,
    ldb: usize,
    cols: usize,
    alpha: f32,
    beta: f32,
}

impl Shape {
    /// One row of C: `acc[j] = fma(a[k], b[k][j], acc[j])` for k ascending, then
    /// `alpha * acc`, plus `beta * old` (fused) when beta is not zero.
    fn row(&self, a: &[f32], b: &[f32], out: &mut [f32]) {
        let mut acc = vec![0f32; self.cols];
        fma_rows(&mut acc, a, b, self.kk, self.ldb);
        for (j, v) in acc.iter().enumerate() {
            let x = self.alpha * v;
            out[j] = if self.beta != 0.0 {
                self.beta.mul_add(out[j], x)
            } else {
                x
            };
        }
    }
}

/// `acc[j] += a[k] * b[k][j]` (fused) over k, with the CPU's FMA units when it has them.
fn fma_rows(acc: &mut [f32], a: &[f32], b: &[f32], kk: usize, ldb: usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has the features the function is compiled for.
        unsafe { fma_rows_avx2(acc, a, b, kk, ldb) };
        return;
    }
    fma_rows_plain(acc, a, b, kk, ldb);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_rows_avx2(acc: &mut [f32], a: &[f32], b: &[f32], kk: usize, ldb: usize) {
    fma_rows_plain(acc, a, b, kk, ldb);
}

#[inline(always)]
fn fma_rows_plain(acc: &mut [f32], a: &[f32], b: &[f32], kk: usize, ldb: usize) {
    let n = acc.len();
    for k in 0..kk {
        let x = a[k];
        let row = &b[k * ldb..k * ldb + n];
        for (c, y) in acc.iter_mut().zip(row) {
            *c = x.mul_add(*y, *c);
        }
    }
}
