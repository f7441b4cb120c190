//! A private `redis-server` for tests (feature `testkit`): a free loopback port, a
//! temporary directory, and the power to kill and restart it, so tests never touch the
//! machine's own Redis.

pub use crate::connection::Conn as Connection;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    /// The loopback port it listens on.
    pub port: u16,
    dir: tempfile::TempDir,
    appendonly: bool,
    extra: Vec<String>,
}

/// Ends the test process with one line naming the Debian package when `command` is not
/// on PATH, instead of a panic and a backtrace from deep inside a test. Call it before
/// spawning a tool the tests need (`redis-server`, `redis-cli`, `openssl`).
pub fn require_command(command: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(command).is_file()));
    if !found {
        // Straight to the process's stderr: the test harness captures `eprintln!`, and
        // would drop it when the process exits here.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "error: `{command}` is not on PATH; these tests need the Debian package \
             {package} (apt-get install {package}), which `.ci/run unit` installs"
        );
        std::process::exit(2);
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

impl RedisServer {
    /// Starts a server; with `appendonly`, every write is fsynced to an AOF file.
    pub fn start(appendonly: bool) -> Self {
        Self::start_with(appendonly, &[])
    }

    /// Starts a server with extra `redis-server` arguments (`--maxmemory 10mb`, ...).
    pub fn start_with(appendonly: bool, extra: &[&str]) -> Self {
        let mut s = RedisServer {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            appendonly,
            extra: extra.iter().map(|a| a.to_string()).collect(),
        };
        // A free port is only free when asked: another process (a client's outgoing
        // connection among the tests running beside) may take it before the server
        // binds it, and the server then exits. Try again on fresh ports (a cluster
        // node's bus port too).
        for _ in 0..8 {
            if s.try_spawn() {
                return s;
            }
            s.port = free_port();
            // A fresh directory too: a cluster node may have written its nodes.conf.
            s.dir = tempfile::tempdir().expect("temp dir");
            if let Some(i) = s.extra.iter().position(|a| a == "--cluster-port")
                && let Some(bus) = s.extra.get_mut(i + 1)
            {
                *bus = free_port().to_string();
            }
        }
        panic!(
            "redis-server did not start on 8 free ports in a row (last {})",
            s.port
        );
    }

    /// Starts the server on its port; `false` when it exited before accepting
    /// connections (the port was taken).
    fn try_spawn(&mut self) -> bool {
        let dir: PathBuf = self.dir.path().into();
        require_command("redis-server", "redis-server");
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--daemonize",
                "no",
            ])
            .args([
                "--appendonly",
                if self.appendonly { "yes" } else { "no" },
                "--appendfsync",
                "always",
            ])
            .args(&self.extra)
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (Debian package redis-server)");
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let exited = self
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some());
            if exited {
                self.child = None;
                return false;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Starts the server on its port, which must be free (a restart keeps its port).
    fn spawn(&mut self) {
        assert!(
            self.try_spawn(),
            "redis-server exited at start on port {} (taken?)",
            self.port
        );
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server without warning (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills and starts it again on the same port and directory (the AOF survives).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A local Redis Cluster of three masters on loopback (no replicas), each a
/// [`RedisServer`] with `--cluster-enabled yes`, joined with `redis-cli --cluster
/// create`. Killed on drop.
pub struct RedisCluster {
    /// The masters.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three masters and waits until the cluster reports `cluster_state:ok`.
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                // The bus port defaults to port + 10000, which is past 65535 for a
                // high ephemeral port: name a free one.
                let bus = free_port().to_string();
                RedisServer::start_with(
                    false,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-port",
                        &bus,
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                    ],
                )
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        require_command("redis-cli", "redis-tools");
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli is installed (Debian package redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let start = Instant::now();
        for n in &nodes {
            loop {
                let info = Command::new("redis-cli")
                    .args(["-p", &n.port.to_string(), "cluster", "info"])
                    .output()
                    .expect("redis-cli runs");
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "the cluster did not come up"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        RedisCluster { nodes }
    }

    /// `redis+cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,127.0.0.1:<p3>`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }
}

/// A plain connection to the Redis or Redis Cluster (`redis+cluster://...`) at `url`, as
/// another client would open, for tests that inspect keys.
pub async fn connection(url: &str) -> Connection {
    match crate::connection::cluster_nodes(url) {
        Some(nodes) => Connection::Cluster(
            redis::cluster::ClusterClient::new(nodes)
                .expect("cluster URL")
                .get_async_connection()
                .await
                .expect("cluster reachable"),
        ),
        None => Connection::Single(
            redis::Client::open(url)
                .expect("Redis URL")
                .get_connection_manager()
                .await
                .expect("Redis reachable"),
        ),
    }
}
