//! `mlp-predict` on the GPU: the model and the inputs go up once, each batch of
//! [`PREDICT_BATCH`] rows is the forward pass `mlp-train` uses (read straight from the
//! uploaded inputs, no gather) and one softmax kernel that writes the probabilities and
//! labels in place; both come back once at the end.
//!
//! Not yet run on a GPU: registered only when `GPUJOBS_CUDA_UNVERIFIED=1` (see
//! docs/cuda.md) until the device check has verified it.

use super::CudaExecutor;
use super::mlp_forward::{Layer, forward, ptr, to_i32};
use super::state::DeviceState;
use crate::kernels;
use async_trait::async_trait;
use gpujobs_core::kinds::mlp_predict::PREDICT_BATCH;
use gpujobs_core::kinds::{MlpPredict, MlpPredictOutput};
use gpujobs_core::{CancelFlag, ExecContext, Execution, Executor, JobError, StageTimes, Tensor};
use std::time::Instant;

fn predict(
    s: &mut DeviceState,
    job: &MlpPredict,
    cancel: &CancelFlag,
) -> Result<(MlpPredictOutput, StageTimes), JobError> {
    let t_prep = Instant::now();
    let dims = job.model.dims();
    let layers = dims.len() - 1;
    let (rows, features, classes) = (job.rows(), dims[0], dims[layers]);
    let (weights, biases) = job.model.values()?;
    let x = job.x.values()?;
    let prepare = t_prep.elapsed();
    let batch = PREDICT_BATCH.min(rows).max(1);
    let params: usize = dims.windows(2).map(|d| d[0] * d[1] + d[1]).sum();
    s.admit(
        4 * (rows * (features + classes + 1) + params + batch * dims.iter().sum::<usize>()) as u64,
    )?;

    let mut x_dev = s.alloc::<f32>(rows * features)?;
    let mut net: Vec<Layer> = Vec::with_capacity(layers);
    for l in 0..layers {
        net.push(Layer {
            w: s.alloc(dims[l] * dims[l + 1])?,
            b: s.alloc(dims[l + 1])?,
            din: dims[l],
            dout: dims[l + 1],
        });
    }
    let h2d = {
        // With the pipeline on, a model trained on this device is still here: its
        // parameters are copied device to device (see `resident`).
        let mut pairs: Vec<(
            &gpujobs_core::model::tensor::Values,
            &mut cust::memory::DeviceBuffer<f32>,
        )> = vec![(&x, &mut x_dev)];
        for (layer, (w, b)) in net.iter_mut().zip(weights.iter().zip(&biases)) {
            let Layer { w: wd, b: bd, .. } = layer;
            pairs.push((w, wd));
            pairs.push((b, bd));
        }
        s.upload_values(&mut pairs)?
    };
    let acts: Vec<cust::memory::DeviceBuffer<f32>> = dims
        .iter()
        .map(|&d| s.alloc::<f32>(batch * d))
        .collect::<Result<_, _>>()?;
    let probs = s.alloc::<f32>(rows * classes)?;
    let labels = s.alloc::<f32>(rows)?;

    let ci = to_i32(classes, "classes")?;
    let k0 = s.mark()?;
    for start in (0..rows).step_by(batch) {
        cancel.check()?;
        let bs = batch.min(rows - start);
        let bsi = to_i32(bs, "batch")?;
        let input = ptr(&x_dev) + 4 * (start * features) as u64;
        forward(s, &net, &acts, input, bs)?;
        let plogits = ptr(&acts[layers]);
        let pprobs = ptr(&probs) + 4 * (start * classes) as u64;
        let plabels = ptr(&labels) + 4 * start as u64;
        let warps_per_block = 8u32;
        crate::launch!(s, kernels::SOFTMAX_ROWS, (bs as u32).div_ceil(warps_per_block), 32 * warps_per_block, 0;
            plogits, pprobs, plabels, bsi, ci)?;
    }
    let k1 = s.mark()?;
    let (p, compute, d2h_p) = s.collect(&k0, &k1, &probs, rows * classes)?;
    let t_labels = Instant::now();
    let (l, _, _) = s.download(&labels, rows)?;
    let d2h_l = t_labels.elapsed();
    Ok((
        MlpPredictOutput {
            probs: Tensor::from_values(vec![rows, classes], p)?,
            labels: Tensor::from_values(vec![rows], l)?,
        },
        StageTimes {
            prepare,
            h2d,
            compute,
            d2h: d2h_p + d2h_l,
        },
    ))
}

#[async_trait]
impl Executor<MlpPredict> for CudaExecutor {
    async fn run(
        &self,
        job: MlpPredict,
        ctx: &ExecContext,
    ) -> Result<Execution<MlpPredictOutput>, JobError> {
        ctx.cancel.check()?;
        let cancel = ctx.cancel.clone();
        self.on_device(move |s| {
            let (output, times) = predict(s, &job, &cancel)?;
            Ok(Execution { output, times })
        })
        .await
    }
}
