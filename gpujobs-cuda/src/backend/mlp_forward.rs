//! The forward pass of dense ReLU layers on the device, shared by `mlp-train` (its
//! minibatches and its held-out evaluation) and `mlp-predict`: per layer one GEMM on
//! the sgemm kernels, then the bias and ReLU in one element-wise kernel.

use super::matmul::{Gemm, Operand};
use super::state::DeviceState;
use crate::kernels;
use cust::memory::DeviceBuffer;
use gpujobs_core::JobError;

/// A device pointer as the kernels take it.
pub(super) fn ptr<T: cust::memory::DeviceCopy>(b: &DeviceBuffer<T>) -> u64 {
    b.as_device_ptr().as_raw()
}

/// Blocks of 256 threads for `n` elements, at most 16 per SM (grid-stride loops).
pub(super) fn blocks(n: usize, sms: u32) -> u32 {
    (n.div_ceil(256) as u32).clamp(1, sms * 16)
}

/// `x` as the kernels' `int`, or a permanent error naming it.
pub(super) fn to_i32(x: usize, what: &str) -> Result<i32, JobError> {
    i32::try_from(x)
        .map_err(|_| JobError::permanent(format!("{what} = {x} is too large for the GPU kernels")))
}

/// One dense layer on the device: `w` row-major `din × dout`, `b` of length `dout`.
pub(super) struct Layer {
    pub(super) w: DeviceBuffer<f32>,
    pub(super) b: DeviceBuffer<f32>,
    pub(super) din: usize,
    pub(super) dout: usize,
}

/// Enqueues the forward pass of `bs` rows whose inputs start at device address `input`
/// (row-major, `net[0].din` wide): `acts[l + 1] = act(in_l · W_l + b_l)` with ReLU on
/// all but the last layer, whose output (the logits) ends in `acts[net.len()]`.
/// `acts[0]` is not read (the input is `input`).
pub(super) fn forward(
    s: &mut DeviceState,
    net: &[Layer],
    acts: &[DeviceBuffer<f32>],
    input: u64,
    bs: usize,
) -> Result<(), JobError> {
    let bsi = to_i32(bs, "batch")?;
    for (l, layer) in net.iter().enumerate() {
        let pin = if l == 0 { input } else { ptr(&acts[l]) };
        let pout = ptr(&acts[l + 1]);
        let (din, dout) = (to_i32(layer.din, "width")?, to_i32(layer.dout, "width")?);
        let g = Gemm::plain(
            bs,
            layer.dout,
            layer.din,
            Operand { ptr: pin, ld: din },
            Operand {
                ptr: ptr(&layer.w),
                ld: dout,
            },
            Operand {
                ptr: pout,
                ld: dout,
            },
        );
        s.sgemm(&g, false)?;
        let (pb, relu) = (ptr(&layer.b), i32::from(l + 1 < net.len()));
        crate::launch!(s, kernels::BIAS_ACT, blocks(bs * layer.dout, s.sms), 256, 0; pout, pb, bsi, dout, relu)?;
    }
    Ok(())
}
