//! `gpujobs scheduler`.

use crate::cli::SchedulerArgs;
use crate::connect;
use crate::error::CliError;
use crate::signals;
use gpujobs_core::{
    CalibratedCostModel, CostModel, EarliestFinish, Queue, Registry, Scheduler, SchedulerConfig,
};
use std::sync::Arc;

/// Runs the command until SIGTERM/SIGINT.
pub async fn run(args: SchedulerArgs) -> Result<(), CliError> {
    let shutdown = signals::on_signal();
    let metrics = crate::metrics::serve_if_asked(args.metrics_addr, &shutdown).await?;
    let Some(queue) = connect::daemon(&args.redis, shutdown.clone(), metrics.as_deref()).await?
    else {
        return Ok(());
    };
    // Said once: jobs sent to the brace-less key of the old layout never run.
    for (key, entries) in queue.stray_submits().await {
        tracing::warn!(%key, entries, namespace = %args.redis.namespace, "entries wait on a submit key nothing reads; those jobs never run: submit to `{{<namespace>}}:submit` (docs/wire-format.md)");
    }
    let queue: Arc<dyn Queue> = Arc::new(queue);
    let mut config = SchedulerConfig {
        batch: args.batch.max(1),
        ..SchedulerConfig::default()
    };
    if let Some(id) = args.id {
        config.id = id;
    }
    tracing::info!(redis = %gpujobs_queue::redact(&args.redis.url), namespace = %args.redis.namespace, id = %config.id, "scheduler connected");
    let model = CalibratedCostModel::load(args.cost_model.as_deref()).map_err(CliError::input)?;
    tracing::info!(model = %model.description(), "placement by earliest estimated finish");
    let placement = Arc::new(EarliestFinish::new(model).with_locality_wait(
        match args.locality_wait_ms {
            // The old spelling, in milliseconds, wins when given.
            Some(ms) => std::time::Duration::from_millis(ms),
            None => std::time::Duration::from_secs_f64(args.locality_wait),
        },
    ));
    let mut scheduler = Scheduler::new(
        queue.clone(),
        Arc::new(Registry::with_builtin_kinds()),
        placement,
        config,
    );
    if let Some(m) = metrics {
        crate::metrics::refresh_every_5s(m.clone(), queue, Vec::new(), shutdown.clone());
        scheduler = scheduler.with_observer(m);
    }
    let report = scheduler.run(shutdown).await;
    tracing::info!(
        placed = report.placed,
        rejected = report.rejected,
        "scheduler stopped"
    );
    Ok(())
}
