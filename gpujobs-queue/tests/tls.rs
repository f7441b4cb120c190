//! `rediss://` end to end (feature `tls`): a private redis-server that speaks only TLS,
//! with a certificate from a throwaway CA that the client trusts through
//! `SSL_CERT_FILE`, and the whole conformance suite over it.
//!
//! Run with `cargo test -p gpujobs-queue --features tls --test tls` (needs `openssl` and
//! a `redis-server` built with TLS, as Debian's is).

#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
#![allow(unsafe_code)] // set_var before any other thread exists

use gpujobs_core::conformance;
use gpujobs_queue::{RedisConfig, RedisQueue};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `openssl` in `dir` with whitespace-separated arguments.
fn openssl(dir: &Path, args: &str) {
    gpujobs_queue::testkit::require_command("openssl", "openssl");
    let st = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed");
    assert!(st.success(), "openssl {args}");
}

/// A CA, and a server certificate for localhost signed by it.
fn certificates(dir: &Path) {
    openssl(
        dir,
        "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
         -subj /CN=gpujobs-test-ca",
    );
    openssl(
        dir,
        "req -newkey rsa:2048 -nodes -keyout redis.key -out redis.csr -subj /CN=localhost",
    );
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        dir,
        "x509 -req -in redis.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out redis.crt \
         -days 2 -extfile ext",
    );
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_tls_redis(dir: &Path) -> (Server, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    gpujobs_queue::testkit::require_command("redis-server", "redis-server");
    let child = Command::new("redis-server")
        .args(["--port", "0", "--tls-port", &port.to_string()])
        .args([
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--tls-auth-clients",
            "no",
        ])
        .args([
            "--tls-cert-file",
            "redis.crt",
            "--tls-key-file",
            "redis.key",
        ])
        .args(["--tls-ca-cert-file", "ca.crt", "--logfile", "redis.log"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed");
    let server = Server(child);
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (server, port)
}

#[test]
fn conformance_suite_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    // rustls-native-certs reads the trust store from SSL_CERT_FILE; nothing else runs yet.
    unsafe { std::env::set_var("SSL_CERT_FILE", dir.path().join("ca.crt")) };
    let (_server, port) = start_tls_redis(dir.path());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // A plain-text client is refused: the port speaks only TLS.
        let plain = RedisConfig::new(format!("redis://127.0.0.1:{port}"));
        let refused =
            tokio::time::timeout(Duration::from_secs(5), RedisQueue::connect(plain)).await;
        assert!(
            !matches!(refused, Ok(Ok(_))),
            "plain text accepted on a TLS port"
        );

        let mut cfg = RedisConfig::new(format!("rediss://localhost:{port}"));
        cfg.namespace = "tls".into();
        let q = RedisQueue::connect(cfg).await.unwrap();
        conformance::run_all(&q).await;
    });
}
