//! The forward pass of dense ReLU layers on the CPU and what is read off its logits
//! (softmax, cross-entropy, argmax): shared by `mlp-train` (its minibatches and its
//! held-out evaluation) and `mlp-predict`, so a model predicts exactly as it trained.

use crate::matmul::gemm;
use faer::{Accum, MatMut, MatRef};
use gpujobs_core::CancelFlag;
use gpujobs_core::JobError;
use gpujobs_core::kinds::MlpDataset;
use rayon::prelude::*;

/// One dense layer's parameters: `w` row-major `in × out`, `b` of length `out`.
#[derive(Clone, Copy)]
pub(crate) struct Layer<'a> {
    pub(crate) w: &'a [f32],
    pub(crate) b: &'a [f32],
}

/// Activation buffers for batches of up to `rows` rows: `acts[l]` holds layer `l`'s input.
pub(crate) fn activations(dims: &[usize], rows: usize) -> Vec<Vec<f32>> {
    dims.iter().map(|&d| vec![0f32; rows * d]).collect()
}

/// With `bs` input rows in `acts[0]`, computes `acts[l + 1] = act(acts[l] · W_l + b_l)`
/// for every layer: ReLU on all but the last, whose output (the logits) is left linear.
pub(crate) fn forward(dims: &[usize], layers: &[Layer<'_>], acts: &mut [Vec<f32>], bs: usize) {
    forward_rows(dims, layers, None, acts, bs);
}

/// [`forward`], reading the first layer's `bs` input rows from `x` when given (rows the
/// caller already holds contiguously, as `mlp-predict` does) instead of `acts[0]`.
pub(crate) fn forward_rows(
    dims: &[usize],
    layers: &[Layer<'_>],
    x: Option<&[f32]>,
    acts: &mut [Vec<f32>],
    bs: usize,
) {
    let last = layers.len();
    for (l, layer) in layers.iter().enumerate() {
        let (din, dout) = (dims[l], dims[l + 1]);
        let (inputs, outputs) = acts.split_at_mut(l + 1);
        let h = match x {
            Some(x) if l == 0 => &x[..bs * din],
            _ => &inputs[l][..bs * din],
        };
        let z = &mut outputs[0][..bs * dout];
        gemm(
            MatMut::from_row_major_slice_mut(z, bs, dout),
            Accum::Replace,
            MatRef::from_row_major_slice(h, bs, din),
            MatRef::from_row_major_slice(layer.w, din, dout),
            1.0,
        );
        add_bias(z, layer.b, l + 1 < last);
    }
}

/// Values from which the bias pass is split over threads: below, one thread is quicker
/// than waking the others.
const PARALLEL_BIAS: usize = 1 << 16;

/// Adds `b` to every row of `z` (rows of `b.len()` values), then ReLU when `relu`: on
/// every thread for large batches (the GEMM before it already is).
fn add_bias(z: &mut [f32], b: &[f32], relu: bool) {
    let rows = |z: &mut [f32]| {
        for row in z.chunks_mut(b.len()) {
            for (v, &b) in row.iter_mut().zip(b) {
                let s = *v + b;
                *v = if relu { s.max(0.0) } else { s };
            }
        }
    };
    let threads = rayon::current_num_threads();
    if z.len() < PARALLEL_BIAS || threads == 1 || b.is_empty() {
        rows(z);
        return;
    }
    let per = z.len().div_ceil(threads * 4).div_ceil(b.len()) * b.len();
    z.par_chunks_mut(per).for_each(rows);
}

/// A row of logits' largest value and `Σ exp(l − max)`: softmax is `exp(l − max) / sum`
/// and the cross-entropy of class `c` is `−(l[c] − max − ln sum)`.
pub(crate) fn softmax_parts(logits: &[f32]) -> (f32, f32) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum = logits.iter().map(|&v| (v - max).exp()).sum();
    (max, sum)
}

/// Index of the first largest value.
pub(crate) fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Mean cross-entropy and accuracy of the model on `data`, in batches of `batch` rows
/// (`acts` sized for them).
pub(crate) fn evaluate(
    dims: &[usize],
    layers: &[Layer<'_>],
    data: &MlpDataset,
    batch: usize,
    acts: &mut [Vec<f32>],
    cancel: &CancelFlag,
) -> Result<(f64, f64), JobError> {
    let (features, classes, out) = (dims[0], dims[dims.len() - 1], dims.len() - 1);
    let (mut loss, mut correct) = (0f64, 0usize);
    for start in (0..data.samples).step_by(batch.max(1)) {
        cancel.check()?;
        let bs = batch.min(data.samples - start);
        acts[0][..bs * features]
            .copy_from_slice(&data.x[start * features..(start + bs) * features]);
        forward(dims, layers, acts, bs);
        for (r, logits) in acts[out][..bs * classes].chunks(classes).enumerate() {
            let label = data.y[start + r] as usize;
            let (max, sum) = softmax_parts(logits);
            loss += f64::from(-(logits[label] - max - sum.ln()));
            if argmax(logits) == label {
                correct += 1;
            }
        }
    }
    let n = data.samples.max(1) as f64;
    Ok((loss / n, correct as f64 / n))
}

/// Softmax probabilities (`rows × classes`) and predicted labels (`rows`, as `f32`) of
/// `rows` inputs `x`, in batches of `batch` rows.
pub(crate) fn predict(
    dims: &[usize],
    layers: &[Layer<'_>],
    x: &[f32],
    rows: usize,
    batch: usize,
    cancel: &CancelFlag,
) -> Result<(Vec<f32>, Vec<f32>), JobError> {
    let (features, classes, out) = (dims[0], dims[dims.len() - 1], dims.len() - 1);
    let batch = batch.clamp(1, rows.max(1));
    // Buffers for the layers' outputs only: the rows come straight from `x`, so acts[0]
    // stays empty.
    let mut acts = activations(&dims[1..], batch);
    acts.insert(0, Vec::new());
    let mut probs = vec![0f32; rows * classes];
    let mut labels = vec![0f32; rows];
    for start in (0..rows).step_by(batch) {
        cancel.check()?;
        let bs = batch.min(rows - start);
        let rows_in = &x[start * features..(start + bs) * features];
        forward_rows(dims, layers, Some(rows_in), &mut acts, bs);
        let logits = acts[out][..bs * classes].chunks(classes);
        let p = probs[start * classes..(start + bs) * classes].chunks_mut(classes);
        for ((logits, p), label) in logits.zip(p).zip(&mut labels[start..start + bs]) {
            let (max, sum) = softmax_parts(logits);
            for (p, &l) in p.iter_mut().zip(logits) {
                *p = (l - max).exp() / sum;
            }
            *label = argmax(logits) as f32;
        }
    }
    Ok((probs, labels))
}
