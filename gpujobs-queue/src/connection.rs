//! Connecting to Redis: URLs, timeouts, retrying until it is reachable, consumer
//! groups, and the start-up checks an operator should hear about.

use crate::config::RedisConfig;
use crate::keys::{Keys, SCHEDULERS, WORKERS};
use gpujobs_core::{DeviceClass, Priority, QueueError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// Turns a Redis error into a queue error that says what was being done.
pub(crate) fn backend(doing: &str) -> impl Fn(redis::RedisError) -> QueueError + '_ {
    move |e| QueueError::Backend(format!("{doing}: {e}"))
}

/// The longest a blocking read waits; the blocking connection's response timeout is
/// this plus a margin (the `redis` crate's default, 500 ms, is shorter than a BLOCK).
pub(crate) const MAX_BLOCK: Duration = Duration::from_secs(5);

/// Opens a managed connection (it reconnects by itself with backoff after a drop).
pub(crate) async fn open(
    cfg: &RedisConfig,
    response_timeout: Duration,
) -> Result<ConnectionManager, QueueError> {
    let client = redis::Client::open(cfg.url.as_str()).map_err(|e| {
        let hint = if cfg.url.starts_with("rediss://") && !cfg!(feature = "tls") {
            " (rediss:// needs gpujobs-queue's `tls` feature)"
        } else {
            ""
        };
        QueueError::Backend(format!(
            "invalid Redis URL {}: {e}{hint}",
            cfg.redacted_url()
        ))
    })?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(100))
        .set_max_delay(Duration::from_secs(2));
    client
        .get_connection_manager_with_config(config)
        .await
        .map_err(|e| {
            QueueError::Backend(format!("cannot reach Redis at {}: {e}", cfg.redacted_url()))
        })
}

/// Creates the consumer groups (idempotent). Run at start and whenever Redis says a
/// group is missing (`NOGROUP`, after a restart without persistence).
pub(crate) async fn ensure_groups(
    conn: &mut ConnectionManager,
    keys: &Keys,
) -> Result<(), QueueError> {
    let mut streams = vec![(keys.submit(), SCHEDULERS)];
    for lane in DeviceClass::ALL {
        for p in Priority::ALL {
            streams.push((keys.lane(lane, p), WORKERS));
        }
    }
    for (stream, group) in streams {
        let r: Result<(), redis::RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&stream)
            .arg(group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(conn)
            .await;
        match r {
            Ok(()) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => {
                return Err(QueueError::Backend(format!(
                    "creating consumer group {group} on {stream}: {e}"
                )));
            }
        }
    }
    Ok(())
}

/// Logs a warning when Redis may lose jobs: eviction allowed, or no persistence.
pub(crate) async fn warn_about_durability(conn: &mut ConnectionManager, cfg: &RedisConfig) {
    let get = |name: &'static str| {
        let mut c = conn.clone();
        async move {
            let v: Result<Vec<String>, _> = redis::cmd("CONFIG")
                .arg("GET")
                .arg(name)
                .query_async(&mut c)
                .await;
            v.ok().and_then(|v| v.get(1).cloned())
        }
    };
    let (policy, aof, save) = (
        get("maxmemory-policy").await,
        get("appendonly").await,
        get("save").await,
    );
    if let Some(p) = policy.filter(|p| p != "noeviction") {
        tracing::warn!(url = %cfg.redacted_url(), policy = %p, "Redis maxmemory-policy is not noeviction: under memory pressure it may evict queued jobs");
    }
    if aof.as_deref() == Some("no") && save.as_deref().is_some_and(|s| s.trim().is_empty()) {
        tracing::warn!(url = %cfg.redacted_url(), "Redis persistence is off (appendonly no, no save points): a Redis restart loses every queued job");
    }
}

/// Whether an error means a consumer group is missing.
pub(crate) fn is_nogroup(e: &redis::RedisError) -> bool {
    e.code() == Some("NOGROUP") || e.to_string().contains("NOGROUP")
}
