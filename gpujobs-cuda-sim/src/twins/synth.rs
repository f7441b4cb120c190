//! `synth.cu`.

use super::{Args, grid_stride};
use crate::abi::CuResult;
use crate::memory::Memory;

fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `fill_uniform(out, n, seed, start, lo, hi)`.
pub(super) fn fill_uniform(a: &Args<'_>, m: &mut Memory) -> Result<(), CuResult> {
    let (out, n, seed, start, lo, hi) = (
        a.u64(0)?,
        a.u64(1)?,
        a.u64(2)?,
        a.u64(3)?,
        a.f32(4)?,
        a.f32(5)?,
    );
    let span = hi - lo;
    let values: Vec<f32> = grid_stride(a, n)
        .map(|i| {
            let bits = splitmix64(
                seed.wrapping_add(
                    start
                        .wrapping_add(i)
                        .wrapping_add(1)
                        .wrapping_mul(0x9E37_79B9_7F4A_7C15),
                ),
            );
            let unit = (bits >> 40) as f32 * (1.0 / 16_777_216.0);
            lo + span * unit
        })
        .collect();
    m.write(out, &values)
}
