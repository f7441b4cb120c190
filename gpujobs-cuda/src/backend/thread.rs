//! The device thread: owns a device's context and everything allocated in it, and runs
//! the closures sent to it one after another.

use super::state::DeviceState;
use crate::CudaError;
use gpujobs_core::{BufferPool, DeviceInfo, JobError};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

type Task = Box<dyn FnOnce(&mut Option<DeviceState>) + Send>;

/// The handle async code holds.
pub(crate) struct DeviceThread {
    pub(crate) info: DeviceInfo,
    tx: mpsc::Sender<Task>,
}

impl DeviceThread {
    /// Starts the thread and waits until it has opened the device. Outputs are
    /// downloaded into buffers from `pool`.
    pub(crate) fn start(ordinal: u32, pool: BufferPool) -> Result<Self, CudaError> {
        let (tx, rx) = mpsc::channel::<Task>();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("gpujobs-cuda{ordinal}"))
            .spawn(move || serve(ordinal, pool, rx, ready_tx))
            .map_err(|e| CudaError::Driver {
                doing: "starting the device thread".into(),
                message: e.to_string(),
            })?;
        let info = ready_rx.recv().map_err(|_| CudaError::Driver {
            doing: "opening the device".into(),
            message: "device thread exited".into(),
        })??;
        Ok(DeviceThread { info, tx })
    }

    /// Runs `f` on the thread and returns its result.
    pub(crate) async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut DeviceState) -> Result<R, JobError> + Send + 'static,
    ) -> Result<R, JobError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task: Task = Box::new(move |state: &mut Option<DeviceState>| {
            let result = match state.as_mut() {
                Some(s) => catch_unwind(AssertUnwindSafe(|| f(s))).unwrap_or_else(|_| {
                    Err(JobError::temporary(
                        "the CUDA executor panicked; the device is being reset",
                    ))
                }),
                None => Err(JobError::temporary(
                    "the CUDA device could not be re-opened after an error",
                )),
            };
            let _ = tx.send(result);
        });
        self.tx
            .send(task)
            .map_err(|_| JobError::temporary("the CUDA device thread has stopped"))?;
        rx.await
            .map_err(|_| JobError::temporary("the CUDA device thread dropped the job"))?
    }
}

fn serve(
    ordinal: u32,
    pool: BufferPool,
    rx: mpsc::Receiver<Task>,
    ready: mpsc::Sender<Result<DeviceInfo, CudaError>>,
) {
    let mut state = match DeviceState::open(ordinal, pool.clone()) {
        Ok(s) => {
            let _ = ready.send(Ok(s.info.clone()));
            Some(s)
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    for task in rx {
        task(&mut state);
        // After a sticky error (illegal address, launch failure) the context is unusable:
        // drop everything in it, reset the device's primary context and open it again.
        if state.as_ref().is_none_or(|s| s.is_broken()) {
            tracing::error!(
                device = ordinal,
                "CUDA context broken by an earlier error; resetting the device"
            );
            let ctx = state.as_ref().map(DeviceState::context_raw);
            drop(state.take());
            // The reset below ends every host registration made in the context.
            if let Some(ctx) = ctx {
                super::pinning::forget_context(ctx);
            }
            state = DeviceState::reopen(ordinal, pool.clone())
                .map_err(|e| tracing::error!(device = ordinal, error = %e, "could not re-open the CUDA device"))
                .ok();
        }
    }
}
