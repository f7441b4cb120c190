//! `mlp-train` on the GPU: data, weights and activations stay on the device for the
//! whole run; each minibatch is a gather, the layer GEMMs with fused bias and ReLU,
//! softmax cross-entropy with its gradient, and the backward GEMMs with the SGD update
//! folded into the weight-gradient GEMM (`W ← W − lr·HᵀG` as `beta = 1`). Only the
//! epoch's order goes up and its loss and accuracy come back, once per epoch.

use super::CudaExecutor;
use super::matmul::{Gemm, Operand};
use super::state::DeviceState;
use crate::kernels;
use async_trait::async_trait;
use cust::memory::{AsyncCopyDestination, CopyDestination, DeviceBuffer, LockedBuffer};
use gpujobs_core::jobs::{EpochStats, MlpTrain, MlpTrainOutput};
use gpujobs_core::{CancelFlag, ExecContext, Execution, Executor, JobError, StageTimes, Tensor};
use std::time::{Duration, Instant};

fn ptr<T: cust::memory::DeviceCopy>(b: &DeviceBuffer<T>) -> u64 {
    b.as_device_ptr().as_raw()
}

fn blocks(n: usize, sms: u32) -> u32 {
    (n.div_ceil(256) as u32).clamp(1, sms * 16)
}

fn to_i32(x: usize, what: &str) -> Result<i32, JobError> {
    i32::try_from(x)
        .map_err(|_| JobError::permanent(format!("{what} = {x} is too large for the GPU kernels")))
}

struct Layer {
    w: DeviceBuffer<f32>,
    b: DeviceBuffer<f32>,
    din: usize,
    dout: usize,
}

fn train(
    s: &mut DeviceState,
    job: &MlpTrain,
    cancel: &CancelFlag,
) -> Result<(MlpTrainOutput, StageTimes), JobError> {
    let t_prep = Instant::now();
    let data = job.dataset()?;
    let prepare = t_prep.elapsed();
    let dims = job.dims();
    let layers = dims.len() - 1;
    let (samples, features, classes) = (data.samples, data.features, dims[layers]);
    let bmax = job.batch.min(samples).max(1);
    let widest = dims.iter().copied().max().unwrap_or(1);
    let params: usize = dims.windows(2).map(|d| d[0] * d[1] + d[1]).sum();
    s.admit(
        4 * (samples * (features + 2)
            + 2 * params
            + bmax * (dims.iter().sum::<usize>() + 2 * widest)
            + widest * widest.max(bmax)) as u64,
    )?;

    // Upload data and initial parameters.
    let mut x = s.alloc::<f32>(samples * features)?;
    let mut labels = s.alloc::<u32>(samples)?;
    let mut idx = s.alloc::<u32>(samples)?;
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
            for (l, layer) in net.iter().enumerate() {
                let (pin, pout) = (ptr(&acts[l]), ptr(&acts[l + 1]));
                let (din, dout) = (to_i32(layer.din, "width")?, to_i32(layer.dout, "width")?);
                let a = Operand { ptr: pin, ld: din };
                let g = Gemm::plain(
                    bs,
                    layer.dout,
                    layer.din,
                    a,
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
                let (pb, relu) = (ptr(&layer.b), i32::from(l + 1 < layers));
                crate::launch!(s, kernels::BIAS_ACT, blocks(bs * layer.dout, s.sms), 256, 0; pout, pb, bsi, dout, relu)?;
            }
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
        epochs.push(EpochStats {
            epoch,
            loss: (totals.0[0] - prev_loss) / n,
            accuracy: (totals.1[0] - prev_correct) as f64 / n,
        });
        (prev_loss, prev_correct) = (totals.0[0], totals.1[0]);
    }

    let t_down = Instant::now();
    let mut weights = Vec::with_capacity(layers);
    let mut biases = Vec::with_capacity(layers);
    for layer in &net {
        let (w, _, _) = s.download(&layer.w, layer.din * layer.dout)?;
        let (b, _, _) = s.download(&layer.b, layer.dout)?;
        weights.push(Tensor::from_values(vec![layer.din, layer.dout], w)?);
        biases.push(Tensor::from_values(vec![layer.dout], b)?);
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
