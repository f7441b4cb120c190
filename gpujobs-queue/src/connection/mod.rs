//! Connecting to Redis: URLs, timeouts, retrying until it is reachable, consumer
//! groups, and the start-up checks an operator should hear about; [`Conn`] is the one
//! connection type for a single Redis and a Redis Cluster.

use crate::config::RedisConfig;
mod conn;

use crate::keys::{Keys, MAX_PARTITIONS, SCHEDULERS, WORKERS};
#[cfg_attr(not(feature = "testkit"), allow(unreachable_pub))] // public through testkit
pub use conn::Conn;
pub(crate) use conn::cluster_nodes;
use gpujobs_core::{DeviceClass, QueueError};
use redis::aio::ConnectionManagerConfig;
use redis::cluster::ClusterClient;
use std::time::Duration;

/// Turns a Redis error into a queue error that says what was being done.
pub(crate) fn backend(doing: &str) -> impl Fn(redis::RedisError) -> QueueError + '_ {
    move |e| classify(doing, &e)
}

/// A Redis error as a queue error: `OOM` (maxmemory reached under `noeviction`) is
/// [`QueueError::Full`], named as such, so callers can wait for memory rather than
/// treat it as a broken connection; everything else is [`QueueError::Backend`].
pub(crate) fn classify(doing: &str, e: &redis::RedisError) -> QueueError {
    // A pipeline (blobs stored together) reports its commands' errors in one error whose
    // own code is none of theirs: an `OOM` among them is found in its text.
    let oom = e.code() == Some("OOM") || e.to_string().contains("error: \"OOM\"");
    if oom {
        QueueError::Full(format!(
            "{doing}: Redis is out of memory (used memory reached maxmemory and the \
             policy does not evict): wait for jobs to finish, or raise maxmemory"
        ))
    } else {
        QueueError::Backend(format!("{doing}: {e}"))
    }
}

/// The longest a blocking read waits; the blocking connection's response timeout is
/// this plus a margin (the `redis` crate's default, 500 ms, is shorter than a BLOCK).
pub(crate) const MAX_BLOCK: Duration = Duration::from_secs(5);

/// Opens a managed connection (it reconnects by itself with backoff after a drop), to a
/// single Redis or, for a `redis+cluster://` URL, to a Redis Cluster.
pub(crate) async fn open(
    cfg: &RedisConfig,
    response_timeout: Duration,
) -> Result<Conn, QueueError> {
    let unreachable = |e: redis::RedisError| {
        refused(cfg, &e).unwrap_or_else(|| {
            QueueError::Backend(format!("cannot reach Redis at {}: {e}", cfg.redacted_url()))
        })
    };
    let invalid = |e: redis::RedisError| {
        let hint = if cfg.url.starts_with("rediss") && !cfg!(feature = "tls") {
            " (rediss:// needs gpujobs-queue's `tls` feature)"
        } else {
            ""
        };
        QueueError::Misconfigured(format!(
            "invalid Redis URL {}: {e}{hint}",
            cfg.redacted_url()
        ))
    };
    if let Some(nodes) = cluster_nodes(&cfg.url) {
        let client = ClusterClient::builder(nodes)
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(response_timeout)
            .retries(3)
            .build()
            .map_err(invalid)?;
        return client
            .get_async_connection()
            .await
            .map(Conn::Cluster)
            .map_err(unreachable);
    }
    let client = redis::Client::open(cfg.url.as_str()).map_err(invalid)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(100))
        .set_max_delay(Duration::from_secs(2));
    client
        .get_connection_manager_with_config(config)
        .await
        .map(Conn::Single)
        .map_err(unreachable)
}

/// The partition count of the namespace: the one stored in `<{ns}>:meta`, checked
/// against `cfg.partitions` when both are set; stored when it was not yet.
pub(crate) async fn resolve_partitions(
    conn: &mut Conn,
    cfg: &RedisConfig,
) -> Result<u32, QueueError> {
    let meta = Keys::new(&cfg.namespace, 0).meta();
    let stored: Option<u32> = redis::cmd("HGET")
        .arg(&meta)
        .arg("partitions")
        .query_async(conn)
        .await
        .map_err(backend("reading the partition count"))?;
    match (stored, cfg.partitions) {
        (Some(s), Some(want)) if s != want => Err(QueueError::Misconfigured(format!(
            "namespace `{}` is laid out in {s} partitions, not {want}: pass --partitions {s} \
             (changing the count needs a drained queue, see docs/OPERATIONS.md)",
            cfg.namespace
        ))),
        (Some(s), _) => Ok(s.clamp(1, MAX_PARTITIONS)),
        (None, want) => {
            let n = want.unwrap_or(1);
            if n == 0 || n > MAX_PARTITIONS {
                return Err(QueueError::Misconfigured(format!(
                    "--partitions must be between 1 and {MAX_PARTITIONS}, not {n}"
                )));
            }
            let _: bool = redis::cmd("HSETNX")
                .arg(&meta)
                .arg("partitions")
                .arg(n)
                .query_async(conn)
                .await
                .map_err(backend("storing the partition count"))?;
            // Another process may have stored a different count first: read it back.
            let now: Option<u32> = redis::cmd("HGET")
                .arg(&meta)
                .arg("partitions")
                .query_async(conn)
                .await
                .map_err(backend("reading the partition count"))?;
            match now {
                Some(s) if s != n => Err(QueueError::Misconfigured(format!(
                    "namespace `{}` was just laid out in {s} partitions by another process, not {n}",
                    cfg.namespace
                ))),
                _ => Ok(n),
            }
        }
    }
}

/// Creates the consumer groups (idempotent). Run at start and whenever Redis says a
/// group is missing (`NOGROUP`, after a restart without persistence).
pub(crate) async fn ensure_groups(conn: &mut Conn, partitions: &[Keys]) -> Result<(), QueueError> {
    let mut streams = Vec::new();
    for keys in partitions {
        streams.push((keys.submit(), SCHEDULERS));
        for lane in DeviceClass::ALL {
            streams.extend(keys.lane_streams(lane).map(|s| (s, WORKERS)));
        }
    }
    for (stream, group) in streams {
        create_group(conn, &stream, group).await?;
    }
    Ok(())
}

/// Creates consumer group `group` on `stream`, and the stream if missing (idempotent).
pub(crate) async fn create_group(
    conn: &mut Conn,
    stream: &str,
    group: &str,
) -> Result<(), QueueError> {
    let r: Result<(), redis::RedisError> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(QueueError::Backend(format!(
            "creating consumer group {group} on {stream}: {e}"
        ))),
    }
}

/// Logs a warning when Redis may lose jobs: eviction allowed, or no persistence.
pub(crate) async fn warn_about_durability(conn: &mut Conn, cfg: &RedisConfig) {
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

/// How an authentication failure starts its message (`connect_retrying` retries these
/// only for [`RedisConfig::auth_grace`]).
pub(crate) const AUTH_FAILED: &str = "authentication failed";

/// The error to report when Redis refused the credentials, `None` for other errors.
pub(crate) fn refused(cfg: &RedisConfig, e: &redis::RedisError) -> Option<QueueError> {
    is_auth_error(e).then(|| {
        QueueError::Misconfigured(format!(
            "{AUTH_FAILED} at {}: {e} (check the user and password in the URL)",
            cfg.redacted_url()
        ))
    })
}

/// Whether Redis refused the credentials (wrong password, unknown user, none given).
fn is_auth_error(e: &redis::RedisError) -> bool {
    let text = e.to_string();
    e.kind() == redis::ErrorKind::AuthenticationFailed
        || ["WRONGPASS", "NOAUTH", "NOPERM"]
            .iter()
            .any(|c| e.code() == Some(*c) || text.contains(c))
}

/// Whether an error means a consumer group is missing.
pub(crate) fn is_nogroup(e: &redis::RedisError) -> bool {
    e.code() == Some("NOGROUP") || e.to_string().contains("NOGROUP")
}
