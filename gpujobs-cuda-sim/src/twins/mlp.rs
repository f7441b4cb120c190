//! `mlp.cu`: the element-wise steps of MLP training and prediction.

use super::{Args, grid_stride};
use crate::abi::{CuResult, ILLEGAL_ADDRESS};
use crate::memory::Memory;

/// `gather_rows(x, idx, out, rows, cols)`: `out[r][c] = x[idx[r]][c]`.
pub(super) fn gather_rows(a: &Args<'_>, m: &mut Memory) -> Result<(), CuResult> {
    let (x, idx, out, rows, cols) = (a.u64(0)?, a.u64(1)?, a.u64(2)?, a.size(3)?, a.size(4)?);
    let n = grid_stride(a, (rows * cols) as u64).end as usize;
    let order: Vec<u32> = m.read(idx, rows)?;
    let mut values = Vec::with_capacity(n);
    for (r, &src) in order.iter().enumerate().take(n.div_ceil(cols.max(1))) {
        let take = cols.min(n - r * cols);
        values.extend(m.read::<f32>(x + (src as usize * cols * 4) as u64, take)?);
    }
    m.write(out, &values)
}

/// `bias_act(z, b, rows, cols, relu)`.
pub(super) fn bias_act(a: &Args<'_>, m: &mut Memory) -> Result<(), CuResult> {
    let (z, b, rows, cols, relu) = (a.u64(0)?, a.u64(1)?, a.size(2)?, a.size(3)?, a.i32(4)?);
    let n = grid_stride(a, (rows * cols) as u64).end as usize;
    let bias: Vec<f32> = m.read(b, cols)?;
    let mut v: Vec<f32> = m.read(z, n)?;
    for (i, x) in v.iter_mut().enumerate() {
        let s = *x + bias[i % cols];
        *x = if relu != 0 { s.max(0.0) } else { s };
    }
    m.write(z, &v)
}

/// The first largest value of a row and its index, as a warp of 32 lanes finds it
/// (lane-strided scan, then a butterfly that prefers the lower index on ties), and the
/// warp's sum of `exp(l - max)` in the kernel's order.
fn warp_max_sum(l: &[f32]) -> (f32, i32, f32) {
    let mut mx = [f32::NEG_INFINITY; 32];
    let mut arg = [i32::MAX; 32];
    for lane in 0..32 {
        for c in (lane..l.len()).step_by(32) {
            if l[c] > mx[lane] {
                mx[lane] = l[c];
                arg[lane] = c as i32;
            }
        }
    }
    let mut o = 16;
    while o > 0 {
        let (pm, pa) = (mx, arg);
        for lane in 0..32 {
            let (om, oa) = (pm[lane ^ o], pa[lane ^ o]);
            if om > mx[lane] || (om == mx[lane] && oa < arg[lane]) {
                mx[lane] = om;
                arg[lane] = oa;
            }
        }
        o /= 2;
    }
    let top = mx[0];
    let mut sum = [0f32; 32];
    for (lane, s) in sum.iter_mut().enumerate() {
        for c in (lane..l.len()).step_by(32) {
            *s += (l[c] - top).exp();
        }
    }
    let mut o = 16;
    while o > 0 {
        let prev = sum;
        for lane in 0..32 {
            sum[lane] = prev[lane] + prev[lane ^ o];
        }
        o /= 2;
    }
    (top, arg[0], sum[0])
}

/// Rows a one-warp-per-row launch covers.
fn warps(a: &Args<'_>, rows: usize) -> usize {
    ((a.threads_x() / 32) as usize).min(rows)
}

/// `softmax_xent(logits, labels, idx, grad, rows, classes, inv_bs, loss_sum, correct)`.
pub(super) fn softmax_xent(a: &Args<'_>, m: &mut Memory) -> Result<(), CuResult> {
    let (logits, labels, idx, grad) = (a.u64(0)?, a.u64(1)?, a.u64(2)?, a.u64(3)?);
    let (rows, classes, inv_bs) = (a.size(4)?, a.size(5)?, a.f32(6)?);
    let (loss_sum, correct) = (a.u64(7)?, a.u64(8)?);
    let mut loss = m.read_at::<f64>(loss_sum, 0)?;
    let mut right = m.read_at::<u64>(correct, 0)?;
    for w in 0..warps(a, rows) {
        let l: Vec<f32> = m.read(logits + (w * classes * 4) as u64, classes)?;
        let (mx, arg, sum) = warp_max_sum(&l);
        let label = m.read_at::<u32>(labels, m.read_at::<u32>(idx, w)? as usize)? as usize;
        let g: Vec<f32> = (0..classes)
            .map(|c| ((l[c] - mx).exp() / sum - if c == label { 1.0 } else { 0.0 }) * inv_bs)
            .collect();
        m.write(grad + (w * classes * 4) as u64, &g)?;
        let at = *l.get(label).ok_or(ILLEGAL_ADDRESS)?;
        loss += f64::from(-(at - mx - sum.ln()));
        if arg == label as i32 {
            right += 1;
        }
    }
    m.write_at(loss_sum, 0, loss)?;
    m.write_at(correct, 0, right)
}

/// `relu_mask(g, h, n)`: `g[i] = 0` where `h[i] <= 0`.
pub(super) fn relu_mask(a: &Args<'_>, m: &mut Memory) -> Result<(), CuResult> {
    let (g, h, n) = (a.u64(0)?, a.u64(1)?, a.u64(2)?);
    let n = grid_stride(a, n).end as usize;
    let hv: Vec<f32> = m.read(h, n)?;
    let mut gv: Vec<f32> = m.read(g, n)?;
    for (x, y) in gv.iter_mut().zip(&hv) {
        if *y <= 0.0 {
            *x = 0.0;
        }
    }
    m.write(g, &gv)
}

/// `bias_sgd(b, g, rows, cols, lr)`: `b[c] -= lr * sum over rows of g[r][c]`.
pub(super) fn bias_sgd(a: &Args<'_>, m: &mut Memory) -> Result<(), CuResult> {
    let (b, g, rows, cols, lr) = (a.u64(0)?, a.u64(1)?, a.size(2)?, a.size(3)?, a.f32(4)?);
    let covered = (a.threads_x() as usize).min(cols);
    let gv: Vec<f32> = m.read(g, rows * cols)?;
    let mut bv: Vec<f32> = m.read(b, cols)?;
    for (c, bc) in bv.iter_mut().enumerate().take(covered) {
        let mut s = 0f32;
        for r in 0..rows {
            s += gv[r * cols + c];
        }
        *bc -= lr * s;
    }
    m.write(b, &bv)
}

/// `transpose(in, out, rows, cols)`: 32x8 blocks, each a 32x32 tile.
pub(super) fn transpose(a: &Args<'_>, m: &mut Memory) -> Result<(), CuResult> {
    a.require_block([32, 8, 1])?;
    let (input, out, rows, cols) = (a.u64(0)?, a.u64(1)?, a.size(2)?, a.size(3)?);
    let src: Vec<f32> = m.read(input, rows * cols)?;
    let mut dst: Vec<f32> = m.read(out, rows * cols)?;
    for y in 0..(a.grid[1] as usize * 32).min(rows) {
        for x in 0..(a.grid[0] as usize * 32).min(cols) {
            dst[x * rows + y] = src[y * cols + x];
        }
    }
    m.write(out, &dst)
}

/// `softmax_rows(logits, probs, labels, rows, classes)`.
pub(super) fn softmax_rows(a: &Args<'_>, m: &mut Memory) -> Result<(), CuResult> {
    let (logits, probs, labels, rows, classes) =
        (a.u64(0)?, a.u64(1)?, a.u64(2)?, a.size(3)?, a.size(4)?);
    for w in 0..warps(a, rows) {
        let l: Vec<f32> = m.read(logits + (w * classes * 4) as u64, classes)?;
        let (mx, arg, sum) = warp_max_sum(&l);
        let p: Vec<f32> = l.iter().map(|x| (x - mx).exp() / sum).collect();
        m.write(probs + (w * classes * 4) as u64, &p)?;
        m.write_at(labels, w, arg as f32)?;
    }
    Ok(())
}
