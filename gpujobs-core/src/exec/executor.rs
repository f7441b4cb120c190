//! Executors: how a job kind runs on a device.
//!
//! A backend implements the typed [`Executor<J>`] for each kind it supports. The
//! [`crate::Registry`] wraps it into a [`DynExecutor`], which takes the job as it comes
//! out of the queue (JSON and blobs), decodes and re-validates it, runs it, and turns
//! the typed output back into a [`JobResult`] with a fingerprint and stage timings.

use crate::model::device::DeviceInfo;
use crate::model::error::{JobError, ValidationError};
use crate::model::id::JobId;
use crate::model::job::{Job, JobOutput};
use crate::model::limits::Limits;
use crate::model::state::JobResult;
use crate::model::tensor::{Blobs, detach_all, resolve_all};
use crate::model::timing::{StageTimes, Timings};
use async_trait::async_trait;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// A flag an executor polls between steps to stop early when its job is cancelled or
/// has run past its timeout. Cheap to clone and to pass into blocking threads.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the job to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether stopping was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// `Err(JobError::cancelled())` once stopping was asked for: use with `?` between
    /// steps of a long computation.
    pub fn check(&self) -> Result<(), JobError> {
        if self.is_cancelled() {
            Err(JobError::cancelled())
        } else {
            Ok(())
        }
    }
}

/// What an executor knows about the run it is doing.
#[derive(Debug, Clone)]
pub struct ExecContext {
    /// The job being run.
    pub job_id: JobId,
    /// Which delivery this is (1 for the first).
    pub attempt: u32,
    /// Set when the job is cancelled or times out.
    pub cancel: CancelFlag,
    /// Memory limits of this worker.
    pub limits: Limits,
}

impl ExecContext {
    /// A context for running a job outside a queue (tests, `gpujobs run`).
    pub fn standalone(limits: Limits) -> Self {
        ExecContext {
            job_id: JobId::new(),
            attempt: 1,
            cancel: CancelFlag::new(),
            limits,
        }
    }
}

/// A typed output with the stage times the executor measured.
#[derive(Debug, Clone)]
pub struct Execution<O> {
    /// What the job produced.
    pub output: O,
    /// Preparation, transfer and compute times.
    pub times: StageTimes,
}

/// Runs the job kind `J` on one device.
///
/// An executor only runs jobs; which device it runs them on is said once, when it is
/// registered ([`crate::Registry::register`], usually by a [`crate::Backend`]).
#[async_trait]
pub trait Executor<J: Job>: Send + Sync + 'static {
    /// Runs one job. `job` has been validated. Long computations should poll
    /// `ctx.cancel` between steps and must not block the async runtime: run them on a
    /// blocking thread or a device thread.
    async fn run(&self, job: J, ctx: &ExecContext) -> Result<Execution<J::Output>, JobError>;
}

/// A type-erased executor, as the registry and the worker see it.
#[async_trait]
pub trait DynExecutor: Send + Sync {
    /// The kind it runs.
    fn kind(&self) -> &'static str;

    /// The device it runs on.
    fn device(&self) -> DeviceInfo;

    /// Decodes, validates and runs a job from its queue form. The returned timings have
    /// the executor's stages and `run_s` filled in; the worker adds the queue-side ones.
    async fn execute(
        &self,
        payload: &serde_json::Value,
        blobs: &Blobs,
        ctx: &ExecContext,
    ) -> Result<JobResult, JobError>;
}

/// Decodes a job of kind `J` from JSON and blobs; when `require_data` is false, blobs
/// that are absent are left as references (the scheduler checks shapes without data).
pub fn decode_job<J: Job>(
    payload: &serde_json::Value,
    blobs: &Blobs,
    require_data: bool,
) -> Result<J, ValidationError> {
    let mut job: J =
        serde_json::from_value(payload.clone()).map_err(|e| ValidationError::Payload {
            kind: J::KIND.into(),
            reason: e.to_string(),
        })?;
    match resolve_all(job.tensors_mut(), blobs) {
        Ok(()) => Ok(job),
        Err(ValidationError::MissingBlob(_)) if !require_data => Ok(job),
        Err(e) => Err(e),
    }
}

/// Turns a typed output into a queue result. `run_s` is measured from `started` to the
/// end of encoding, so it includes the fingerprint, which a worker pays for every job.
pub fn encode_output<O: JobOutput>(
    mut output: O,
    device: DeviceInfo,
    times: StageTimes,
    started: Instant,
) -> Result<JobResult, JobError> {
    let fingerprint = output.fingerprint();
    let summary = output.summary();
    let mut blobs = Blobs::new();
    detach_all(output.tensors_mut(), &mut blobs);
    let output = serde_json::to_value(&output)
        .map_err(|e| JobError::permanent(format!("output not serializable: {e}")))?;
    let timings = Timings {
        prepare_s: times.prepare.as_secs_f64(),
        h2d_s: times.h2d.as_secs_f64(),
        compute_s: times.compute.as_secs_f64(),
        d2h_s: times.d2h.as_secs_f64(),
        run_s: started.elapsed().as_secs_f64(),
        ..Timings::default()
    };
    Ok(JobResult {
        output,
        blobs,
        summary,
        fingerprint,
        device,
        timings,
        held_by: None,
    })
}

/// Adapts a typed executor on a known device to [`DynExecutor`].
pub(crate) struct Typed<J, E> {
    inner: E,
    device: DeviceInfo,
    _kind: PhantomData<fn() -> J>,
}

impl<J, E> Typed<J, E> {
    pub(crate) fn new(device: DeviceInfo, inner: E) -> Self {
        Typed {
            inner,
            device,
            _kind: PhantomData,
        }
    }
}

#[async_trait]
impl<J: Job, E: Executor<J>> DynExecutor for Typed<J, E> {
    fn kind(&self) -> &'static str {
        J::KIND
    }

    fn device(&self) -> DeviceInfo {
        self.device.clone()
    }

    async fn execute(
        &self,
        payload: &serde_json::Value,
        blobs: &Blobs,
        ctx: &ExecContext,
    ) -> Result<JobResult, JobError> {
        let start = Instant::now();
        let job: J = decode_job(payload, blobs, true)?;
        job.validate(&ctx.limits)?;
        let exec = self.inner.run(job, ctx).await?;
        encode_output(exec.output, self.device.clone(), exec.times, start)
    }
}
