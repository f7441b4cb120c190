//! Serving the metrics: gauges refreshed from the queue every few seconds, and the
//! `/metrics`, `/healthz` and `/readyz` endpoints.

use super::*;
use gpujobs_core::Queue;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Refreshes the gauges read from Redis and the devices every 5 s until `shutdown`
/// fires (start it once connected; [`listen`] serves before that).
pub fn refresh_every_5s(
    metrics: Arc<Metrics>,
    queue: Arc<dyn Queue>,
    backends: Vec<Arc<dyn gpujobs_core::Backend>>,
    mut shutdown: gpujobs_core::Shutdown,
) {
    tokio::spawn(async move {
        loop {
            metrics.refresh(queue.as_ref(), &backends).await;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = shutdown.wait() => return,
            }
        }
    });
}

/// A daemon's metrics when `--metrics-addr` asks for them: created and served (see
/// [`listen`]) before it connects.
pub async fn serve_if_asked(
    addr: Option<SocketAddr>,
    shutdown: &gpujobs_core::Shutdown,
) -> Result<Option<Arc<Metrics>>, crate::error::CliError> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let m = Metrics::new();
    listen(addr, m.clone(), shutdown.clone()).await?;
    Ok(Some(m))
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until `shutdown` fires; bound
/// before the daemon connects, so that `/readyz` says why it is not ready yet. Returns
/// once the listener is bound (errors if it cannot be).
pub async fn listen(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    mut shutdown: gpujobs_core::Shutdown,
) -> Result<(), crate::error::CliError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        crate::error::CliError::runtime(format!("cannot serve metrics on {addr}: {e}"))
    })?;
    tracing::info!(%addr, "serving Prometheus metrics on /metrics");
    tokio::spawn(async move {
        loop {
            let conn = tokio::select! {
                c = listener.accept() => c,
                _ = shutdown.wait() => return,
            };
            let Ok((mut stream, _)) = conn else { continue };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                // Read the request head (up to 8 KiB, 5 s): closing with unread bytes
                // would reset the connection under the client's feet.
                let mut buf = Vec::with_capacity(1024);
                let mut chunk = [0u8; 1024];
                let read_head = async {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(5), read_head).await;
                let n = buf.len();
                let request = String::from_utf8_lossy(&buf[..n]);
                let path = request.split_whitespace().nth(1).unwrap_or("");
                let (status, kind, body) = match path {
                    "/metrics" => (
                        "200 OK",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        metrics.render(),
                    ),
                    "/healthz" => ("200 OK", "text/plain", "ok\n".to_string()),
                    "/readyz" => match metrics.ready() {
                        Ok(()) => ("200 OK", "text/plain", "ready\n".to_string()),
                        Err(why) => ("503 Service Unavailable", "text/plain", format!("{why}\n")),
                    },
                    _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok(())
}
