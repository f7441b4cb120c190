//! `mlp-predict` on the CPU: the forward pass `mlp-train` uses (faer GEMMs, then bias
//! and ReLU), in batches of [`PREDICT_BATCH`] rows, then softmax and argmax per row.

use crate::CpuExecutor;
use crate::mlp_forward::{Layer, predict};
use async_trait::async_trait;
use gpujobs_core::kinds::mlp_predict::PREDICT_BATCH;
use gpujobs_core::kinds::{MlpPredict, MlpPredictOutput};
use gpujobs_core::model::timing::timed;
use gpujobs_core::{CancelFlag, ExecContext, Execution, Executor, JobError, StageTimes, Tensor};

/// Class probabilities and labels of `job`'s inputs; stops between batches when
/// `cancel` is set.
pub fn mlp_predict(job: &MlpPredict, cancel: &CancelFlag) -> Result<MlpPredictOutput, JobError> {
    let dims = job.model.dims();
    let (weights, biases) = job.model.values()?;
    let layers: Vec<Layer<'_>> = weights
        .iter()
        .zip(&biases)
        .map(|(w, b)| Layer { w, b })
        .collect();
    let x = job.x.values()?;
    let rows = job.rows();
    let (probs, labels) = predict(&dims, &layers, &x, rows, PREDICT_BATCH, cancel)?;
    Ok(MlpPredictOutput {
        probs: Tensor::from_values(vec![rows, dims[dims.len() - 1]], probs)?,
        labels: Tensor::from_values(vec![rows], labels)?,
    })
}

#[async_trait]
impl Executor<MlpPredict> for CpuExecutor {
    async fn run(
        &self,
        job: MlpPredict,
        ctx: &ExecContext,
    ) -> Result<Execution<MlpPredictOutput>, JobError> {
        ctx.cancel.check()?;
        let cancel = ctx.cancel.clone();
        // Always on the pool: its cost is in the model, not in one shape.
        Self::compute(usize::MAX, move || {
            let (out, compute) = timed(|| mlp_predict(&job, &cancel));
            Ok(Execution {
                output: out?,
                times: StageTimes::cpu(std::time::Duration::ZERO, compute),
            })
        })
        .await
    }
}
