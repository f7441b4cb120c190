//! `matmul` on the GPU: the SGEMM variants of `kernels/sgemm.cu`, chosen per shape
//! class by timing the applicable ones once (autotuning) and keeping the fastest.

use super::CudaExecutor;
use super::state::DeviceState;
use crate::kernels::{SGEMM_VARIANTS, SgemmVariant};
use async_trait::async_trait;
use gpujobs_core::kinds::{Matmul, MatmulOutput};
use gpujobs_core::{ExecContext, Execution, Executor, JobError, StageTimes};

/// A row-major operand on the device: pointer and leading dimension.
#[derive(Clone, Copy)]
pub(crate) struct Operand {
    pub(crate) ptr: u64,
    pub(crate) ld: i32,
}

/// One `C = alpha·A·B + beta·C` with `A` m×k and `B` k×n.
#[derive(Clone, Copy)]
pub(crate) struct Gemm {
    pub(crate) m: usize,
    pub(crate) n: usize,
    pub(crate) k: usize,
    pub(crate) alpha: f32,
    pub(crate) a: Operand,
    pub(crate) b: Operand,
    pub(crate) beta: f32,
    pub(crate) c: Operand,
}

impl Gemm {
    /// `C = A·B`.
    pub(crate) fn plain(m: usize, n: usize, k: usize, a: Operand, b: Operand, c: Operand) -> Self {
        Gemm {
            m,
            n,
            k,
            alpha: 1.0,
            a,
            b,
            beta: 0.0,
            c,
        }
    }
}

/// The shape class used to cache variant choices: each dimension rounded up to a power
/// of two, and whether 16-byte loads are possible.
fn class(m: usize, n: usize, k: usize, vec: bool) -> (u32, u32, u32, bool) {
    let b = |x: usize| x.max(1).next_power_of_two().trailing_zeros();
    (b(m), b(n), b(k), vec)
}

fn dim(x: usize, what: &str) -> Result<i32, JobError> {
    i32::try_from(x).map_err(|_| {
        JobError::permanent(format!(
            "{what} = {x} is larger than the GPU kernels support (2^31 - 1)"
        ))
    })
}

impl DeviceState {
    /// The variants usable for this shape, in preference order.
    fn candidates(&self, g: &Gemm) -> (bool, Vec<usize>) {
        let vec = [g.n, g.k, g.a.ld as usize, g.b.ld as usize, g.c.ld as usize]
            .iter()
            .all(|x| x.is_multiple_of(4));
        let list = SGEMM_VARIANTS
            .iter()
            .enumerate()
            .filter(|(_, v)| v.vectorized == vec)
            .map(|(i, _)| i)
            .collect();
        (vec, list)
    }

    /// A variant by rule of thumb: big tiles when they fill every SM, small ones otherwise.
    fn heuristic(&self, m: usize, n: usize, candidates: &[usize]) -> usize {
        let tiles = m.div_ceil(128) * n.div_ceil(128);
        let want = if tiles >= self.sms as usize { 128 } else { 64 };
        candidates
            .iter()
            .copied()
            .find(|&i| SGEMM_VARIANTS[i].bm == want)
            .unwrap_or(candidates[0])
    }

    fn launch_sgemm(&mut self, v: &SgemmVariant, g: &Gemm) -> Result<(), JobError> {
        let (m, n, k) = (dim(g.m, "m")?, dim(g.n, "n")?, dim(g.k, "k")?);
        let grid = ((n as u32).div_ceil(v.bn), (m as u32).div_ceil(v.bm), 1);
        let (alpha, beta) = (g.alpha, g.beta);
        let (pa, lda, pb, ldb, pc, ldc) = (g.a.ptr, g.a.ld, g.b.ptr, g.b.ld, g.c.ptr, g.c.ld);
        let mut args: Vec<*mut std::ffi::c_void> = Vec::new();
        for p in [
            &m as *const i32 as *mut std::ffi::c_void,
            &n as *const i32 as *mut _,
            &k as *const i32 as *mut _,
            &alpha as *const f32 as *mut _,
            &pa as *const u64 as *mut _,
            &lda as *const i32 as *mut _,
            &pb as *const u64 as *mut _,
            &ldb as *const i32 as *mut _,
            &beta as *const f32 as *mut _,
            &pc as *const u64 as *mut _,
            &ldc as *const i32 as *mut _,
        ] {
            args.push(p);
        }
        // Variants are chosen at run time, so `launch!`'s compile-time count cannot be
        // used here; `launch_raw` still checks the 11 arguments against the spec.
        self.launch_raw(&v.kernel, grid, v.threads, 0, &mut args)
    }

    /// Runs `g`. With `tune`, the first call of a shape class times every applicable
    /// variant (only valid when `beta == 0`, since each trial overwrites C) and caches the
    /// fastest; otherwise the cached or rule-of-thumb variant runs.
    pub(crate) fn sgemm(&mut self, g: &Gemm, tune: bool) -> Result<(), JobError> {
        let (vec, candidates) = self.candidates(g);
        let key = class(g.m, g.n, g.k, vec);
        let choice = match self.sgemm_choice.get(&key) {
            Some(&i) => i,
            None if tune && g.beta == 0.0 && candidates.len() > 1 => {
                let mut best = (f64::INFINITY, candidates[0]);
                for &i in &candidates {
                    let t = self.time_variant(i, g, 1)?;
                    if t < best.0 {
                        best = (t, i);
                    }
                }
                tracing::debug!(
                    m = g.m,
                    n = g.n,
                    k = g.k,
                    variant = SGEMM_VARIANTS[best.1].kernel.name,
                    "sgemm autotuned"
                );
                self.sgemm_choice.insert(key, best.1);
                best.1
            }
            None => self.heuristic(g.m, g.n, &candidates),
        };
        self.launch_sgemm(&SGEMM_VARIANTS[choice], g)
    }

    /// Median seconds of `reps` runs of variant `i` on `g` (after one warm-up run).
    pub(crate) fn time_variant(
        &mut self,
        i: usize,
        g: &Gemm,
        reps: usize,
    ) -> Result<f64, JobError> {
        let v = SGEMM_VARIANTS
            .get(i)
            .ok_or_else(|| JobError::permanent(format!("no SGEMM variant {i}")))?;
        self.launch_sgemm(v, g)?;
        let mut times = Vec::with_capacity(reps);
        for _ in 0..reps.max(1) {
            let start = self.mark()?;
            self.launch_sgemm(v, g)?;
            let end = self.mark()?;
            self.sync()?;
            times.push(self.between(&start, &end)?.as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        Ok(times[times.len() / 2])
    }

    /// The variants that apply to `g`, by index into [`SGEMM_VARIANTS`].
    pub(crate) fn applicable_variants(&self, g: &Gemm) -> Vec<usize> {
        self.candidates(g).1
    }
}

#[async_trait]
impl Executor<Matmul> for CudaExecutor {
    async fn run(
        &self,
        job: Matmul,
        ctx: &ExecContext,
    ) -> Result<Execution<MatmulOutput>, JobError> {
        ctx.cancel.check()?;
        self.on_device(move |s| {
            let (m, k, n) = job.dims();
            s.admit(4 * (m * k + k * n + m * n) as u64)?;
            let mut a = s.alloc::<f32>(m * k)?;
            let mut b = s.alloc::<f32>(k * n)?;
            let c = s.alloc::<f32>(m * n)?;
            let (prepare, h2d) = s.inputs(&mut [(&job.a, &mut a), (&job.b, &mut b)])?;
            let (oa, ob, oc) = (
                Operand {
                    ptr: a.as_device_ptr().as_raw(),
                    ld: dim(k, "k")?,
                },
                Operand {
                    ptr: b.as_device_ptr().as_raw(),
                    ld: dim(n, "n")?,
                },
                Operand {
                    ptr: c.as_device_ptr().as_raw(),
                    ld: dim(n, "n")?,
                },
            );
            // Tune (if this shape class is new) before the timed run.
            let g = Gemm::plain(m, n, k, oa, ob, oc);
            let (vec, candidates) = s.candidates(&g);
            if !s.sgemm_choice.contains_key(&class(m, n, k, vec)) && candidates.len() > 1 {
                s.sgemm(&g, true)?;
            }
            let k0 = s.mark()?;
            s.sgemm(&g, false)?;
            let k1 = s.mark()?;
            let (out, compute, d2h) = s.collect(&k0, &k1, &c, m * n)?;
            let c = s.output(vec![m, n], out, c)?;
            Ok(Execution {
                output: MatmulOutput { c },
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
