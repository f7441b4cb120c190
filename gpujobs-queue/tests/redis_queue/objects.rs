//! Large data by reference (feature `objects`): blobs offloaded to the file system and
//! to a real S3 API (moto's server, started here on a loopback port), `url` tensors read
//! by the worker, and references and URLs that must not be followed.

use super::{config, config_at, query, start_cluster};
use gpujobs_core::kinds::{VectorAdd, VectorAddOutput};
use gpujobs_core::queue::SubmitQueue;
use gpujobs_core::{JobEnvelope, JobId, JobRecord, JobState, Tensor, conformance};
use gpujobs_queue::testkit::{RedisCluster, RedisServer};
use gpujobs_queue::{RedisConfig, RedisQueue};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(super) fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// A blob key's raw value.
async fn raw_blob(q: &RedisQueue, url: &str, id: &JobId, name: &str) -> Option<Vec<u8>> {
    query(url, redis::cmd("GET").arg(q.keys_of(id).blob(id, name))).await
}

/// The job's record once it has ended (a raw entry has none until a scheduler took it).
async fn finished(q: &RedisQueue, id: &JobId) -> JobRecord {
    finished_within(q, id, Duration::from_secs(15)).await
}

/// [`finished`], failing the test if the job has not ended within `within`.
pub(super) async fn finished_within(q: &RedisQueue, id: &JobId, within: Duration) -> JobRecord {
    let start = Instant::now();
    loop {
        let left = within.saturating_sub(start.elapsed());
        if let Some(rec) = q.wait(id, left).await.unwrap()
            && rec.state.is_terminal()
        {
            return rec;
        }
        assert!(
            start.elapsed() < within,
            "job {id} did not end within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(super) fn sum(rec: &JobRecord) -> Vec<f32> {
    assert_eq!(rec.state, JobState::Succeeded, "{rec:?}");
    let out: VectorAddOutput = rec.result.clone().unwrap().decode().unwrap();
    out.c.values().unwrap().to_vec()
}

/// `cfg` with every blob, however small, offloaded to files under `dir`.
fn offloading_everything(mut cfg: RedisConfig, dir: &Path) -> RedisConfig {
    cfg.objects.offload_url = Some(file_url(dir));
    cfg.objects.offload_above = 0;
    cfg
}

/// The graph-worker suite under namespace `ns`, then a check that both namespaces'
/// blobs really went to files (one folder per namespace under `dir`).
async fn graph_suite_and_objects_under(mut cfg: RedisConfig, ns: &str, dir: &Path) {
    let first = std::mem::replace(&mut cfg.namespace, ns.into());
    let q = RedisQueue::connect(cfg).await.unwrap();
    conformance::graph_workers::run_all(Arc::new(q)).await;
    for ns in [first.as_str(), ns] {
        let jobs = std::fs::read_dir(dir.join(ns)).unwrap().count();
        assert!(jobs > 0, "no objects under {ns}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_blob_offloaded_to_files_passes_the_conformance_suite() {
    let server = RedisServer::start(false);
    let dir = tempfile::tempdir().unwrap();
    let cfg = offloading_everything(config(&server, "offl"), dir.path());
    let q = RedisQueue::connect(cfg.clone()).await.unwrap();
    conformance::run_all(&q).await;
    graph_suite_and_objects_under(cfg, "offl-graph", dir.path()).await;
}

/// The same on a local Redis Cluster with three partitions: references live in each
/// job's own slot like the blobs they replace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_blob_offloaded_on_a_redis_cluster_passes_the_conformance_suite() {
    let cluster = RedisCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = offloading_everything(config_at(cluster.url(), "offl3", Some(3)), dir.path());
    let q = RedisQueue::connect(cfg.clone()).await.unwrap();
    conformance::run_all_partitioned(&q, 3).await;
    graph_suite_and_objects_under(cfg, "offl3-graph", dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_blobs_live_in_files_and_small_ones_in_redis() {
    let server = RedisServer::start(false);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&server, "big");
    cfg.objects.offload_url = Some(file_url(dir.path()));
    cfg.objects.offload_above = 64;
    let q: Arc<RedisQueue> = Arc::new(RedisQueue::connect(cfg).await.unwrap());
    // A small job's blobs stay in Redis (read before any worker runs: a finished job's
    // inputs are deleted).
    let job = VectorAdd {
        a: Tensor::from_values(vec![3], vec![1.0, 2.0, 3.0]).unwrap(),
        b: Tensor::from_values(vec![3], vec![1.0, 1.0, 1.0]).unwrap(),
    };
    let small = q.submit(JobEnvelope::new(job).unwrap()).await.unwrap();
    assert_eq!(
        raw_blob(&q, &server.url(), &small, "t0").await.unwrap(),
        le_bytes(&[1.0, 2.0, 3.0])
    );
    let a: Vec<f32> = (0..100).map(|i| i as f32).collect();
    let b: Vec<f32> = (0..100).map(|i| 0.5 * i as f32).collect();
    let job = VectorAdd {
        a: Tensor::from_values(vec![100], a.clone()).unwrap(),
        b: Tensor::from_values(vec![100], b.clone()).unwrap(),
    };
    let id = q.submit(JobEnvelope::new(job).unwrap()).await.unwrap();
    // Redis holds a reference; the object holds the bytes.
    let stored = raw_blob(&q, &server.url(), &id, "t0").await.unwrap();
    let text = String::from_utf8(stored.clone()).unwrap();
    assert!(text.starts_with("gjref:file://"), "{text}");
    assert_eq!(stored.len() % 4, 1);
    let object = text["gjref:file://".len()..].trim_end();
    assert_eq!(std::fs::read(object).unwrap(), le_bytes(&a));
    let _stop = start_cluster(q.clone());
    let rec = finished(&q, &id).await;
    let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    assert_eq!(sum(&rec), want);
    let out = raw_blob(&q, &server.url(), &id, "out:t0").await.unwrap();
    assert!(
        out.starts_with(b"gjref:"),
        "the 400-byte result is offloaded too"
    );
    assert_eq!(sum(&finished(&q, &small).await), vec![2.0, 3.0, 4.0]);
    assert_eq!(
        raw_blob(&q, &server.url(), &small, "out:t0").await.unwrap(),
        le_bytes(&[2.0, 3.0, 4.0]),
        "the small result stays in Redis"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_tensors_are_read_by_the_worker_and_bad_ones_fail_alone() {
    let server = RedisServer::start(false);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let a: Vec<f32> = (0..64).map(|i| i as f32 * 0.25).collect();
    std::fs::write(data.join("a.f32"), le_bytes(&a)).unwrap();
    std::fs::write(data.join("short.f32"), le_bytes(&a[..10])).unwrap();
    std::fs::write(dir.path().join("secret.f32"), le_bytes(&a)).unwrap();
    let mut cfg = config(&server, "urls");
    cfg.objects.allow = vec![file_url(&data)];
    let q: Arc<RedisQueue> = Arc::new(RedisQueue::connect(cfg).await.unwrap());
    let _stop = start_cluster(q.clone());
    let with_a = |url: String| VectorAdd {
        a: Tensor::from_url(vec![64], url),
        b: Tensor::synthetic(vec![64], 1, 0.0, 1.0),
    };
    let good = q
        .submit(JobEnvelope::new(with_a(file_url(&data.join("a.f32")))).unwrap())
        .await
        .unwrap();
    let bad = [
        ("short.f32", "holds 40 bytes"),
        ("missing.f32", "no object at"),
        ("../secret.f32", "outside the readable prefixes"),
    ];
    let mut bad_ids = Vec::new();
    for (name, why) in bad {
        let url = format!("{}/{name}", file_url(&data));
        let id = q
            .submit(JobEnvelope::new(with_a(url)).unwrap())
            .await
            .unwrap();
        bad_ids.push((id, why));
    }
    // Only the URL travels: the stored envelope has no data.
    let env: String = query(
        &server.url(),
        redis::cmd("HGET")
            .arg(q.keys_of(&good).job(&good))
            .arg("env"),
    )
    .await;
    assert!(
        env.contains("\"url\":\"file://") && !env.contains("data_b64"),
        "{env}"
    );
    let b = Tensor::synthetic(vec![64], 1, 0.0, 1.0).values().unwrap();
    let want: Vec<f32> = a.iter().zip(b.iter()).map(|(x, y)| x + y).collect();
    assert_eq!(sum(&finished(&q, &good).await), want);
    for (id, why) in bad_ids {
        let rec = finished(&q, &id).await;
        assert_eq!(rec.state, JobState::Failed, "{rec:?}");
        assert_eq!(rec.attempts, 1, "a bad URL is not retried: {rec:?}");
        let msg = rec.error.unwrap().message;
        assert!(msg.contains(why), "{msg}");
    }
    // The worker is still up.
    let after = q
        .submit(JobEnvelope::new(with_a(file_url(&data.join("a.f32")))).unwrap())
        .await
        .unwrap();
    assert_eq!(sum(&finished(&q, &after).await), want);
}

/// `.npy` objects in numpy's other dtypes are converted; results asked for at a URL
/// land there as `.npy` and read back through the record; a destination outside the
/// allowed prefixes fails the job before it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npy_urls_are_converted_and_results_go_where_the_job_asks() {
    let server = RedisServer::start(false);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    // float64 and big-endian int32, as numpy writes them.
    let a: Vec<f64> = (0..6).map(|i| i as f64 + 0.5).collect();
    let f8: Vec<u8> = a.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(data.join("a.npy"), npy("<f8", "(6,)", &f8)).unwrap();
    let i4: Vec<u8> = (0..6i32).flat_map(|x| (10 * x).to_be_bytes()).collect();
    std::fs::write(data.join("b.npy"), npy(">i4", "(6,)", &i4)).unwrap();
    let mut cfg = config(&server, "npy");
    cfg.objects.allow = vec![file_url(&data), file_url(&dir.path().join("out"))];
    let q: Arc<RedisQueue> = Arc::new(RedisQueue::connect(cfg).await.unwrap());
    let _stop = start_cluster(q.clone());
    let job = VectorAdd {
        a: Tensor::from_url(vec![6], file_url(&data.join("a.npy"))),
        b: Tensor::from_url(vec![6], file_url(&data.join("b.npy"))),
    };
    let dest = file_url(&dir.path().join("out/run-1"));
    let env = JobEnvelope::new(job).unwrap().with_results_to(&dest);
    let id = q.submit(env).await.unwrap();
    let want: Vec<f32> = (0..6).map(|i| i as f32 + 0.5 + 10.0 * i as f32).collect();
    assert_eq!(
        sum(&finished(&q, &id).await),
        want,
        "read back through the record"
    );
    // The file numpy would read: `np.load("out/run-1/c.npy")`.
    let written = std::fs::read(dir.path().join("out/run-1/c.npy")).unwrap();
    let header_len = u16::from_le_bytes([written[8], written[9]]) as usize;
    let header = std::str::from_utf8(&written[10..10 + header_len]).unwrap();
    assert!(
        header.contains("'descr': '<f4'") && header.contains("'shape': (6,)"),
        "{header}"
    );
    assert_eq!(&written[10 + header_len..], le_bytes(&want));
    // Wrong shape, and a destination the worker may not write to.
    let job = VectorAdd {
        a: Tensor::from_url(vec![3], file_url(&data.join("a.npy"))),
        b: Tensor::synthetic(vec![3], 1, 0.0, 1.0),
    };
    let wrong = q.submit(JobEnvelope::new(job).unwrap()).await.unwrap();
    let job = VectorAdd::synthetic(4, 1);
    let outside = JobEnvelope::new(job)
        .unwrap()
        .with_results_to(file_url(&dir.path().join("elsewhere")));
    let outside = q.submit(outside).await.unwrap();
    for (id, why) in [
        (wrong, "has shape [6]"),
        (outside, "outside the allowed prefixes"),
    ] {
        let rec = finished(&q, &id).await;
        assert_eq!(rec.state, JobState::Failed, "{rec:?}");
        let msg = rec.error.unwrap().message;
        assert!(msg.contains(why), "{msg}");
    }
    assert!(!dir.path().join("elsewhere").exists());
}

/// An `.npy` file as numpy writes it (format 1.0).
fn npy(descr: &str, shape: &str, payload: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    header.push_str(&" ".repeat((64 - (10 + header.len() + 1) % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(payload);
    out
}

/// A reference written straight into Redis by anyone who can write there must not make
/// a worker read files outside the configured prefixes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_reference_cannot_read_the_workers_files() {
    let server = RedisServer::start(false);
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, le_bytes(&[7.0, 7.0])).unwrap();
    let mut cfg = config(&server, "forged");
    cfg.objects.offload_url = Some(file_url(&dir.path().join("queue")));
    let q: Arc<RedisQueue> = Arc::new(RedisQueue::connect(cfg).await.unwrap());
    let id = JobId::parse("forged").unwrap();
    let mut reference = format!("gjref:{}", file_url(&secret)).into_bytes();
    while reference.len() % 4 != 1 {
        reference.push(b' ');
    }
    let () = query(
        &server.url(),
        redis::cmd("SET")
            .arg(q.keys_of(&id).blob(&id, "t0"))
            .arg(reference),
    )
    .await;
    q.submit_raw(br#"{"id":"forged","kind":"vector-add","payload":{"a":{"shape":[2],"blob":"t0"},"b":{"shape":[2],"data":[3,4]}}}"#)
        .await
        .unwrap();
    let _stop = start_cluster(q.clone());
    let rec = finished(&q, &id).await;
    assert_eq!(rec.state, JobState::Failed, "{rec:?}");
    let msg = rec.error.unwrap().message;
    assert!(msg.contains("outside the readable prefixes"), "{msg}");
}

/// moto's S3 server on a free loopback port, stopped on drop.
pub(super) struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    pub(super) fn start() -> Moto {
        let bin = std::env::var("GPUJOBS_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `{bin}` ({e}); scripts/check-objects.sh installs moto")
            });
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "moto did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, port }
    }

    /// One plain HTTP/1.1 request (moto checks no signatures); the status code.
    pub(super) fn request(&self, method: &str, path: &str, body: &[u8]) -> u16 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        reply
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    /// Its port.
    pub(super) fn port(&self) -> u16 {
        self.port
    }

    /// `cfg` talking to this server.
    fn configure(&self, cfg: &mut RedisConfig) {
        self.configure_at(cfg, self.port);
    }

    /// `cfg` talking to this server through whatever listens on `port` (a proxy).
    pub(super) fn configure_at(&self, cfg: &mut RedisConfig, port: u16) {
        cfg.objects.options = [
            ("aws_endpoint", format!("http://127.0.0.1:{port}")),
            ("aws_allow_http", "true".into()),
            ("aws_access_key_id", "test".into()),
            ("aws_secret_access_key", "test".into()),
            ("aws_region", "us-east-1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_graphs_and_url_tensors_through_a_real_s3_api() {
    let moto = Moto::start();
    assert_eq!(moto.request("PUT", "/gpujobs", b""), 200, "create bucket");
    let a: Vec<f32> = (0..256).map(|i| (i % 7) as f32).collect();
    assert_eq!(
        moto.request("PUT", "/gpujobs/data/a.f32", &le_bytes(&a)),
        200
    );
    let server = RedisServer::start(false);
    let mut cfg = config(&server, "s3");
    cfg.objects.offload_url = Some("s3://gpujobs/queue".into());
    cfg.objects.offload_above = 0;
    cfg.objects.allow = vec!["s3://gpujobs/data".into()];
    moto.configure(&mut cfg);
    let q: Arc<RedisQueue> = Arc::new(RedisQueue::connect(cfg.clone()).await.unwrap());
    let b: Vec<f32> = (0..256).map(|i| i as f32).collect();
    let job = VectorAdd {
        a: Tensor::from_url(vec![256], "s3://gpujobs/data/a.f32"),
        b: Tensor::from_values(vec![256], b.clone()).unwrap(),
    };
    let id = q.submit(JobEnvelope::new(job).unwrap()).await.unwrap();
    // `a` is a URL, so `b` is the job's second tensor (read before any worker runs:
    // a finished job's inputs are deleted).
    let stored = raw_blob(&q, &server.url(), &id, "t1").await.unwrap();
    assert!(
        stored.starts_with(b"gjref:s3://gpujobs/queue/s3/"),
        "{stored:?}"
    );
    let _stop = start_cluster(q.clone());
    let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    assert_eq!(sum(&finished(&q, &id).await), want);
    // Graph outputs read by other workers come back through S3 as well.
    cfg.namespace = "s3-graph".into();
    let g = RedisQueue::connect(cfg).await.unwrap();
    conformance::graph_workers::run_all(Arc::new(g)).await;
    // S3 gone: a submit fails with a clear error and leaves nothing in Redis.
    drop(moto);
    let job = VectorAdd {
        a: Tensor::from_values(vec![2], vec![1.0, 2.0]).unwrap(),
        b: Tensor::from_values(vec![2], vec![1.0, 2.0]).unwrap(),
    };
    let env = JobEnvelope::new(job).unwrap();
    let lost = env.id.clone();
    let err = q.submit(env).await.unwrap_err();
    assert!(err.to_string().contains("object storage"), "{err}");
    assert!(raw_blob(&q, &server.url(), &lost, "t0").await.is_none());
}
