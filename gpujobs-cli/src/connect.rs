//! Connecting the distributed commands to Redis.

use crate::cli::RedisArgs;
use crate::error::CliError;
use gpujobs_queue::{RedisConfig, RedisQueue};
use std::time::Duration;

fn config(args: &RedisArgs) -> RedisConfig {
    let mut c = RedisConfig::new(args.url.clone());
    c.namespace = args.namespace.clone();
    c.partitions = args.partitions;
    c
}

/// For daemons (worker, scheduler): retries with backoff until Redis answers, logging
/// each failure; `None` if `shutdown` fires first.
pub async fn daemon(
    args: &RedisArgs,
    mut shutdown: gpujobs_core::Shutdown,
) -> Result<Option<RedisQueue>, CliError> {
    tokio::select! {
        q = RedisQueue::connect_retrying(config(args), None) => q.map(Some).map_err(CliError::from),
        _ = shutdown.wait() => {
            tracing::info!("stopped before Redis became reachable");
            Ok(None)
        }
    }
}

/// For clients (submit, status, ...): a few quick tries, then a clear error.
pub async fn client(args: &RedisArgs) -> Result<RedisQueue, CliError> {
    let mut cfg = config(args);
    cfg.warn_durability = false;
    RedisQueue::connect_retrying(cfg, Some(Duration::from_secs(3)))
        .await
        .map_err(CliError::from)
}
