//! `vector-add` on the GPU.

use super::CudaExecutor;
use crate::kernels;
use async_trait::async_trait;
use gpujobs_core::kinds::{VectorAdd, VectorAddOutput};
use gpujobs_core::{ExecContext, Execution, Executor, JobError, StageTimes};

#[async_trait]
impl Executor<VectorAdd> for CudaExecutor {
    async fn run(
        &self,
        job: VectorAdd,
        ctx: &ExecContext,
    ) -> Result<Execution<VectorAddOutput>, JobError> {
        ctx.cancel.check()?;
        self.on_device(move |s| {
            let n = job.len();
            s.admit(12 * n as u64)?;
            let mut a = s.alloc::<f32>(n)?;
            let mut b = s.alloc::<f32>(n)?;
            let c = s.alloc::<f32>(n)?;
            if crate::pipeline_enabled()
                && let Some((inputs, prepare)) =
                    s.pipeline_inputs(&mut [(&job.a, &mut a), (&job.b, &mut b)])?
            {
                let mut it = inputs.into_iter();
                let (ia, ib) = (it.next(), it.next());
                let (Some(ia), Some(ib)) = (ia, ib) else {
                    return Err(JobError::permanent("vector-add has two inputs"));
                };
                let (pa, pb, pc) = (
                    a.as_device_ptr().as_raw(),
                    b.as_device_ptr().as_raw(),
                    c.as_device_ptr().as_raw(),
                );
                let sms = u64::from(s.sms);
                let (out, mut times) = s.pipeline_elementwise(
                    &kernels::VECTOR_ADD,
                    &[(ia, &mut a), (ib, &mut b)],
                    &c,
                    n,
                    |off, len| {
                        let at = (off * 4) as u64;
                        vec![pa + at, pb + at, pc + at, len as u64]
                    },
                    |len| (len as u64).div_ceil(4 * 256).min(sms * 16).max(1) as u32,
                )?;
                times.prepare = prepare;
                drop((a, b));
                let c = s.output(vec![n], out, c)?;
                return Ok(Execution {
                    output: VectorAddOutput { c },
                    times,
                });
            }
            let (prepare, h2d) = s.inputs(&mut [(&job.a, &mut a), (&job.b, &mut b)])?;
            let (pa, pb, pc, len) = (
                a.as_device_ptr().as_raw(),
                b.as_device_ptr().as_raw(),
                c.as_device_ptr().as_raw(),
                n as u64,
            );
            let blocks = (len.div_ceil(4 * 256)).min(u64::from(s.sms) * 16).max(1) as u32;
            let k0 = s.mark()?;
            crate::launch!(s, kernels::VECTOR_ADD, blocks, 256, 0; pa, pb, pc, len)?;
            let k1 = s.mark()?;
            let (out, compute, d2h) = s.collect(&k0, &k1, &c, n)?;
            let c = s.output(vec![n], out, c)?;
            Ok(Execution {
                output: VectorAddOutput { c },
                times: StageTimes {
                    prepare,
                    h2d,
                    compute,
                    d2h,
                },
            })
        })
        .await
    }
}
