//! `mlp-train` on the GPU: data, weights and activations stay on the device for the
//! whole run; each minibatch is a gather, the layer GEMMs with fused bias and ReLU,
//! softmax cross-entropy with its gradient, and the backward GEMMs with the SGD update
//! folded into the weight-gradient GEMM (`W ← W − lr·HᵀG` as `beta = 1`). Only the
//! epoch's order goes up and its loss and accuracy come back, once per epoch.

use super::CudaExecutor;
use super::matmul::{Gemm, Operand};
use super::mlp_forward::{Layer, blocks, forward, ptr, to_i32};
use super::state::DeviceState;
use crate::kernels;
use async_trait::async_trait;
use cust::memory::{AsyncCopyDestination, CopyDestination, DeviceBuffer, LockedBuffer};
use gpujobs_core::kinds::{EpochStats, MlpTrain, MlpTrainOutput};
use gpujobs_core::{CancelFlag, ExecContext, Execution, Executor, JobError, StageTimes};
use std::time::{Duration, Instant};

fn train(
    s: &mut DeviceState,
    job: &MlpTrain,
    cancel: &CancelFlag,
) -> Result<(MlpTrainOutput, StageTimes), JobError> {
    let t_prep = Instant::now();
    let data = job.dataset()?;
    let test = job.test_dataset()?;
    let prepare = t_prep.elapsed();
    let test_samples = test.as_ref().map_or(0, |t| t.samples);
    // Held-out figures on the device once a device check has verified that path (see
    // docs/cuda.md); until then on the host, from the downloaded parameters.
    let on_device_eval = crate::unverified_enabled();
    let dims = job.dims();
    let layers = dims.len() - 1;
    let (samples, features, classes) = (data.samples, data.features, dims[layers]);
    let bmax = job.batch.min(samples).max(1);
    let widest = dims.iter().copied().max().unwrap_or(1);
    let params: usize = dims.windows(2).map(|d| d[0] * d[1] + d[1]).sum();
    s.admit(
        4 * ((samples + test_samples) * (features + 2)
            + 2 * params
            + bmax * (dims.iter().sum::<usize>() + 2 * widest)
            + widest * widest.max(bmax)) as u64,
    )?;

    // Upload data and initial parameters.
    let mut x = s.alloc::<f32>(samples * features)?;
    let mut labels = s.alloc::<u32>(samples)?;
    let mut idx = s.alloc::<u32>(samples)?;
    // Held-out data: features, labels, and the identity order (the loss kernel reads
    // labels through an index).
    let on_device = if on_device_eval { test_samples } else { 0 };
    let mut test_x = s.alloc::<f32>(on_device * features)?;
    let mut test_labels = s.alloc::<u32>(on_device)?;
    let mut test_idx = s.alloc::<u32>(on_device)?;
    let init = job.initial_params();
    let mut net: Vec<Layer> = Vec::with_capacity(layers);
    for l in 0..layers {
        net.push(Layer {
            w: s.alloc(dims[l] * dims[l + 1])?,
            b: s.alloc(dims[l + 1])?,
            din: dims[l],
            dout: dims[l + 1],
        });
    }
    let t_up = Instant::now();
    {
        let mut pairs: Vec<(&[f32], &mut DeviceBuffer<f32>)> = vec![(&data.x[..], &mut x)];
        // Held-out data goes up only when it is evaluated on the device.
        if let (Some(t), true) = (&test, on_device_eval) {
            pairs.push((&t.x[..], &mut test_x));
        }
        for (layer, p) in net.iter_mut().zip(&init) {
            pairs.push((&p.w, &mut layer.w));
        }
        s.upload(&mut pairs)?;
    }
    // Biases start at zero and labels are small: plain copies are fine before the loop.
    for (layer, p) in net.iter_mut().zip(&init) {
        layer
            .b
            .copy_from(&p.b[..])
            .map_err(|e| s.err("uploading biases", e))?;
    }
    labels
        .copy_from(&data.y[..])
        .map_err(|e| s.err("uploading labels", e))?;
    if let (Some(t), true) = (&test, on_device_eval) {
        test_labels
            .copy_from(&t.y[..])
            .map_err(|e| s.err("uploading held-out labels", e))?;
        let order: Vec<u32> = (0..t.samples as u32).collect();
        test_idx
            .copy_from(&order[..])
            .map_err(|e| s.err("uploading the held-out order", e))?;
    }
    let h2d = t_up.elapsed();

    let acts: Vec<DeviceBuffer<f32>> = dims
        .iter()
        .map(|&d| s.alloc::<f32>(bmax * d))
        .collect::<Result<_, _>>()?;
    let mut grad = s.alloc::<f32>(bmax * widest)?;
    let mut grad_in = s.alloc::<f32>(bmax * widest)?;
    let wt = s.alloc::<f32>(widest * widest)?;
    let ht = s.alloc::<f32>(widest * bmax)?;
    let loss = DeviceBuffer::<f64>::zeroed(1).map_err(|e| s.err("allocating the loss", e))?;
    let correct = DeviceBuffer::<u64>::zeroed(1).map_err(|e| s.err("allocating the counter", e))?;
    let test_loss = DeviceBuffer::<f64>::zeroed(1).map_err(|e| s.err("allocating the loss", e))?;
    let test_correct =
        DeviceBuffer::<u64>::zeroed(1).map_err(|e| s.err("allocating the counter", e))?;
    let mut test_prev = (0f64, 0u64);
    // SAFETY: written before every asynchronous copy that reads it.
    #[allow(unsafe_code)]
    let mut order_host = unsafe { LockedBuffer::<u32>::uninitialized(samples) }
        .map_err(|e| s.err("allocating pinned memory", e))?;

    let (fi, ci, lr) = (
        to_i32(features, "features")?,
        to_i32(classes, "classes")?,
        job.lr,
    );
    let (px, plabels, ploss, pcorrect) = (ptr(&x), ptr(&labels), ptr(&loss), ptr(&correct));
    let mut epochs = Vec::with_capacity(job.epochs as usize);
    let (mut prev_loss, mut prev_correct) = (0f64, 0u64);
    let mut compute = Duration::ZERO;
    for epoch in 0..job.epochs {
        cancel.check()?;
        order_host
            .as_mut_slice()
            .copy_from_slice(&job.epoch_order(epoch));
        // SAFETY: `order_host` is pinned and not touched again before the stream is
        // synchronised at the end of this epoch.
        #[allow(unsafe_code)]
        unsafe { idx.async_copy_from(&order_host, &s.stream) }
            .map_err(|e| s.err("uploading the epoch order", e))?;
        let e0 = s.mark()?;
        for start in (0..samples).step_by(job.batch.max(1)) {
            let bs = job.batch.min(samples - start);
            let bsi = to_i32(bs, "batch")?;
            let pidx = ptr(&idx) + 4 * start as u64;
            let a0 = ptr(&acts[0]);
            crate::launch!(s, kernels::GATHER_ROWS, blocks(bs * features, s.sms), 256, 0; px, pidx, a0, bsi, fi)?;
            forward(s, &net, &acts, a0, bs)?;
            let (plogits, pgrad, inv_bs) = (ptr(&acts[layers]), ptr(&grad), 1.0f32 / bs as f32);
            let warps_per_block = 8u32;
            crate::launch!(s, kernels::SOFTMAX_XENT, (bs as u32).div_ceil(warps_per_block), 32 * warps_per_block, 0;
                plogits, plabels, pidx, pgrad, bsi, ci, inv_bs, ploss, pcorrect)?;
            for l in (0..layers).rev() {
                let layer = &net[l];
                let (din, dout) = (to_i32(layer.din, "width")?, to_i32(layer.dout, "width")?);
                let (ph, pw, pg, pgi, pwt, pht) = (
                    ptr(&acts[l]),
                    ptr(&layer.w),
                    ptr(&grad),
                    ptr(&grad_in),
                    ptr(&wt),
                    ptr(&ht),
                );
                if l > 0 {
                    // G_in = G · Wᵀ, masked by the ReLU of this layer's input.
                    let tgrid = (
                        layer.dout.div_ceil(32) as u32,
                        layer.din.div_ceil(32) as u32,
                        1,
                    );
                    crate::launch!(s, kernels::TRANSPOSE, tgrid, (32, 8, 1), 0; pw, pwt, din, dout)?;
                    let g = Gemm::plain(
                        bs,
                        layer.din,
                        layer.dout,
                        Operand { ptr: pg, ld: dout },
                        Operand { ptr: pwt, ld: din },
                        Operand { ptr: pgi, ld: din },
                    );
                    s.sgemm(&g, false)?;
                    let count = (bs * layer.din) as u64;
                    crate::launch!(s, kernels::RELU_MASK, blocks(bs * layer.din, s.sms), 256, 0; pgi, ph, count)?;
                }
                // W ← W − lr · Hᵀ G.
                let tgrid = (layer.din.div_ceil(32) as u32, bs.div_ceil(32) as u32, 1);
                crate::launch!(s, kernels::TRANSPOSE, tgrid, (32, 8, 1), 0; ph, pht, bsi, din)?;
                let update = Gemm {
                    m: layer.din,
                    n: layer.dout,
                    k: bs,
                    alpha: -lr,
                    a: Operand { ptr: pht, ld: bsi },
                    b: Operand { ptr: pg, ld: dout },
                    beta: 1.0,
                    c: Operand { ptr: pw, ld: dout },
                };
                s.sgemm(&update, false)?;
                let pb = ptr(&layer.b);
                crate::launch!(s, kernels::BIAS_SGD, (layer.dout.div_ceil(256)) as u32, 256, 0; pb, pg, bsi, dout, lr)?;
                std::mem::swap(&mut grad, &mut grad_in);
            }
        }
        if test_samples > 0 && on_device_eval {
            // The held-out loss and accuracy after this epoch's updates: forward passes
            // and the loss kernel (its gradient output is scratch here).
            let (ptl, ptc, plabels_t) = (ptr(&test_loss), ptr(&test_correct), ptr(&test_labels));
            for start in (0..test_samples).step_by(bmax) {
                let bs = bmax.min(test_samples - start);
                let bsi = to_i32(bs, "batch")?;
                let input = ptr(&test_x) + 4 * (start * features) as u64;
                forward(s, &net, &acts, input, bs)?;
                let (plogits, pgrad, pidx) = (
                    ptr(&acts[layers]),
                    ptr(&grad),
                    ptr(&test_idx) + 4 * start as u64,
                );
                let (inv_bs, warps_per_block) = (1.0f32, 8u32);
                crate::launch!(s, kernels::SOFTMAX_XENT, (bs as u32).div_ceil(warps_per_block), 32 * warps_per_block, 0;
                    plogits, plabels_t, pidx, pgrad, bsi, ci, inv_bs, ptl, ptc)?;
            }
        }
        let e1 = s.mark()?;
        s.sync()?;
        compute += s.between(&e0, &e1)?;
        let mut totals = ([0f64], [0u64]);
        loss.copy_to(&mut totals.0[..])
            .map_err(|e| s.err("reading the loss", e))?;
        correct
            .copy_to(&mut totals.1[..])
            .map_err(|e| s.err("reading the accuracy", e))?;
        let n = samples as f64;
        let (test_loss_e, test_accuracy_e) = if let (Some(t), false) = (&test, on_device_eval) {
            // Not yet verified on a GPU: the parameters come down and the host's f64
            // reference evaluates them (slower, right by construction).
            let (mut w, mut b) = (Vec::with_capacity(layers), Vec::with_capacity(layers));
            for layer in &net {
                let (wv, _, _) = s.download(&layer.w, layer.din * layer.dout)?;
                let (bv, _, _) = s.download(&layer.b, layer.dout)?;
                w.push(wv.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>());
                b.push(bv.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>());
            }
            let (loss, accuracy) = gpujobs_core::kinds::reference::mlp_evaluate(&dims, &w, &b, t);
            (Some(loss), Some(accuracy))
        } else if test_samples > 0 {
            let mut t = ([0f64], [0u64]);
            test_loss
                .copy_to(&mut t.0[..])
                .map_err(|e| s.err("reading the held-out loss", e))?;
            test_correct
                .copy_to(&mut t.1[..])
                .map_err(|e| s.err("reading the held-out accuracy", e))?;
            let m = test_samples as f64;
            let figures = (
                (t.0[0] - test_prev.0) / m,
                (t.1[0] - test_prev.1) as f64 / m,
            );
            test_prev = (t.0[0], t.1[0]);
            (Some(figures.0), Some(figures.1))
        } else {
            (None, None)
        };
        epochs.push(EpochStats {
            epoch,
            loss: (totals.0[0] - prev_loss) / n,
            accuracy: (totals.1[0] - prev_correct) as f64 / n,
            test_loss: test_loss_e,
            test_accuracy: test_accuracy_e,
        });
        (prev_loss, prev_correct) = (totals.0[0], totals.1[0]);
        job.check_diverged(&epochs)?;
    }

    let t_down = Instant::now();
    let mut weights = Vec::with_capacity(layers);
    let mut biases = Vec::with_capacity(layers);
    for layer in net {
        let (w, _, _) = s.download(&layer.w, layer.din * layer.dout)?;
        let (b, _, _) = s.download(&layer.b, layer.dout)?;
        // With the pipeline on, the parameters stay on the device for a predict.
        weights.push(s.output(vec![layer.din, layer.dout], w, layer.w)?);
        biases.push(s.output(vec![layer.dout], b, layer.b)?);
    }
    let d2h = t_down.elapsed();
    Ok((
        MlpTrainOutput {
            epochs,
            weights,
            biases,
        },
        StageTimes {
            prepare,
            h2d,
            compute,
            d2h,
        },
    ))
}

#[async_trait]
impl Executor<MlpTrain> for CudaExecutor {
    async fn run(
        &self,
        job: MlpTrain,
        ctx: &ExecContext,
    ) -> Result<Execution<MlpTrainOutput>, JobError> {
        ctx.cancel.check()?;
        let cancel = ctx.cancel.clone();
        self.on_device(move |s| {
            let (output, times) = train(s, &job, &cancel)?;
            Ok(Execution { output, times })
        })
        .await
    }
}
