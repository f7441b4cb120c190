//! `mlp-train` on the CPU: the dense layers' forward and backward products on faer
//! (through the blocked parallel GEMM of `matmul`),
//! the element-wise steps (bias, ReLU, softmax cross-entropy) in plain loops.
//! Follows the algorithm documented in `gpujobs_core::kinds::mlp_train` step for step.

use crate::CpuExecutor;
use crate::matmul::gemm;
use crate::mlp_forward::{Layer, activations, argmax, evaluate, forward, softmax_parts};
use async_trait::async_trait;
use faer::{Accum, MatMut, MatRef};
use gpujobs_core::kinds::{EpochStats, LayerParams, MlpDataset, MlpTrain, MlpTrainOutput};
use gpujobs_core::model::timing::timed;
use gpujobs_core::{CancelFlag, ExecContext, Execution, Executor, JobError, StageTimes, Tensor};

/// Trains `job` on `data`, evaluating `test` (the job's held-out data, when it has
/// any) after every epoch; stops between minibatches when `cancel` is set.
pub fn mlp_train(
    job: &MlpTrain,
    data: &MlpDataset,
    test: Option<&MlpDataset>,
    cancel: &CancelFlag,
) -> Result<MlpTrainOutput, JobError> {
    let dims = job.dims();
    let layers = dims.len() - 1;
    let classes = dims[layers];
    let mut params = job.initial_params();
    let bmax = job.batch.min(data.samples).max(1);
    let mut acts = activations(&dims, bmax);
    let widest = dims.iter().copied().max().unwrap_or(1);
    let mut grad = vec![0f32; bmax * widest];
    let mut grad_in = vec![0f32; bmax * widest];
    let mut epochs = Vec::with_capacity(job.epochs as usize);
    for epoch in 0..job.epochs {
        let order = job.epoch_order(epoch);
        let (mut loss_sum, mut correct) = (0f64, 0usize);
        for batch in order.chunks(job.batch.max(1)) {
            cancel.check()?;
            let bs = batch.len();
            for (r, &s) in batch.iter().enumerate() {
                acts[0][r * dims[0]..(r + 1) * dims[0]].copy_from_slice(data.row(s as usize));
            }
            forward(&dims, &layer_views(&params), &mut acts, bs);
            // Softmax cross-entropy and its gradient (p − onehot) / batch.
            let inv_bs = 1.0 / bs as f32;
            for r in 0..bs {
                let logits = &acts[layers][r * classes..(r + 1) * classes];
                let label = data.y[batch[r] as usize] as usize;
                let (max, sum) = softmax_parts(logits);
                loss_sum += f64::from(-(logits[label] - max - sum.ln()));
                if argmax(logits) == label {
                    correct += 1;
                }
                let g = &mut grad[r * classes..(r + 1) * classes];
                for (o, (gv, &lv)) in g.iter_mut().zip(logits).enumerate() {
                    let p = (lv - max).exp() / sum;
                    *gv = (p - if o == label { 1.0 } else { 0.0 }) * inv_bs;
                }
            }
            // Backward and SGD, last layer first.
            for l in (0..layers).rev() {
                let (din, dout) = (dims[l], dims[l + 1]);
                let h = &acts[l][..bs * din];
                let g = &grad[..bs * dout];
                if l > 0 {
                    let gi = &mut grad_in[..bs * din];
                    gemm(
                        MatMut::from_row_major_slice_mut(gi, bs, din),
                        Accum::Replace,
                        MatRef::from_row_major_slice(g, bs, dout),
                        MatRef::from_row_major_slice(&params[l].w, din, dout).transpose(),
                        1.0,
                    );
                    for (v, &a) in gi.iter_mut().zip(h) {
                        if a <= 0.0 {
                            *v = 0.0;
                        }
                    }
                }
                gemm(
                    MatMut::from_row_major_slice_mut(&mut params[l].w, din, dout),
                    Accum::Add,
                    MatRef::from_row_major_slice(h, bs, din).transpose(),
                    MatRef::from_row_major_slice(g, bs, dout),
                    -job.lr,
                );
                for o in 0..dout {
                    let s: f32 = (0..bs).map(|r| g[r * dout + o]).sum();
                    params[l].b[o] -= job.lr * s;
                }
                std::mem::swap(&mut grad, &mut grad_in);
            }
        }
        let n = data.samples as f64;
        let (test_loss, test_accuracy) = match test {
            Some(t) => {
                let (loss, accuracy) =
                    evaluate(&dims, &layer_views(&params), t, bmax, &mut acts, cancel)?;
                (Some(loss), Some(accuracy))
            }
            None => (None, None),
        };
        epochs.push(EpochStats {
            epoch,
            loss: loss_sum / n,
            accuracy: correct as f64 / n,
            test_loss,
            test_accuracy,
        });
        job.check_diverged(&epochs)?;
    }
    let mut weights = Vec::with_capacity(layers);
    let mut biases = Vec::with_capacity(layers);
    for (l, p) in params.into_iter().enumerate() {
        weights.push(Tensor::from_values(vec![dims[l], dims[l + 1]], p.w)?);
        biases.push(Tensor::from_values(vec![dims[l + 1]], p.b)?);
    }
    Ok(MlpTrainOutput {
        epochs,
        weights,
        biases,
    })
}

fn layer_views(params: &[LayerParams]) -> Vec<Layer<'_>> {
    params.iter().map(|p| Layer { w: &p.w, b: &p.b }).collect()
}

#[async_trait]
impl Executor<MlpTrain> for CpuExecutor {
    async fn run(
        &self,
        job: MlpTrain,
        ctx: &ExecContext,
    ) -> Result<Execution<MlpTrainOutput>, JobError> {
        ctx.cancel.check()?;
        let cancel = ctx.cancel.clone();
        // Always on the pool: its cost is in the model, not in one shape.
        Self::compute(usize::MAX, move || {
            let (data, prepare) =
                timed(|| Ok::<_, JobError>((job.dataset()?, job.test_dataset()?)));
            let (data, test) = data?;
            let (out, compute) = timed(|| mlp_train(&job, &data, test.as_ref(), &cancel));
            Ok(Execution {
                output: out?,
                times: StageTimes::cpu(prepare, compute),
            })
        })
        .await
    }
}
