//! `gpujobs worker`.

use crate::backends::{self, Backend};
use crate::cli::{BackendArg, WorkerArgs};
use crate::connect;
use crate::error::CliError;
use crate::signals;
use gpujobs_core::{Queue, Worker, WorkerConfig};
use std::sync::Arc;
use std::time::Duration;

/// Runs the command until SIGTERM/SIGINT, then drains and exits 0.
pub async fn run(args: WorkerArgs) -> Result<(), CliError> {
    if args.cuda_pipeline {
        gpujobs_cuda::set_pipeline(true);
    }
    let at_least = |x: f64, min: f64| x.is_finite() && x >= min;
    // The old spellings, in their own units, win when given.
    let light_below_s = args.light_below_ms.map_or(args.light_below, |ms| ms / 1e3);
    if !(light_below_s.is_finite() && (0.0..=60.0).contains(&light_below_s)) {
        return Err(CliError::input("--light-below must be between 0 and 60s"));
    }
    let cache_bytes = args
        .cache_mib
        .map_or(args.cache, |mib| mib.saturating_mul(1 << 20));
    if !at_least(args.lease, 0.1) || !at_least(args.grace, 0.0) {
        return Err(CliError::input(
            "--lease must be at least 0.1 s and --grace at least 0 s",
        ));
    }
    // Open the devices first, each once: a CUDA worker without a GPU says so and
    // exits non-zero.
    let targets: Vec<Backend> = match args.backend {
        BackendArg::Cpu => vec![backends::cpu()],
        BackendArg::Cuda => backends::gpus()
            .map_err(|e| CliError::runtime(format!("cannot start a CUDA worker: {e}")))?,
    };
    let shutdown = signals::on_signal();
    let metrics = crate::metrics::serve_if_asked(args.metrics_addr, &shutdown).await?;
    let Some(queue) = connect::daemon(&args.redis, shutdown.clone(), metrics.as_deref()).await?
    else {
        return Ok(());
    };
    let queue: Arc<dyn Queue> = Arc::new(queue);
    if let Some(m) = &metrics {
        let handles = targets.iter().map(|t| t.handle.clone()).collect();
        crate::metrics::refresh_every_5s(m.clone(), queue.clone(), handles, shutdown.clone());
    }
    let mut tasks = Vec::new();
    for (i, backend) in targets.into_iter().enumerate() {
        let mut config = WorkerConfig::new(backend.device.clone());
        config.concurrency = args.concurrency.max(1);
        config.light_concurrency = args.light_concurrency;
        config.light_below = Duration::from_secs_f64(light_below_s);
        config.lease = Duration::from_secs_f64(args.lease);
        config.input_wait = Duration::from_secs_f64(args.input_wait);
        config.reclaim_every = config.lease.min(Duration::from_secs(5));
        config.grace = Duration::from_secs_f64(args.grace);
        config.cache_bytes = cache_bytes;
        if let Some(id) = &args.id {
            config.id = if i == 0 {
                id.clone()
            } else {
                format!("{id}-{i}")
            };
        }
        // Through the log, so that `--log-format json` keeps every line JSON.
        tracing::info!(worker = %config.id, lane = %config.lane, device = %backend.device, "worker serving its lane");
        let worker_id = config.id.clone();
        let mut worker = Worker::new(queue.clone(), backend.registry.clone(), config);
        if let Some(m) = &metrics {
            worker = worker.with_observer(m.clone());
            m.watch_cache(worker_id, worker.cache());
        }
        tasks.push(tokio::spawn(worker.run(shutdown.clone())));
    }
    let mut done = 0;
    for t in tasks {
        let report = t
            .await
            .map_err(|e| CliError::runtime(format!("worker task failed: {e}")))?;
        done += report.done;
        tracing::info!(
            done = report.done,
            failed_attempts = report.failed,
            released_unfinished = report.released,
            "worker stopped"
        );
    }
    tracing::info!(done, "all workers stopped");
    Ok(())
}
