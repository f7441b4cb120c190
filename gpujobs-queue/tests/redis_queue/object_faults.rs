//! Object storage under faults (feature `objects`), against a real S3 API (moto's
//! server) behind a loopback proxy that can stop answering, as a stopped store process
//! or a dead network path looks to a client: a store that hangs holds up only the jobs
//! that need it, every wait has its bound, a store's "never" fails a job at once, and
//! `file://` links cannot lead out of the allowed folders.

use super::objects::{Moto, file_url, finished_within, le_bytes, sum};
use super::{config, query, start_cluster_with};
use gpujobs_core::kinds::VectorAdd;
use gpujobs_core::queue::{AdminQueue, SubmitQueue};
use gpujobs_core::{JobEnvelope, JobId, JobState, Queue, ShutdownTrigger, Tensor};
use gpujobs_queue::testkit::RedisServer;
use gpujobs_queue::{RedisConfig, RedisQueue};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A loopback TCP proxy to `127.0.0.1:<target>` that can be frozen: frozen, it still
/// accepts connections and reads what clients send, but forwards nothing either way
/// until thawed.
struct FreezingProxy {
    port: u16,
    frozen: Arc<AtomicBool>,
}

impl FreezingProxy {
    fn start(target: u16) -> FreezingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let gate = frozen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    &gate,
                );
                pump(server, client, &gate);
            }
        });
        FreezingProxy { port, frozen }
    }

    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    fn thaw(&self) {
        self.frozen.store(false, Ordering::SeqCst);
    }
}

/// Copies `from` to `to`, holding every chunk while the gate is frozen.
fn pump(mut from: TcpStream, mut to: TcpStream, gate: &Arc<AtomicBool>) {
    let gate = gate.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            while gate.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

/// A scheduler and one CPU worker (2 s leases, heartbeats every 300 ms) with
/// `input_wait`; its worker id.
fn start(q: Arc<dyn Queue>, input_wait: Duration) -> (ShutdownTrigger, String) {
    let mut id = String::new();
    let stop = start_cluster_with(q, |wc| {
        wc.concurrency = 2;
        wc.heartbeat = Duration::from_millis(300);
        wc.input_wait = input_wait;
        id = wc.id.clone();
    });
    (stop, id)
}

async fn state_of(q: &RedisQueue, id: &JobId) -> Option<(JobState, u32)> {
    q.status(id).await.unwrap().map(|r| (r.state, r.attempts))
}

/// moto with bucket `gpujobs` holding `data/a.f32` (four values), reached through a
/// freezing proxy; a queue configured for it, allowed to read `s3://gpujobs/data`.
async fn frozen_setup(server: &RedisServer, ns: &str) -> (Moto, FreezingProxy, RedisConfig) {
    let moto = Moto::start();
    assert_eq!(moto.request("PUT", "/gpujobs", b""), 200, "create bucket");
    let a = le_bytes(&[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(moto.request("PUT", "/gpujobs/data/a.f32", &a), 200);
    let proxy = FreezingProxy::start(moto.port());
    let mut cfg = config(server, ns);
    cfg.objects.allow = vec!["s3://gpujobs/data".into()];
    moto.configure_at(&mut cfg, proxy.port);
    (moto, proxy, cfg)
}

fn reads_the_store() -> JobEnvelope {
    JobEnvelope::new(VectorAdd {
        a: Tensor::from_url(vec![4], "s3://gpujobs/data/a.f32"),
        b: Tensor::from_values(vec![4], vec![10.0; 4]).unwrap(),
    })
    .unwrap()
}

fn needs_no_object(i: usize) -> JobEnvelope {
    JobEnvelope::new(VectorAdd {
        a: Tensor::from_values(vec![1000], vec![i as f32; 1000]).unwrap(),
        b: Tensor::from_values(vec![1000], vec![1.0; 1000]).unwrap(),
    })
    .unwrap()
}

/// While the store hangs, a job that reads from it waits with its lease renewed, and
/// the worker goes on: jobs that need no object complete, heartbeats keep coming.
/// Thawed, the waiting job completes on its first attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_store_holds_only_the_jobs_that_need_it() {
    let server = RedisServer::start(false);
    let (_moto, proxy, mut cfg) = frozen_setup(&server, "frozen").await;
    // Longer than the test's freeze: the job waits on one request all along.
    cfg.objects.request_timeout = Duration::from_secs(30);
    let q = Arc::new(RedisQueue::connect(cfg).await.unwrap());
    let (_stop, worker) = start(q.clone(), Duration::from_secs(60));
    proxy.freeze();
    let slow = q.submit(reads_the_store()).await.unwrap();
    let start = Instant::now();
    while state_of(&q, &slow).await.map(|s| s.0) != Some(JobState::Running) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the job never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let running_since = Instant::now();
    let mut quick = Vec::new();
    for i in 0..20 {
        quick.push(q.submit(needs_no_object(i)).await.unwrap());
    }
    for id in &quick {
        let rec = finished_within(&q, id, Duration::from_secs(10)).await;
        assert_eq!(rec.state, JobState::Succeeded, "{rec:?}");
    }
    // Three lease lengths and more with the store frozen.
    tokio::time::sleep(Duration::from_secs(7).saturating_sub(running_since.elapsed())).await;
    let workers = q.workers().await.unwrap();
    let me = workers
        .iter()
        .find(|w| w.id == worker)
        .expect("the worker is registered");
    let age = gpujobs_core::model::envelope::now_ms().saturating_sub(me.last_seen_ms);
    assert!(age < 1500, "heartbeat {age} ms old while the store hangs");
    assert_eq!(
        state_of(&q, &slow).await,
        Some((JobState::Running, 1)),
        "still its first attempt, its lease renewed"
    );
    proxy.thaw();
    let rec = finished_within(&q, &slow, Duration::from_secs(20)).await;
    assert_eq!(sum(&rec), vec![11.0, 12.0, 13.0, 14.0]);
    assert_eq!(rec.attempts, 1, "never re-run");
}

/// A job whose inputs do not come within the worker's input wait is released, without
/// costing an attempt, and runs once the store answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_wait_past_its_bound_releases_the_job_without_an_attempt() {
    let server = RedisServer::start(false);
    let (_moto, proxy, mut cfg) = frozen_setup(&server, "released").await;
    cfg.objects.request_timeout = Duration::from_secs(30);
    let q = Arc::new(RedisQueue::connect(cfg).await.unwrap());
    let (_stop, _) = start(q.clone(), Duration::from_millis(700));
    proxy.freeze();
    let slow = q
        .submit(reads_the_store().with_max_attempts(2))
        .await
        .unwrap();
    // Several input waits: with attempts counted, two would dead-letter the job.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (state, attempts) = state_of(&q, &slow).await.unwrap();
    assert!(
        !state.is_terminal() && attempts <= 1,
        "{state} after {attempts} attempts"
    );
    proxy.thaw();
    let rec = finished_within(&q, &slow, Duration::from_secs(20)).await;
    assert_eq!(sum(&rec), vec![11.0, 12.0, 13.0, 14.0]);
    assert_eq!(rec.attempts, 1);
}

/// A submit that offloads to a frozen store fails within the bound its settings give
/// (request timeout + retry budget), names the store, and leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_against_a_frozen_store_returns_within_its_bound() {
    let server = RedisServer::start(false);
    let (_moto, proxy, mut cfg) = frozen_setup(&server, "bound").await;
    cfg.objects.offload_url = Some("s3://gpujobs/queue".into());
    cfg.objects.offload_above = 0;
    cfg.objects.request_timeout = Duration::from_secs(1);
    cfg.objects.retry_budget = Duration::from_secs(1);
    let q = RedisQueue::connect(cfg).await.unwrap();
    proxy.freeze();
    let env = needs_no_object(1);
    let id = env.id.clone();
    let start = Instant::now();
    let err = q.submit(env).await.unwrap_err().to_string();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(4), "took {took:?}: {err}");
    assert!(
        err.contains("object storage at s3://gpujobs/queue/"),
        "{err}"
    );
    let key = q.keys_of(&id).blob(&id, "t0");
    let left: Option<Vec<u8>> = query(&server.url(), redis::cmd("GET").arg(key)).await;
    assert!(left.is_none(), "a blob stayed in Redis");
    assert!(
        q.status(&id).await.unwrap().is_none(),
        "a record stayed in Redis"
    );
}

/// A bucket that does not exist can never be written: the job fails at once, on its
/// first attempt, saying so; a submit offloading there fails the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_fails_the_job_at_once_with_its_reason() {
    let server = RedisServer::start(false);
    let (_moto, _proxy, mut cfg) = frozen_setup(&server, "nobucket").await;
    cfg.objects.allow.push("s3://nosuchbucket/out".into());
    let q = Arc::new(RedisQueue::connect(cfg.clone()).await.unwrap());
    let (_stop, _) = start(q.clone(), Duration::from_secs(60));
    let env = needs_no_object(2)
        .with_max_attempts(5)
        .with_results_to("s3://nosuchbucket/out/run-1");
    let id = q.submit(env).await.unwrap();
    let rec = finished_within(&q, &id, Duration::from_secs(15)).await;
    assert_eq!((rec.state, rec.attempts), (JobState::Failed, 1), "{rec:?}");
    let msg = rec.error.unwrap().message;
    assert!(msg.contains("bucket does not exist"), "{msg}");
    cfg.objects.offload_url = Some("s3://nosuchbucket/queue".into());
    cfg.objects.offload_above = 0;
    let q = RedisQueue::connect(cfg).await.unwrap();
    let err = q.submit(needs_no_object(3)).await.unwrap_err().to_string();
    assert!(err.contains("bucket does not exist"), "{err}");
}

/// Symbolic links inside an allowed folder that lead out of it are refused: a `url`
/// tensor read through one, results written into a linked folder, and blobs offloaded
/// through one; nothing is read from or written to the other side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_out_of_the_allowed_folders_are_refused_for_reads_results_and_offload() {
    use std::os::unix::fs::symlink;
    let server = RedisServer::start(false);
    let dir = tempfile::tempdir().unwrap();
    let (allowed, elsewhere) = (dir.path().join("allowed"), dir.path().join("elsewhere"));
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(dir.path().join("secret.f32"), le_bytes(&[7.0; 4])).unwrap();
    symlink("../secret.f32", allowed.join("link.f32")).unwrap();
    symlink("../elsewhere", allowed.join("out")).unwrap();
    let mut cfg = config(&server, "links");
    cfg.objects.allow = vec![file_url(&allowed)];
    let q = Arc::new(RedisQueue::connect(cfg.clone()).await.unwrap());
    let (_stop, _) = start(q.clone(), Duration::from_secs(60));
    let read = JobEnvelope::new(VectorAdd {
        a: Tensor::from_url(vec![4], file_url(&allowed.join("link.f32"))),
        b: Tensor::from_values(vec![4], vec![0.0; 4]).unwrap(),
    })
    .unwrap();
    let read = q.submit(read).await.unwrap();
    let write = needs_no_object(4).with_results_to(file_url(&allowed.join("out/run")));
    let write = q.submit(write).await.unwrap();
    for id in [read, write] {
        let rec = finished_within(&q, &id, Duration::from_secs(15)).await;
        assert_eq!(rec.state, JobState::Failed, "{rec:?}");
        let msg = rec.error.unwrap().message;
        assert!(msg.contains("outside the readable prefixes"), "{msg}");
    }
    // Offload into a folder whose namespace folder links out.
    let offload = dir.path().join("offload");
    std::fs::create_dir_all(&offload).unwrap();
    symlink("../elsewhere", offload.join("links")).unwrap();
    cfg.objects.offload_url = Some(file_url(&offload));
    cfg.objects.offload_above = 0;
    let q = RedisQueue::connect(cfg).await.unwrap();
    let err = q.submit(needs_no_object(5)).await.unwrap_err().to_string();
    assert!(err.contains("outside the readable prefixes"), "{err}");
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "written through a link"
    );
}

/// A recorded result's file (`results_to`) is written by the winning attempt only,
/// and no attempt's private copy is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_at_a_url_are_written_once_by_the_recorded_attempt() {
    let server = RedisServer::start(false);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut cfg = config(&server, "publish");
    cfg.objects.allow = vec![file_url(&out)];
    let q = Arc::new(RedisQueue::connect(cfg).await.unwrap());
    let (_stop, _) = start(q.clone(), Duration::from_secs(60));
    let env = needs_no_object(6).with_results_to(file_url(&out.join("run")));
    let id = q.submit(env).await.unwrap();
    let rec = finished_within(&q, &id, Duration::from_secs(15)).await;
    assert_eq!(sum(&rec), vec![7.0; 1000]);
    // Published just after the record: give the worker a moment.
    let file = out.join("run/c.npy");
    let start = Instant::now();
    while !file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "c.npy never appeared"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The attempt's copy goes once the file is in place (its folder with it).
    let attempts = out.join("run/.attempts");
    let start = Instant::now();
    while std::fs::read_dir(&attempts).map(|d| d.count()).unwrap_or(0) > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the attempt's copy stayed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The record now reads the published file.
    let rec = q.status(&id).await.unwrap().unwrap();
    assert_eq!(sum(&rec), vec![7.0; 1000]);
}
