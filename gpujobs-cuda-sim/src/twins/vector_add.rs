//! `vector_add.cu`.

use super::{Args, grid_stride};
use crate::abi::{CuResult, MISALIGNED_ADDRESS};
use crate::memory::Memory;

/// `vector_add(a, b, c, n)`: 16-byte loads, so every pointer must be 16-byte aligned.
pub(super) fn vector_add(args: &Args<'_>, m: &mut Memory) -> Result<(), CuResult> {
    let (a, b, c, n) = (args.u64(0)?, args.u64(1)?, args.u64(2)?, args.u64(3)?);
    if n >= 4 && (a % 16 != 0 || b % 16 != 0 || c % 16 != 0) {
        return Err(MISALIGNED_ADDRESS);
    }
    let range = grid_stride(args, n);
    let len = (range.end - range.start) as usize;
    let x: Vec<f32> = m.read(a, len)?;
    let y: Vec<f32> = m.read(b, len)?;
    let sum: Vec<f32> = x.iter().zip(&y).map(|(p, q)| p + q).collect();
    m.write(c, &sum)
}
