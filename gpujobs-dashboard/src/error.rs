//! What can stop the dashboard from starting.

use std::net::SocketAddr;

/// Why the dashboard cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// A non-loopback address without an access token: anyone on the network could
    /// read every job's data.
    #[error(
        "refusing to serve on {0} without an access token: a non-loopback address needs \
         --token-file or GPUJOBS_DASHBOARD_TOKEN (or bind 127.0.0.1)"
    )]
    Unprotected(SocketAddr),
    /// The token given is too short to resist guessing.
    #[error("the access token is too short: use at least 16 characters")]
    WeakToken,
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server stopped with an error.
    #[error("the dashboard's server failed: {0}")]
    Serve(std::io::Error),
}
