//! CPU twins of the kernels: each computes what its kernel computes, over the grid it
//! was launched with (a launch that covers half the data computes half), reading and
//! writing device memory through the arena, so an out-of-range access is an illegal
//! address as on a GPU.

pub mod foreign;
mod image_filter;
mod mlp;
mod sgemm;
mod synth;
mod vector_add;

use crate::abi::{CuResult, INVALID_VALUE};
use crate::memory::Memory;

/// A launch as a twin sees it: the grid, the block, dynamic shared memory and the raw
/// parameter bytes, decoded by the PTX signature.
#[derive(Debug)]
pub struct Args<'a> {
    /// The kernel's `.entry` name.
    pub name: &'a str,
    /// Blocks per grid, x y z.
    pub grid: [u32; 3],
    /// Threads per block, x y z.
    pub block: [u32; 3],
    /// Dynamic shared memory bytes.
    pub shared: u32,
    /// Each parameter's bytes.
    pub params: &'a [Vec<u8>],
}

impl Args<'_> {
    fn raw<const N: usize>(&self, i: usize) -> Result<[u8; N], CuResult> {
        let p = self.params.get(i).ok_or(INVALID_VALUE)?;
        p.as_slice().try_into().map_err(|_| INVALID_VALUE)
    }

    /// Parameter `i` as a device pointer or `u64`.
    pub fn u64(&self, i: usize) -> Result<u64, CuResult> {
        Ok(u64::from_le_bytes(self.raw(i)?))
    }

    /// Parameter `i` as an `int`.
    pub fn i32(&self, i: usize) -> Result<i32, CuResult> {
        Ok(i32::from_le_bytes(self.raw(i)?))
    }

    /// Parameter `i` as a `float`.
    pub fn f32(&self, i: usize) -> Result<f32, CuResult> {
        Ok(f32::from_le_bytes(self.raw(i)?))
    }

    /// Parameter `i` as a non-negative `int` size.
    pub fn size(&self, i: usize) -> Result<usize, CuResult> {
        usize::try_from(self.i32(i)?).map_err(|_| INVALID_VALUE)
    }

    /// Threads in the whole grid along x (grid-stride loops cover everything when > 0).
    pub fn threads_x(&self) -> u64 {
        u64::from(self.grid[0]) * u64::from(self.block[0])
    }

    /// Refuses a block shape the kernel hard-codes differently (the kernel would
    /// compute garbage; the twin says so instead).
    pub fn require_block(&self, block: [u32; 3]) -> Result<(), CuResult> {
        if self.block == block {
            Ok(())
        } else {
            Err(INVALID_VALUE)
        }
    }
}

/// A built-in twin: its parameter count and its body.
#[derive(Debug, Clone, Copy)]
pub struct Twin {
    /// Parameters the kernel takes.
    pub params: usize,
    /// Runs the launch.
    pub run: fn(&Args<'_>, &mut Memory) -> Result<(), CuResult>,
}

/// The twin of a shipped kernel, by `.entry` name.
pub fn builtin(name: &str) -> Option<Twin> {
    let t = |params, run| Some(Twin { params, run });
    match name {
        "fill_uniform" => t(6, synth::fill_uniform),
        "vector_add" => t(4, vector_add::vector_add),
        "blur_rows" => t(6, image_filter::blur_rows),
        "blur_rows_direct" => t(6, image_filter::blur_rows_direct),
        "blur_cols" => t(6, image_filter::blur_cols),
        "blur_cols_direct" => t(6, image_filter::blur_cols_direct),
        "sobel" => t(4, image_filter::sobel),
        "gather_rows" => t(5, mlp::gather_rows),
        "bias_act" => t(5, mlp::bias_act),
        "softmax_xent" => t(9, mlp::softmax_xent),
        "relu_mask" => t(3, mlp::relu_mask),
        "bias_sgd" => t(5, mlp::bias_sgd),
        "transpose" => t(4, mlp::transpose),
        "softmax_rows" => t(5, mlp::softmax_rows),
        n => sgemm::variant(n).map(|_| Twin {
            params: 11,
            run: sgemm::sgemm,
        }),
    }
}

/// Element indices a 1-D grid-stride loop over `n` elements visits: all of them when
/// the grid has any thread.
pub(crate) fn grid_stride(a: &Args<'_>, n: u64) -> std::ops::Range<u64> {
    if a.threads_x() == 0 { 0..0 } else { 0..n }
}
