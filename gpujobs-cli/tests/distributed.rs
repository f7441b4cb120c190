//! The distributed commands as processes against a private redis-server: one scheduler
//! and several workers, killed with SIGKILL mid-run, drained with SIGTERM; malformed
//! submissions; dead-letter and retry; cancellation; Redis unreachable. The SIGKILL and
//! malformed-entry runs also go against a local three-master Redis Cluster with three
//! partitions.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::{f32_npy, read_f32_npy};
use gpujobs_queue::keys::{Keys, partition_of};
use gpujobs_queue::testkit::{Connection, RedisCluster, RedisServer, connection};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gpujobs"))
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(url: &str, args: &[&str]) -> Proc {
    spawn_p(url, 1, args)
}

/// Starts a command on a namespace spread over `parts` partitions.
fn spawn_p(url: &str, parts: u32, args: &[&str]) -> Proc {
    let child = bin()
        .args(args)
        .env("GPUJOBS_REDIS_URL", url)
        .env("GPUJOBS_PARTITIONS", parts.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proc(child)
}

fn run(url: &str, args: &[&str]) -> Output {
    run_p(url, 1, args)
}

fn run_p(url: &str, parts: u32, args: &[&str]) -> Output {
    bin()
        .args(args)
        .env("GPUJOBS_REDIS_URL", url)
        .env("GPUJOBS_PARTITIONS", parts.to_string())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn sigterm(p: &Proc) {
    let _ = Command::new("kill")
        .args(["-TERM", &p.0.id().to_string()])
        .status();
}

fn wait_exit(p: &mut Proc, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = p.0.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

async fn redis(url: &str) -> Connection {
    connection(url).await
}

/// A field of many job records, one pipeline per partition (a pipeline stays in one
/// Redis Cluster slot).
async fn states_p(
    conn: &mut Connection,
    parts: u32,
    ids: &[String],
    field: &str,
) -> Vec<Option<String>> {
    let mut out = vec![None; ids.len()];
    for p in 0..parts {
        let keys = Keys::new("gpujobs", p);
        let idx: Vec<usize> = (0..ids.len())
            .filter(|&i| partition_of(&ids[i], parts) == p)
            .collect();
        if idx.is_empty() {
            continue;
        }
        let mut pipe = redis::pipe();
        for &i in &idx {
            pipe.cmd("HGET")
                .arg(format!("{}:job:{}", keys.prefix(), ids[i]))
                .arg(field);
        }
        let got: Vec<Option<String>> = pipe.query_async(conn).await.unwrap();
        for (i, v) in idx.into_iter().zip(got) {
            out[i] = v;
        }
    }
    out
}

async fn states(conn: &mut Connection, ids: &[String], field: &str) -> Vec<Option<String>> {
    states_p(conn, 1, ids, field).await
}

fn submit_ids(url: &str, args: &[&str]) -> Vec<String> {
    submit_ids_p(url, 1, args)
}

fn submit_ids_p(url: &str, parts: u32, args: &[&str]) -> Vec<String> {
    let o = run_p(url, parts, args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    text(&o.stdout).lines().map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_jobs_survive_workers_killed_mid_run() {
    let server = RedisServer::start(false);
    workers_killed_mid_run(&server.url(), 1, 10_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_workers_killed_mid_run_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    workers_killed_mid_run(&cluster.url(), 3, 5_000).await;
}

async fn workers_killed_mid_run(url: &str, parts: u32, count: usize) {
    let url = url.to_string();
    let _sched = spawn_p(&url, parts, &["scheduler"]);
    let worker = |_: usize| {
        spawn_p(
            &url,
            parts,
            &["worker", "--concurrency", "8", "--lease", "1"],
        )
    };
    let mut workers: Vec<Proc> = (0..3).map(worker).collect();
    let ids = submit_ids_p(
        &url,
        parts,
        &[
            "submit",
            "vector-add",
            "--len",
            "4",
            "--count",
            &count.to_string(),
        ],
    );
    assert_eq!(ids.len(), count);
    let mut conn = redis(&url).await;
    // Kill a worker with SIGKILL three times while the jobs run, starting a new one each time.
    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let victim = round % workers.len();
        workers[victim].0.kill().unwrap();
        workers[victim].0.wait().unwrap();
        workers[victim] = worker(victim);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = states_p(&mut conn, parts, &ids, "state").await;
        let done = s
            .iter()
            .filter(|s| s.as_deref() == Some("succeeded"))
            .count();
        if done == ids.len() {
            break;
        }
        let other: Vec<_> = s
            .iter()
            .filter(|s| {
                !matches!(
                    s.as_deref(),
                    Some("succeeded" | "queued" | "placed" | "running")
                )
            })
            .collect();
        assert!(other.is_empty(), "jobs ended badly: {other:?}");
        assert!(
            Instant::now() < deadline,
            "only {done} of {} succeeded",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Exactly one recorded completion per job, and nothing left in any lane.
    let completions = states_p(&mut conn, parts, &ids, "completions").await;
    assert!(
        completions.iter().all(|c| c.as_deref() == Some("1")),
        "a job completed twice"
    );
    for stream in (0..parts)
        .flat_map(|p| Keys::new("gpujobs", p).lane_streams(gpujobs_core::DeviceClass::Cpu))
    {
        let len: u64 = redis::cmd("XLEN")
            .arg(&stream)
            .query_async(&mut conn)
            .await
            .unwrap();
        let pending: redis::Value = redis::cmd("XPENDING")
            .arg(&stream)
            .arg("workers")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(len, 0, "{stream} still holds entries");
        if let redis::Value::Array(v) = pending {
            assert_eq!(
                v.first(),
                Some(&redis::Value::Int(0)),
                "{stream} has pending entries"
            );
        }
    }
    for p in 0..parts {
        let submit_len: u64 = redis::cmd("XLEN")
            .arg(Keys::new("gpujobs", p).submit())
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(submit_len, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_entries_are_dead_lettered_while_good_jobs_run() {
    let server = RedisServer::start(false);
    malformed_entries(&server.url(), 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_entries_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    malformed_entries(&cluster.url(), 3).await;
}

async fn malformed_entries(url: &str, parts: u32) {
    let url = url.to_string();
    let _sched = spawn_p(&url, parts, &["scheduler"]);
    let _worker = spawn_p(&url, parts, &["worker"]);
    let mut conn = redis(&url).await;
    let garbage: Vec<Vec<u8>> = vec![
        b"not json at all".to_vec(),
        br#"{"kind":"warp-drive","payload":{}}"#.to_vec(),
        br#"{"kind":"matmul","payload":{"a":{"shape":[2,3],"synthetic":{"seed":1}},"b":{"shape":[4,2],"synthetic":{"seed":2}}}}"#.to_vec(),
        br#"{"kind":"matmul","payload":{"a":{"shape":[1000000,1000000],"synthetic":{"seed":1}},"b":{"shape":[1000000,1000000],"synthetic":{"seed":2}}}}"#.to_vec(),
        vec![0xff, 0x00, 0x13, 0x37, 0xde, 0xad, 0xbe, 0xef],
    ];
    for g in &garbage {
        let _: String = redis::cmd("XADD")
            .arg("{gpujobs}:submit")
            .arg("*")
            .arg("job")
            .arg(g.as_slice())
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let o = run_p(
        &url,
        parts,
        &[
            "submit", "matmul", "--m", "20", "--k", "30", "--n", "10", "--wait", "--json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = run_p(
            &url,
            parts,
            &["dead-letter", "list", "--json", "--limit", "50"],
        );
        let out = text(&o.stdout);
        let expected = [
            "not a valid job envelope",
            "unknown job kind `warp-drive`",
            "inner dimensions",
            "memory",
            "not UTF-8",
        ];
        if expected.iter().all(|e| out.contains(e)) {
            break;
        }
        assert!(Instant::now() < deadline, "dead letters so far:\n{out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `submit --file` keeps the ids in the file: `status <id>` finds the job, and submitting
/// the file again (a client retrying after a timeout) runs each job once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_submitted_twice_runs_each_job_once() {
    let server = RedisServer::start(false);
    let url = server.url();
    let _sched = spawn(&url, &["scheduler"]);
    let _worker = spawn(&url, &["worker"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jobs.jsonl");
    std::fs::write(
        &file,
        concat!(
            r#"{"id":"file-job-1","kind":"vector-add","payload":{"a":{"shape":[2],"data":[1,2]},"b":{"shape":[2],"data":[3,4]}}}"#,
            "\n",
            r#"{"id":"file-job-2","kind":"vector-add","payload":{"a":{"shape":[1],"data":[5]},"b":{"shape":[1],"data":[6]}}}"#,
            "\n"
        ),
    )
    .unwrap();
    let path = file.to_str().unwrap();
    for _ in 0..2 {
        let o = run(&url, &["submit", "--file", path, "--wait"]);
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let o = run(&url, &["status", "file-job-1"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("succeeded"), "{}", text(&o.stdout));
    let mut conn = redis(&url).await;
    let ids = vec!["file-job-1".to_string(), "file-job-2".to_string()];
    let completions = states(&mut conn, &ids, "completions").await;
    assert_eq!(completions, vec![Some("1".into()), Some("1".into())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_after_max_attempts_and_retry_reruns_it() {
    let server = RedisServer::start(false);
    let url = server.url();
    let _sched = spawn(&url, &["scheduler"]);
    let _worker = spawn(&url, &["worker"]);
    // Every attempt times out: a temporary error, retried until attempts run out.
    let ids = submit_ids(
        &url,
        &[
            "submit",
            "matmul",
            "--m",
            "1200",
            "--max-attempts",
            "2",
            "--job-timeout",
            "0.001",
        ],
    );
    let id = &ids[0];
    let mut conn = redis(&url).await;
    let wait_state = |want: &'static str| {
        let url = url.clone();
        let id = id.clone();
        async move {
            let mut conn = redis(&url).await;
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let s = states(&mut conn, std::slice::from_ref(&id), "state").await;
                if s[0].as_deref() == Some(want) {
                    return;
                }
                assert!(Instant::now() < deadline, "{id} is {:?}, not {want}", s[0]);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    wait_state("dead").await;
    let o = run(&url, &["dead-letter", "list"]);
    let listing = text(&o.stdout);
    assert!(
        listing.contains(id.as_str()) && listing.contains("timed out"),
        "{listing}"
    );
    let status = run(&url, &["status", id, "--json"]);
    let v: serde_json::Value = serde_json::from_str(text(&status.stdout).trim()).unwrap();
    assert_eq!(
        (v["status"].as_str(), v["attempts"].as_u64()),
        (Some("dead"), Some(2))
    );
    let o = run(&url, &["dead-letter", "retry", id]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let queued: u64 = redis::cmd("XLEN")
        .arg("{gpujobs}:dead")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(queued, 0, "retried job left the dead-letter stream");
    // It runs again (and, still timing out, ends dead again after two more attempts).
    wait_state("dead").await;
    let again = text(&run(&url, &["dead-letter", "list"]).stdout);
    assert!(again.contains(id.as_str()), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_graceful_drain() {
    let server = RedisServer::start(false);
    let url = server.url();
    let _sched = spawn(&url, &["scheduler"]);
    let mut first = spawn(
        &url,
        &[
            "worker",
            "--concurrency",
            "2",
            "--grace",
            "0.2",
            "--lease",
            "2",
        ],
    );
    // Long jobs: an MLP for many epochs checks cancellation between minibatches.
    let long = [
        "submit",
        "mlp-train",
        "--samples",
        "2000",
        "--features",
        "32",
        "--hidden",
        "64",
        "--epochs",
        "100000",
    ];
    let ids = submit_ids(&url, &long);
    let victim = &ids[0];
    let mut conn = redis(&url).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while states(&mut conn, std::slice::from_ref(victim), "state").await[0].as_deref()
        != Some("running")
    {
        assert!(Instant::now() < deadline, "job never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let o = run(&url, &["cancel", victim]);
    assert!(
        text(&o.stdout).contains("asked to stop"),
        "{}",
        text(&o.stdout)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while states(&mut conn, std::slice::from_ref(victim), "state").await[0].as_deref()
        != Some("cancelled")
    {
        assert!(Instant::now() < deadline, "running job was not cancelled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A queued job cancelled before any worker takes it never runs.
    let queued = submit_ids(
        &url,
        &["submit", "vector-add", "--len", "10", "--device", "gpu"],
    );
    let o = run(&url, &["cancel", &queued[0]]);
    assert!(
        text(&o.stdout).contains("cancelled before it ran"),
        "{}",
        text(&o.stdout)
    );
    // Drain: two long jobs running, SIGTERM, the worker gives them back and exits 0.
    let more = [submit_ids(&url, &long), submit_ids(&url, &long)].concat();
    let deadline = Instant::now() + Duration::from_secs(20);
    while states(&mut conn, &more, "state")
        .await
        .iter()
        .any(|s| s.as_deref() != Some("running"))
    {
        assert!(Instant::now() < deadline, "jobs never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sigterm(&first);
    assert_eq!(
        wait_exit(&mut first, Duration::from_secs(10)),
        Some(0),
        "worker did not drain and exit 0"
    );
    let s = states(&mut conn, &more, "state").await;
    let attempts = states(&mut conn, &more, "attempts").await;
    assert!(
        s.iter().all(|s| s.as_deref() == Some("placed")),
        "released jobs are back on the lane: {s:?}"
    );
    assert!(
        attempts.iter().all(|a| a.as_deref() == Some("0")),
        "a release costs no attempt: {attempts:?}"
    );
    for id in &more {
        run(&url, &["cancel", id]);
    }
}

#[test]
fn unreachable_redis_is_reported_not_panicked_on() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let o = run(&url, &["submit", "vector-add", "--len", "10"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("cannot reach Redis") && err.contains(&port.to_string()),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // A worker keeps retrying with backoff, and stops cleanly on SIGTERM.
    let mut w = Proc(
        bin()
            .args(["worker"])
            .env("GPUJOBS_REDIS_URL", &url)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        w.0.try_wait().unwrap().is_none(),
        "worker gave up instead of retrying"
    );
    sigterm(&w);
    assert_eq!(wait_exit(&mut w, Duration::from_secs(5)), Some(0));
    let mut log = String::new();
    std::io::Read::read_to_string(w.0.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(log.contains("Redis unavailable; retrying"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

fn try_http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    // A connect to a port nobody listens on yet can succeed against itself (a TCP
    // self-connect on an ephemeral port); only an HTTP answer counts.
    out.starts_with("HTTP/1.1").then_some(out)
}

fn http_get(port: u16, path: &str) -> String {
    try_http_get(port, path).unwrap_or_else(|| panic!("no HTTP answer on port {port}"))
}

#[test]
fn readiness_says_why_while_redis_refuses_the_credentials() {
    let server = RedisServer::start_with(false, &["--requirepass", "right"]);
    let url = server.url().replace("redis://", "redis://:wrong@");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Still within the grace of refused credentials: alive, not ready, and why.
    let _worker = spawn(
        &url,
        &["worker", "--metrics-addr", &format!("127.0.0.1:{port}")],
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = None;
    loop {
        last = try_http_get(port, "/readyz").or(last);
        if let Some(r) = &last
            && r.contains("503")
            && r.contains("authentication failed")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "readiness never said why: {last:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(try_http_get(port, "/healthz").is_some_and(|r| r.contains("200 OK")));
}

/// Every command that reports something prints JSON on stdout with `--json`, and
/// nothing else there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reporting_command_prints_pure_json() {
    let server = RedisServer::start(false);
    let url = server.url();
    let _sched = spawn(&url, &["scheduler"]);
    let _worker = spawn(&url, &["worker"]);
    let json = |args: &[&str]| -> serde_json::Value {
        let o = run(&url, args);
        let out = text(&o.stdout);
        serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}{}", text(&o.stderr)))
    };
    let ids = json(&[
        "submit",
        "vector-add",
        "--len",
        "8",
        "--count",
        "2",
        "--json",
    ]);
    let ids: Vec<String> = ids["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    let one = json(&["submit", "vector-add", "--len", "8", "--wait", "--json"]);
    assert_eq!(one["status"], "succeeded", "{one}");
    let tally = json(&["wait", &ids[0], &ids[1], "--json"]);
    assert_eq!(tally["succeeded"], 2, "{tally}");
    assert_eq!(json(&["status", &ids[0], "--json"])["status"], "succeeded");
    let cancel = json(&["cancel", &ids[0], "--json"]);
    assert_eq!(
        (cancel["outcome"].as_str(), cancel["state"].as_str()),
        (Some("already-finished"), Some("succeeded")),
        "{cancel}"
    );
    let watch = json(&["watch", "--once", "--json"]);
    assert!(
        watch["lanes"].is_array() && watch["workers"].is_array(),
        "{watch}"
    );
    let doctor = json(&["doctor", "--redis-only", "--json"]);
    assert!(
        doctor["checks"].as_array().is_some_and(|c| !c.is_empty()),
        "{doctor}"
    );
    // A graph: its ids go into the one object, no `<name> <id>` lines.
    let dir = tempfile::tempdir().unwrap();
    let graph = dir.path().join("g.json");
    std::fs::write(
        &graph,
        r#"{"jobs": [{"name": "a", "kind": "vector-add", "payload": {"a": {"shape": [2], "data": [1, 2]}, "b": {"shape": [2], "data": [3, 4]}}}]}"#,
    )
    .unwrap();
    let g = json(&[
        "submit",
        "--graph",
        graph.to_str().unwrap(),
        "--wait",
        "--json",
    ]);
    assert!(g["jobs"]["a"].is_string() && g["succeeded"] == 1, "{g}");
    // Dead letters: a job that fails permanently, retried by id.
    let bad = r#"{"id":"json-dead","kind":"vector-add","payload":{"a":{"shape":[2],"data":[1,2]},"b":{"shape":[3],"data":[1,2,3]}}}"#;
    let mut conn = redis(&url).await;
    let _: String = redis::cmd("XADD")
        .arg("{gpujobs}:submit")
        .arg("*")
        .arg("job")
        .arg(bad)
        .query_async(&mut conn)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = run(&url, &["dead-letter", "list", "--json"]);
        if text(&o.stdout).contains("json-dead") {
            for line in text(&o.stdout).lines() {
                let _: serde_json::Value = serde_json::from_str(line).unwrap();
            }
            break;
        }
        assert!(Instant::now() < deadline, "never dead-lettered");
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = run(&url, &["dead-letter", "retry", "json-dead", "--json"]);
    if o.status.success() {
        let v: serde_json::Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
        assert_eq!(v["retried"], true);
    } else {
        // A job refused at the door (invalid) may not be retryable: said as an error.
        assert!(text(&o.stdout).is_empty(), "{}", text(&o.stdout));
    }
}

/// Jobs sent to the brace-less submit key of the old layout never run: `doctor` says
/// so, with the right key.
#[test]
fn doctor_reports_jobs_sent_to_the_old_submit_key() {
    let server = RedisServer::start(false);
    let url = server.url();
    let o = std::process::Command::new("redis-cli")
        .args(["-u", &url, "XADD", "gpujobs:submit", "*", "job", "{}"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let o = run(&url, &["doctor", "--redis-only"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("1 entries wait on `gpujobs:submit`, a key nothing reads"),
        "{out}"
    );
    assert!(out.contains("submit to `{gpujobs}:submit`"), "{out}");
}

/// A command a person types is told at once that the password is wrong (exit 2, one
/// line), without the 30 s grace a daemon gets for a password rotation.
#[test]
fn interactive_commands_fail_at_once_on_refused_credentials() {
    let server = RedisServer::start_with(false, &["--requirepass", "right"]);
    let url = server.url().replace("redis://", "redis://:wrong@");
    for args in [
        &["status", "01J00000000000000000000000"][..],
        &["submit", "vector-add", "--len", "4"],
        &["wait", "01J00000000000000000000000"],
    ] {
        let start = Instant::now();
        let o = run(&url, args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{args:?} took {:?}",
            start.elapsed()
        );
        assert!(
            err.contains("authentication failed") && !err.contains("wrong"),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_metrics_count_the_jobs_done() {
    let server = RedisServer::start(false);
    let url = server.url();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sched_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _sched = spawn(
        &url,
        &[
            "scheduler",
            "--metrics-addr",
            &format!("127.0.0.1:{sched_port}"),
        ],
    );
    let _worker = spawn(
        &url,
        &[
            "worker",
            "--concurrency",
            "4",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while try_http_get(port, "/healthz").is_none() || try_http_get(sched_port, "/healthz").is_none()
    {
        assert!(Instant::now() < deadline, "metrics endpoints never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(http_get(port, "/healthz").ends_with("ok\n"));
    let before = http_get(port, "/metrics");
    assert!(!before.contains(r#"outcome="succeeded"} 20"#), "{before}");
    let o = run(
        &url,
        &[
            "submit",
            "vector-add",
            "--len",
            "100",
            "--count",
            "20",
            "--wait",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let metrics = http_get(port, "/metrics");
    assert!(
        metrics.contains("200 OK") && metrics.contains("application/openmetrics-text"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"gpujobs_jobs_total{kind="vector-add",device="cpu",outcome="succeeded"} 20"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"gpujobs_job_duration_seconds_count{kind="vector-add",device="cpu",stage="compute"} 20"#), "{metrics}");
    // Gauges refresh from Redis every few seconds; the worker's own heartbeat shows up.
    let deadline = Instant::now() + Duration::from_secs(12);
    loop {
        let m = http_get(port, "/metrics");
        if m.contains("gpujobs_worker_heartbeat_age_seconds{")
            && m.contains(r#"gpujobs_lane_ready{lane="cpu"} 0"#)
        {
            break;
        }
        assert!(Instant::now() < deadline, "gauges never refreshed:\n{m}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let sched = http_get(sched_port, "/metrics");
    assert!(
        sched.contains(r#"gpujobs_placed_total{lane="cpu"} 20"#),
        "{sched}"
    );
    assert!(http_get(port, "/nope").contains("404"));

    // Liveness and readiness, through the endpoint and the healthcheck command (a
    // wildcard address is asked on loopback).
    assert!(http_get(port, "/readyz").ends_with("ready\n"));
    assert!(http_get(port, "/metrics").contains("gpujobs_redis_up 1"));
    let check = |extra: &[&str]| {
        let addr = format!("0.0.0.0:{port}");
        let mut args = vec!["healthcheck", "--addr", &addr];
        args.extend_from_slice(extra);
        run(&url, &args)
    };
    assert!(check(&[]).status.success());
    assert!(check(&["--ready"]).status.success());
    // Redis goes away: not ready within a refresh or two, still alive.
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !http_get(port, "/readyz").contains("503") {
        assert!(Instant::now() < deadline, "still ready without Redis");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let not_ready = check(&["--ready"]);
    assert_eq!(not_ready.status.code(), Some(1));
    assert!(
        text(&not_ready.stderr).contains("Redis has not answered"),
        "{}",
        text(&not_ready.stderr)
    );
    assert!(check(&[]).status.success());
    assert!(http_get(port, "/metrics").contains("gpujobs_redis_up 0"));
    // Nothing listens: the healthcheck fails instead of hanging.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = run(
        &url,
        &["healthcheck", "--addr", &format!("127.0.0.1:{free}")],
    );
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn doctor_reports_persistence_workers_and_unreachable_redis() {
    // Without AOF: a warning with its fix, exit 0, and no live workers yet.
    let server = RedisServer::start(false);
    let url = server.url();
    let o = run(&url, &["doctor", "--redis-only"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("ok       Redis at"), "{out}");
    assert!(out.contains("warning  persistence is off"), "{out}");
    assert!(out.contains("fix: set appendonly yes"), "{out}");
    assert!(out.contains("warning  no live workers"), "{out}");
    assert!(
        out.contains("warning  hash-max-listpack-value 64: job records are stored as hash tables"),
        "{out}"
    );
    assert!(
        out.contains("fix: CONFIG SET hash-max-listpack-value 1024"),
        "{out}"
    );
    // A running worker shows up in the next report.
    let _w = spawn(&url, &["worker", "--concurrency", "1"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    while Instant::now() < deadline {
        seen = text(&run(&url, &["doctor", "--redis-only"]).stdout);
        if seen.contains("1 live workers (1 cpu, 0 gpu)") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(seen.contains("1 live workers (1 cpu, 0 gpu)"), "{seen}");

    // With AOF the persistence line is ok; with compact records the memory line.
    let durable = RedisServer::start(true);
    let set = std::process::Command::new("redis-cli")
        .args(["-p", &durable.port.to_string()])
        .args(["config", "set", "hash-max-listpack-value", "1024"])
        .output()
        .unwrap();
    assert!(set.status.success());
    let out = text(&run(&durable.url(), &["doctor", "--redis-only"]).stdout);
    assert!(
        out.contains("ok       persistence: append-only file on"),
        "{out}"
    );
    assert!(
        out.contains(
            "ok       hash-max-listpack-value 1024: job records use Redis's compact encoding"
        ),
        "{out}"
    );

    // Unreachable Redis is an error with a fix and exit code 1.
    drop(server);
    let o = run(&url, &["doctor", "--redis-only"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("error    Redis at"), "{out}");
    assert!(out.contains("fix: start Redis"), "{out}");
}

#[test]
fn wait_reports_a_mixed_batch_by_kind() {
    let server = RedisServer::start(false);
    let url = server.url();
    let _sched = spawn(&url, &["scheduler"]);
    let _worker = spawn(&url, &["worker", "--concurrency", "2"]);
    let mut ids = submit_ids(
        &url,
        &["submit", "vector-add", "--len", "1000", "--count", "5"],
    );
    ids.extend(submit_ids(
        &url,
        &[
            "submit", "matmul", "--m", "32", "--k", "16", "--n", "8", "--count", "2",
        ],
    ));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ids");
    std::fs::write(&file, ids.join("\n")).unwrap();
    let o = run(
        &url,
        &[
            "wait",
            "--from",
            file.to_str().unwrap(),
            "--by-kind",
            "--timeout",
            "60",
        ],
    );
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    let row = |kind: &str| {
        out.lines()
            .find(|l| l.starts_with(kind))
            .unwrap_or_else(|| panic!("no {kind} row in\n{out}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(&row("vector-add")[1..4], ["cpu", "5", "5"], "{out}");
    assert_eq!(&row("matmul")[1..4], ["cpu", "2", "2"], "{out}");
    assert!(out.contains("first submitted to last finished"), "{out}");
    assert!(out.contains("7 jobs: 7 succeeded, 0 failed"), "{out}");
    // Ids on the command line too; an unknown one is reported, not waited on forever.
    let o = run(&url, &["wait", &ids[0], "no-such-job", "--timeout", "10"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stdout).contains("2 jobs: 1 succeeded"),
        "{}",
        text(&o.stdout)
    );
    assert!(text(&o.stderr).contains("1 of 2 jobs did not succeed"));

    // `submit --out --wait` saves the output of the remote job.
    let png = dir.path().join("edges.png");
    let o = run(
        &url,
        &[
            "submit",
            "image-filter",
            "--op",
            "sobel",
            "--width",
            "64",
            "--height",
            "48",
            "--out",
            png.to_str().unwrap(),
            "--wait",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let img = image::open(&png).unwrap();
    assert_eq!((img.width(), img.height()), (64, 48));
    // Without --wait there is nothing to save: refused before submitting.
    let o = run(
        &url,
        &[
            "submit",
            "vector-add",
            "--len",
            "8",
            "--out",
            png.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("use it with --wait"));
}

/// `wait --out-dir` writes each succeeded job's outputs as `<id>.<output>.npy`, the
/// values the worker computed.
#[test]
fn wait_writes_the_outputs_of_finished_jobs() {
    let server = RedisServer::start(false);
    let url = server.url();
    let _sched = spawn(&url, &["scheduler"]);
    let _worker = spawn(&url, &["worker"]);
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.npy"), dir.path().join("b.npy"));
    let av: Vec<f32> = (0..300).map(|i| i as f32 * 0.5).collect();
    let bv: Vec<f32> = (0..300).map(|i| 1000.0 - i as f32).collect();
    f32_npy(&a, &[av.len()], &av);
    f32_npy(&b, &[bv.len()], &bv);
    let ids = submit_ids(
        &url,
        &[
            "submit",
            "vector-add",
            "--a",
            a.to_str().unwrap(),
            "--b",
            b.to_str().unwrap(),
            "--count",
            "2",
        ],
    );
    let out = dir.path().join("out");
    let mut args = vec![
        "wait",
        "--out-dir",
        out.to_str().unwrap(),
        "--timeout",
        "60",
    ];
    args.extend(ids.iter().map(String::as_str));
    let o = run(&url, &args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let want: Vec<f32> = av.iter().zip(&bv).map(|(x, y)| x + y).collect();
    for id in &ids {
        let file = out.join(format!("{id}.c.npy"));
        assert!(
            text(&o.stderr).contains(file.to_str().unwrap()),
            "{}",
            text(&o.stderr)
        );
        assert_eq!(read_f32_npy(&file), want, "{id}");
    }
}

/// A multi-job submit refused part-way (here: one job's entry over the size limit)
/// prints the ids it got accepted and says how many were not; every printed id is a
/// job Redis knows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_refused_part_way_prints_the_ids_already_accepted() {
    let server = RedisServer::start(false);
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let small = |id: &str| {
        format!(
            r#"{{"id":"{id}","kind":"vector-add","payload":{{"a":{{"shape":[2],"data":[1,2]}},"b":{{"shape":[2],"data":[3,4]}}}}}}"#
        )
    };
    let data: Vec<String> = (0..400).map(|i| format!("{i}.25")).collect();
    let big = format!(
        r#"{{"id":"too-big","kind":"vector-add","payload":{{"a":{{"shape":[400],"data":[{0}]}},"b":{{"shape":[400],"data":[{0}]}}}}}}"#,
        data.join(",")
    );
    let file = dir.path().join("jobs.jsonl");
    std::fs::write(&file, [small("first"), big, small("third")].join("\n")).unwrap();
    let o = run(
        &url,
        &[
            "submit",
            "--file",
            file.to_str().unwrap(),
            "--max-entry-bytes",
            "2048",
        ],
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let mut printed: Vec<String> = text(&o.stdout).lines().map(str::to_string).collect();
    printed.sort();
    assert_eq!(printed, ["first", "third"], "{err}");
    assert!(
        err.contains("2 of 3 jobs submitted (their ids are printed above); 1 not:")
            && err.contains("submit entry"),
        "{err}"
    );
    let mut conn = redis(&url).await;
    let ids = vec![
        "first".to_string(),
        "too-big".to_string(),
        "third".to_string(),
    ];
    let states = states(&mut conn, &ids, "state").await;
    assert!(
        states[0].is_some() && states[1].is_none() && states[2].is_some(),
        "{states:?}"
    );
}

/// `--log-format json`: every line a worker and a scheduler write to stderr, from start
/// to a SIGTERM drain, is a JSON object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_json_on_every_line() {
    let server = RedisServer::start(false);
    let url = server.url();
    for cmd in ["worker", "scheduler"] {
        let child = bin()
            .args(["--log-format", "json", cmd])
            .env("GPUJOBS_REDIS_URL", &url)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut p = Proc(child);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        sigterm(&p);
        assert_eq!(wait_exit(&mut p, Duration::from_secs(20)), Some(0), "{cmd}");
        let mut err = String::new();
        std::io::Read::read_to_string(p.0.stderr.as_mut().unwrap(), &mut err).unwrap();
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(lines.len() >= 2, "{cmd} logged too little:\n{err}");
        for line in lines {
            assert!(
                serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v.is_object()),
                "{cmd}: not a JSON line: {line}"
            );
        }
    }
}
