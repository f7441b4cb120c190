//! The block digest written out in AVX-512, two blocks at a time.
//!
//! The compiler vectorizes the plain digest well, but each block's hash is one chain of
//! multiplies (about ten cycles each), so a lone block waits on it and the digest runs
//! far below memory speed. Here two blocks share a loop: two independent chains keep
//! the multiplier busy, and every step is one instruction on sixteen lanes. Each lane
//! does exactly the operations of `digest_impl` in the same order, and the lanes are
//! folded by the same `reduce`, so the digest is bit for bit the plain one's (a test
//! compares them on values with NaNs, infinities and signed zeros).

use super::{Digest, FNV32_OFFSET, FNV32_PRIME, LANES, Lanes, reduce};
use std::arch::x86_64::*;

/// One block's sixteen lanes, in registers.
struct Acc {
    sum: [__m512d; 2],
    sq: [__m512d; 2],
    min: __m512,
    max: __m512,
    nf: __m512i,
    hash: __m512i,
}

#[target_feature(enable = "avx512f")]
fn start() -> Acc {
    Acc {
        sum: [_mm512_setzero_pd(); 2],
        sq: [_mm512_setzero_pd(); 2],
        min: _mm512_set1_ps(f32::INFINITY),
        max: _mm512_set1_ps(f32::NEG_INFINITY),
        nf: _mm512_setzero_si512(),
        hash: _mm512_set1_epi32(FNV32_OFFSET as i32),
    }
}

/// One step of `digest_impl` on sixteen values, lane `l` taking value `l`.
#[target_feature(enable = "avx512f")]
#[inline]
fn step(a: &mut Acc, chunk: &[f32; LANES]) {
    // SAFETY: `chunk` is 16 readable f32s, the 64 bytes an unaligned load reads.
    #[allow(unsafe_code)]
    let v = unsafe { _mm512_loadu_ps(chunk.as_ptr()) };
    let bits = _mm512_castps_si512(v);
    // Finite: the magnitude's bits below those of infinity (NaNs are above).
    let magnitude = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fff_ffff));
    let finite = _mm512_cmplt_epi32_mask(magnitude, _mm512_set1_epi32(0x7f80_0000));
    // Non-finite values count as 0.0 in the sums.
    let lo = _mm512_maskz_cvtps_pd(finite as u8, _mm512_castps512_ps256(v));
    let hi_half = _mm256_castsi256_ps(_mm512_extracti64x4_epi64::<1>(bits));
    let hi = _mm512_maskz_cvtps_pd((finite >> 8) as u8, hi_half);
    a.sum[0] = _mm512_add_pd(a.sum[0], lo);
    a.sum[1] = _mm512_add_pd(a.sum[1], hi);
    a.sq[0] = _mm512_add_pd(a.sq[0], _mm512_mul_pd(lo, lo));
    a.sq[1] = _mm512_add_pd(a.sq[1], _mm512_mul_pd(hi, hi));
    // `v < min ? v : min` on finite lanes (a tie keeps the running value, as the
    // compiled `f32::min` of the plain path does); other lanes keep theirs.
    a.min = _mm512_mask_min_ps(a.min, finite, v, a.min);
    a.max = _mm512_mask_max_ps(a.max, finite, v, a.max);
    a.nf = _mm512_mask_add_epi32(a.nf, !finite, a.nf, _mm512_set1_epi32(1));
    a.hash = _mm512_mullo_epi32(
        _mm512_xor_si512(a.hash, bits),
        _mm512_set1_epi32(FNV32_PRIME as i32),
    );
}

/// The registers as the plain path's lanes, then its fold.
#[target_feature(enable = "avx512f")]
fn finish(a: &Acc, len: usize) -> Digest {
    let mut lanes = Lanes {
        sum: [0.0; LANES],
        sq: [0.0; LANES],
        min: [0.0; LANES],
        max: [0.0; LANES],
        nf: [0; LANES],
        hash: [0; LANES],
    };
    // SAFETY: every store writes 64 bytes inside a 16-element array (128 bytes for the
    // f64 arrays, written as two halves).
    #[allow(unsafe_code)]
    unsafe {
        _mm512_storeu_pd(lanes.sum.as_mut_ptr(), a.sum[0]);
        _mm512_storeu_pd(lanes.sum.as_mut_ptr().add(8), a.sum[1]);
        _mm512_storeu_pd(lanes.sq.as_mut_ptr(), a.sq[0]);
        _mm512_storeu_pd(lanes.sq.as_mut_ptr().add(8), a.sq[1]);
        _mm512_storeu_ps(lanes.min.as_mut_ptr(), a.min);
        _mm512_storeu_ps(lanes.max.as_mut_ptr(), a.max);
        _mm512_storeu_si512(lanes.nf.as_mut_ptr().cast(), a.nf);
        _mm512_storeu_si512(lanes.hash.as_mut_ptr().cast(), a.hash);
    }
    reduce(&lanes, len)
}

/// The digests of two blocks of equal length, a multiple of 16 (whole blocks). Callers
/// check that the CPU has AVX-512 F before calling it (calling it is `unsafe`).
#[target_feature(enable = "avx512f")]
pub(super) fn digest_pair(a: &[f32], b: &[f32]) -> (Digest, Digest) {
    debug_assert!(a.len() == b.len() && a.len().is_multiple_of(LANES));
    let (mut x, mut y) = (start(), start());
    let (ca, _) = a.as_chunks::<LANES>();
    let (cb, _) = b.as_chunks::<LANES>();
    for (va, vb) in ca.iter().zip(cb) {
        step(&mut x, va);
        step(&mut y, vb);
    }
    (finish(&x, a.len()), finish(&y, b.len()))
}
