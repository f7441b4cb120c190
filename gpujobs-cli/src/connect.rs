//! Connecting the distributed commands to Redis.

use crate::error::CliError;
use clap::Args;
use gpujobs_queue::{RedisConfig, RedisQueue};
use std::time::Duration;

/// Where Redis is.
#[derive(Debug, Clone, Args)]
pub struct RedisArgs {
    /// Redis URL: redis://[user:password@]host:port[/db] (rediss:// with the `tls` build),
    /// or redis+cluster://host:port[,host:port...] for a Redis Cluster.
    #[arg(
        long = "redis",
        env = "GPUJOBS_REDIS_URL",
        // --help must not print a password taken from the environment.
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379",
        global = true
    )]
    pub url: String,
    /// Key prefix, so several deployments can share one Redis.
    #[arg(
        long,
        env = "GPUJOBS_NAMESPACE",
        default_value = "gpujobs",
        global = true
    )]
    pub namespace: String,
    /// Partitions the namespace's keys are spread over, each one Redis Cluster slot
    /// (default: the count already stored for the namespace, or 1 for a new one).
    /// Every process of a namespace must agree; see docs/OPERATIONS.md.
    #[arg(long, env = "GPUJOBS_PARTITIONS", global = true, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub partitions: Option<u32>,
    /// Largest submit entry (a job's JSON; `16MiB`, or bytes): clients refuse bigger
    /// ones, schedulers dead-letter them unparsed (default 16MiB).
    #[arg(long, env = "GPUJOBS_MAX_ENTRY_BYTES", global = true, value_parser = crate::units::entry_bytes)]
    pub max_entry_bytes: Option<u64>,
    /// Largest blob (one input or output tensor; `64MiB`, or bytes); `submit` refuses an
    /// input file over it from its header (default 512MiB, Redis's own limit).
    #[arg(long, env = "GPUJOBS_MAX_BLOB_BYTES", global = true, value_parser = crate::units::blob_bytes)]
    pub max_blob_bytes: Option<u64>,
    /// How long a finished job's record and output blobs stay (`24h`, at most a week):
    /// the processes that end jobs apply it (workers, schedulers, `cancel`).
    #[arg(long, env = "GPUJOBS_KEEP_FINISHED_FOR", global = true, default_value = "24h", value_parser = crate::units::positive_seconds)]
    pub keep_finished_for: f64,
    /// Succeeded jobs kept, newest first: past this many, workers delete the oldest
    /// succeeded job's record and output blobs as new ones succeed (0: no count, only
    /// --keep-finished-for). Failed and dead jobs are not counted.
    #[arg(
        long,
        env = "GPUJOBS_KEEP_SUCCEEDED",
        global = true,
        default_value_t = 0
    )]
    pub keep_succeeded: u64,
    /// Object storage for large blobs (build with `--features objects`): blobs over
    /// --offload-above go to `<url>/<namespace>/<job>/<blob>` and Redis keeps a
    /// reference. file:///path or s3://bucket/prefix (S3 settings from AWS_* variables:
    /// AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, ...). Every process of a
    /// namespace that reads or writes blobs needs it (see docs/object-storage.md).
    #[arg(long, env = "GPUJOBS_OFFLOAD_URL", global = true, hide = !cfg!(feature = "objects"))]
    pub offload_url: Option<String>,
    /// Blobs larger than this go to --offload-url (`1MiB`, or bytes).
    #[arg(long, env = "GPUJOBS_OFFLOAD_ABOVE", global = true, hide = !cfg!(feature = "objects"), default_value = "1MiB", value_parser = crate::units::bytes)]
    pub offload_above: u64,
    /// URL prefixes, besides --offload-url, that `url` tensors may be read from
    /// (comma-separated: s3://datasets/,file:///data/). A worker reads nothing else.
    #[arg(
        long,
        env = "GPUJOBS_OBJECTS_ALLOW",
        global = true,
        hide = !cfg!(feature = "objects"),
        value_delimiter = ','
    )]
    pub objects_allow: Vec<String>,
    /// Longest one request to the object store may take (`15s`), transfer included;
    /// retried within --objects-retry-budget.
    #[arg(long, env = "GPUJOBS_OBJECTS_TIMEOUT", global = true, hide = !cfg!(feature = "objects"), default_value_t = gpujobs_queue::ObjectsConfig::DEFAULT_REQUEST_TIMEOUT.as_secs_f64(), value_parser = crate::units::positive_seconds)]
    pub objects_timeout: f64,
    /// Longest a connection to the object store may take to open (`3s`).
    #[arg(long, env = "GPUJOBS_OBJECTS_CONNECT_TIMEOUT", global = true, hide = !cfg!(feature = "objects"), default_value_t = gpujobs_queue::ObjectsConfig::DEFAULT_CONNECT_TIMEOUT.as_secs_f64(), value_parser = crate::units::positive_seconds)]
    pub objects_connect_timeout: f64,
    /// How long one object read or write keeps retrying after its first request
    /// (`15s`): with --objects-timeout, the most any command or worker waits on a store
    /// that does not answer (docs/object-storage.md, "Faults").
    #[arg(long, env = "GPUJOBS_OBJECTS_RETRY_BUDGET", global = true, hide = !cfg!(feature = "objects"), default_value_t = gpujobs_queue::ObjectsConfig::DEFAULT_RETRY_BUDGET.as_secs_f64(), value_parser = crate::units::seconds)]
    pub objects_retry_budget: f64,
}

/// The queue settings the arguments name.
pub fn config(args: &RedisArgs) -> RedisConfig {
    let mut c = RedisConfig::new(args.url.clone());
    c.namespace = args.namespace.clone();
    c.partitions = args.partitions;
    c.finished_ttl = Duration::from_secs_f64(args.keep_finished_for);
    c.keep_succeeded = args.keep_succeeded;
    if let Some(b) = args.max_entry_bytes {
        c.max_entry_bytes = b;
    }
    if let Some(b) = args.max_blob_bytes {
        c.max_blob_bytes = b;
    }
    c.objects.offload_url = args.offload_url.clone().filter(|u| !u.is_empty());
    c.objects.offload_above = args.offload_above;
    c.objects.allow = args.objects_allow.clone();
    c.objects.request_timeout = Duration::from_secs_f64(args.objects_timeout);
    c.objects.connect_timeout = Duration::from_secs_f64(args.objects_connect_timeout);
    c.objects.retry_budget = Duration::from_secs_f64(args.objects_retry_budget);
    c
}

/// For daemons (worker, scheduler): retries with backoff until Redis answers, logging
/// each failure; `None` if `shutdown` fires first.
pub async fn daemon(
    args: &RedisArgs,
    mut shutdown: gpujobs_core::Shutdown,
    metrics: Option<&crate::metrics::Metrics>,
) -> Result<Option<RedisQueue>, CliError> {
    // While it retries, the readiness probe says what Redis answered.
    let on_retry = |e: &gpujobs_core::QueueError| {
        if let Some(m) = metrics {
            m.redis_failed(e);
        }
    };
    tokio::select! {
        q = RedisQueue::connect_observed(config(args), None, on_retry) => q.map(Some).map_err(CliError::from),
        _ = shutdown.wait() => {
            tracing::info!("stopped before Redis became reachable");
            Ok(None)
        }
    }
}

/// For clients (submit, status, ...): a few quick tries, then a clear error. Refused
/// credentials fail at once (exit 2): the grace a daemon gets for a password rotation
/// would only keep a person waiting 30 s to learn the password is wrong.
pub async fn client(args: &RedisArgs) -> Result<RedisQueue, CliError> {
    let mut cfg = config(args);
    cfg.warn_durability = false;
    cfg.auth_grace = Duration::ZERO;
    RedisQueue::connect_retrying(cfg, Some(Duration::from_secs(3)))
        .await
        .map_err(CliError::from)
}
