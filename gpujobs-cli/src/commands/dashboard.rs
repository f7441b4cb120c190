//! `gpujobs dashboard`: serves the web dashboard (`gpujobs-dashboard`) over the Redis
//! the scheduler and workers use, until SIGTERM or Ctrl-C.

use crate::connect;
use crate::connect::RedisArgs;
use crate::error::CliError;
use clap::Args;
use gpujobs_dashboard::{Dashboard, DashboardConfig};
use gpujobs_queue::history::HistorySettings;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Options of `gpujobs dashboard`.
#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Where Redis is.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Address to serve on. A non-loopback address needs an access token.
    #[arg(long, env = "GPUJOBS_DASHBOARD_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// A file holding the access token (first line; at least 16 characters) that allows
    /// retry and cancel. Without it (or GPUJOBS_DASHBOARD_TOKEN) the dashboard is
    /// read-only.
    #[arg(long, env = "GPUJOBS_DASHBOARD_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// How long ended jobs stay searchable (`24h`, `7d` is `168h`).
    #[arg(long, default_value = "24h", value_parser = crate::units::seconds)]
    pub history_retention: f64,
    /// At most this many ended jobs per search index and partition (the oldest go).
    #[arg(long, default_value_t = 1_000_000)]
    pub history_max_jobs: u64,
    /// Do not index ended jobs here (another dashboard does; pages still read the
    /// history it keeps).
    #[arg(long)]
    pub no_history_keeper: bool,
}

/// The access token: the file's first line, else `GPUJOBS_DASHBOARD_TOKEN`.
fn token(args: &DashboardArgs) -> Result<Option<String>, CliError> {
    if let Some(path) = &args.token_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::input(format!(
                "cannot read the token file {}: {e}",
                path.display()
            ))
        })?;
        let first = text.lines().next().unwrap_or("").trim().to_string();
        if first.is_empty() {
            return Err(CliError::input(format!(
                "the token file {} is empty",
                path.display()
            )));
        }
        return Ok(Some(first));
    }
    Ok(std::env::var("GPUJOBS_DASHBOARD_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
}

pub async fn run(args: DashboardArgs) -> Result<(), CliError> {
    if !(args.history_retention.is_finite() && args.history_retention >= 60.0) {
        return Err(CliError::input(
            "--history-retention must be at least 1 min",
        ));
    }
    let token = token(&args)?;
    let shutdown = crate::signals::on_signal();
    let Some(queue) = connect::daemon(&args.redis, shutdown.clone(), None).await? else {
        return Ok(());
    };
    let config = DashboardConfig {
        addr: args.addr,
        token,
        redis_shown: args.redis.url.clone(),
        namespace: args.redis.namespace.clone(),
        keep_history: !args.no_history_keeper,
        history: HistorySettings {
            retention: Duration::from_secs_f64(args.history_retention),
            max_jobs: args.history_max_jobs.max(1),
            ..HistorySettings::default()
        },
    };
    let read_only = config.token.is_none();
    let dash = Dashboard::bind(config, Arc::new(queue))
        .await
        .map_err(|e| CliError::input(e.to_string()))?;
    let addr = dash
        .local_addr()
        .map_err(|e| CliError::runtime(e.to_string()))?;
    tracing::info!(%addr, read_only, "dashboard at http://{addr}/");
    eprintln!(
        "gpujobs dashboard on http://{addr}/{}",
        if read_only {
            " (read-only: no access token)"
        } else {
            ""
        }
    );
    let mut stop = shutdown;
    dash.run(async move { stop.wait().await })
        .await
        .map_err(|e| CliError::runtime(e.to_string()))
}
