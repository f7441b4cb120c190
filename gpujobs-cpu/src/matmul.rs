//! `matmul` on the CPU with faer's multithreaded GEMM.

use crate::CpuExecutor;
use crate::parallel::materialize;
use async_trait::async_trait;
use faer::{Accum, MatMut, MatRef, Par};
use gpujobs_core::jobs::{Matmul, MatmulOutput};
use gpujobs_core::timing::timed;
use gpujobs_core::{DeviceInfo, ExecContext, Execution, Executor, JobError, StageTimes, Tensor};

/// `C = A · B` for row-major `A` (m×k) and `B` (k×n), on all of rayon's threads.
/// Panics if the slices do not match the dimensions.
pub fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0f32; m * n];
    gemm_into(&mut c, a, b, (m, k, n), Accum::Replace, 1.0);
    c
}

/// `C = alpha · A · B` (or `C += ...` with [`Accum::Add`]) on row-major slices.
pub(crate) fn gemm_into(
    c: &mut [f32],
    a: &[f32],
    b: &[f32],
    (m, k, n): (usize, usize, usize),
    accum: Accum,
    alpha: f32,
) {
    let a = MatRef::from_row_major_slice(a, m, k);
    let b = MatRef::from_row_major_slice(b, k, n);
    let c = MatMut::from_row_major_slice_mut(c, m, n);
    faer::linalg::matmul::matmul(c, accum, a, b, alpha, Par::rayon(0));
}

#[async_trait]
impl Executor<Matmul> for CpuExecutor {
    fn device(&self) -> DeviceInfo {
        self.device.clone()
    }

    async fn run(
        &self,
        job: Matmul,
        ctx: &ExecContext,
    ) -> Result<Execution<MatmulOutput>, JobError> {
        ctx.cancel.check()?;
        let cancel = ctx.cancel.clone();
        Self::blocking(move || {
            let (m, k, n) = job.dims();
            let (inputs, prepare) =
                timed(|| Ok::<_, JobError>((materialize(&job.a)?, materialize(&job.b)?)));
            let (a, b) = inputs?;
            cancel.check()?;
            let (c, compute) = timed(|| matmul(&a, &b, m, k, n));
            let c = Tensor::from_values(vec![m, n], c)?;
            Ok(Execution {
                output: MatmulOutput { c },
                times: StageTimes::cpu(prepare, compute),
            })
        })
        .await
    }
}
