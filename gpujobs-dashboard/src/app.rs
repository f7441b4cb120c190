//! Configuration, shared state, routes and the server's life.

use crate::error::DashboardError;
use crate::keeper::KeeperStatus;
use crate::sessions::Sessions;
use crate::{actions, assets, keeper, outputs, security, views};
use axum::Router;
use axum::routing::{get, post};
use gpujobs_queue::RedisQueue;
use gpujobs_queue::history::HistorySettings;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// How the dashboard is set up.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// Where to listen (default `127.0.0.1:8080`).
    pub addr: SocketAddr,
    /// The access token that allows actions; `None`: read-only.
    pub token: Option<String>,
    /// The Redis URL as shown on the pages (with its password masked).
    pub redis_shown: String,
    /// The namespace served.
    pub namespace: String,
    /// Whether this dashboard runs a history keeper (several may: a lease per
    /// partition makes one of them do the work).
    pub keep_history: bool,
    /// How much history the keeper keeps.
    pub history: HistorySettings,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            redis_shown: String::new(),
            namespace: "gpujobs".into(),
            keep_history: true,
            history: HistorySettings::default(),
        }
    }
}

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) queue: Arc<RedisQueue>,
    pub(crate) token: Option<String>,
    pub(crate) sessions: Sessions,
    pub(crate) redis_shown: String,
    pub(crate) namespace: String,
    pub(crate) keeper: Mutex<KeeperStatus>,
    /// Bound to a loopback address: requests must name a loopback host.
    pub(crate) loopback_only: bool,
}

pub(crate) type State = axum::extract::State<Arc<AppState>>;

/// A dashboard bound to its address, ready to run.
pub struct Dashboard {
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    config: DashboardConfig,
}

impl Dashboard {
    /// Checks the configuration (a non-loopback address needs a token of at least 16
    /// characters) and binds the address.
    pub async fn bind(
        config: DashboardConfig,
        queue: Arc<RedisQueue>,
    ) -> Result<Dashboard, DashboardError> {
        if let Some(t) = &config.token
            && t.trim().len() < 16
        {
            return Err(DashboardError::WeakToken);
        }
        if !config.addr.ip().is_loopback() && config.token.is_none() {
            return Err(DashboardError::Unprotected(config.addr));
        }
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|source| DashboardError::Bind {
                addr: config.addr,
                source,
            })?;
        let state = Arc::new(AppState {
            queue,
            token: config.token.as_ref().map(|t| t.trim().to_string()),
            sessions: Sessions::default(),
            redis_shown: gpujobs_queue::redact(&config.redis_shown),
            namespace: config.namespace.clone(),
            keeper: Mutex::new(KeeperStatus::default()),
            loopback_only: config.addr.ip().is_loopback(),
        });
        Ok(Dashboard {
            listener,
            state,
            config,
        })
    }

    /// The address it listens on (the port chosen when asked for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, running the history keeper beside it.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), DashboardError> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        if self.config.keep_history {
            keeper::spawn(self.state.clone(), self.config.history, stop_rx);
        }
        let app = router(self.state);
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = stop_tx.send(true);
            })
            .await;
        served.map_err(DashboardError::Serve)
    }
}

/// Every route.
fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(views::overview::page))
        .route("/workers", get(views::workers::page))
        .route("/jobs", get(views::jobs::page))
        .route("/jobs/{id}", get(views::job::page))
        .route("/jobs/{id}/graph", get(views::graph::page))
        .route("/jobs/{id}/outputs/{file}", get(outputs::file))
        .route("/jobs/{id}/retry", post(actions::retry))
        .route("/jobs/{id}/cancel", post(actions::cancel))
        .route("/dead", get(views::dead::page))
        .route("/dead/retry", post(actions::retry_many))
        .route("/login", post(actions::login))
        .route("/logout", post(actions::logout))
        .route("/healthz", get(|| async { "ok" }))
        .route("/static/app.js", get(assets::app_js))
        .route("/static/style.css", get(assets::style_css))
        .fallback(views::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::headers,
        ))
        .with_state(state)
}
