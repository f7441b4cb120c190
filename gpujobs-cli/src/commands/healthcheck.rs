//! `gpujobs healthcheck`: asks a running worker or scheduler's metrics endpoint whether
//! it is alive (`/healthz`) or ready (`/readyz`), for container health checks in images
//! that carry no curl.

use crate::error::CliError;
use clap::Args;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Options of `gpujobs healthcheck`.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The process's `--metrics-addr`; a wildcard address (0.0.0.0, [::]) is asked on
    /// loopback.
    #[arg(long, env = "GPUJOBS_METRICS_ADDR", default_value = "127.0.0.1:9464")]
    pub addr: String,
    /// Ask `/readyz` (Redis answered within 20 s) instead of `/healthz` (the process
    /// answers).
    #[arg(long)]
    pub ready: bool,
    /// How long to wait for the answer (`3s`).
    #[arg(long, default_value = "3s", value_parser = crate::units::positive_seconds)]
    pub timeout: f64,
}

/// Where to connect for `addr`: wildcard addresses become loopback.
fn target(addr: &str) -> Result<SocketAddr, CliError> {
    let mut a = addr
        .to_socket_addrs()
        .map_err(|e| CliError::input(format!("bad --addr {addr}: {e}")))?
        .next()
        .ok_or_else(|| CliError::input(format!("--addr {addr} resolves to nothing")))?;
    if a.ip().is_unspecified() {
        a.set_ip(if a.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Ok(a)
}

/// One GET; the status line and body.
fn get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<(String, String)> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = String::new();
    s.take(64 * 1024).read_to_string(&mut reply)?;
    let status = reply.lines().next().unwrap_or("").to_string();
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Exits 0 when the endpoint says 200, else an error naming what it said.
pub async fn run(args: HealthcheckArgs) -> Result<(), CliError> {
    let addr = target(&args.addr)?;
    let path = if args.ready { "/readyz" } else { "/healthz" };
    let timeout = Duration::from_secs_f64(args.timeout);
    let (status, body) = tokio::task::spawn_blocking(move || get(addr, path, timeout))
        .await
        .map_err(|e| CliError::runtime(format!("healthcheck task: {e}")))?
        .map_err(|e| CliError::runtime(format!("http://{addr}{path}: {e}")))?;
    if status.split_whitespace().nth(1) == Some("200") {
        println!("{body}");
        Ok(())
    } else {
        Err(CliError::runtime(format!(
            "http://{addr}{path}: {status}: {body}"
        )))
    }
}
