//! `vector-add` on the CPU: a parallel, vectorized, memory-bound loop.

use crate::CpuExecutor;
use crate::parallel::{CHUNK, materialize};
use crate::simd::{Madd, multiversion};
use async_trait::async_trait;
use gpujobs_core::kinds::{VectorAdd, VectorAddOutput};
use gpujobs_core::model::fingerprint::BlockDigests;
use gpujobs_core::model::tensor::Values;
use gpujobs_core::model::timing::timed;
use gpujobs_core::{ExecContext, Execution, Executor, JobError, StageTimes, Tensor};
use rayon::prelude::*;

#[inline(always)]
fn add_impl<M: Madd>(a: &[f32], b: &[f32], c: &mut [f32]) {
    for ((c, &a), &b) in c.iter_mut().zip(a).zip(b) {
        *c = a + b;
    }
}

multiversion!(fn add_chunk(a: &[f32], b: &[f32], c: &mut [f32]) = add_impl);

/// `c = a + b` in parallel chunks. Panics if the lengths differ.
pub fn vector_add_into(a: &[f32], b: &[f32], c: &mut [f32]) {
    add_digested(a, b, c, None);
}

/// [`vector_add_into`], digesting each chunk of `c` for its fingerprint right after
/// writing it, while it is in cache.
fn add_digested(a: &[f32], b: &[f32], c: &mut [f32], digests: Option<&BlockDigests>) {
    assert!(
        a.len() == b.len() && a.len() == c.len(),
        "vector_add needs equal lengths"
    );
    c.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK))
        .zip(b.par_chunks(CHUNK))
        .enumerate()
        .for_each(|(i, ((c, a), b))| {
            add_chunk(a, b, c);
            if let Some(d) = digests {
                d.written(i * CHUNK, c);
            }
        });
}

/// `a + b` into a new vector. Panics if the lengths differ.
pub fn vector_add(a: &[f32], b: &[f32]) -> Vec<f32> {
    let mut c = crate::buffer::zeroed(a.len());
    vector_add_into(a, b, &mut c);
    c
}

#[async_trait]
impl Executor<VectorAdd> for CpuExecutor {
    async fn run(
        &self,
        job: VectorAdd,
        ctx: &ExecContext,
    ) -> Result<Execution<VectorAddOutput>, JobError> {
        ctx.cancel.check()?;
        let pool = self.pool.clone();
        let work = job.a.numel().unwrap_or(usize::MAX);
        Self::compute(work, move || {
            let (inputs, prepare) = timed(|| {
                Ok::<_, JobError>((materialize(&job.a, &pool)?, materialize(&job.b, &pool)?))
            });
            let (a, b) = inputs?;
            let mut c = pool.take(a.len())?;
            let digests = BlockDigests::new(c.len());
            let ((), compute) = timed(|| add_digested(&a, &b, &mut c, Some(&digests)));
            let fingerprint = digests.finish(&c);
            let c = Values::from(c).with_fingerprint(fingerprint);
            let c = Tensor::from_values(vec![c.len()], c)?;
            Ok(Execution {
                output: VectorAddOutput { c },
                times: StageTimes::cpu(prepare, compute),
            })
        })
        .await
    }
}
