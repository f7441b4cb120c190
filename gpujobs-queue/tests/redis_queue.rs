//! `RedisQueue` against a private redis-server and a private three-master Redis
//! Cluster, with one and with several partitions: the shared conformance suite, bad
//! submissions, blobs, a malformed blob in a batch, and a Redis restart in the middle
//! of a run.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "redis_queue/ended.rs"]
mod ended;
#[path = "redis_queue/entry_form.rs"]
mod entry_form;
#[path = "redis_queue/history.rs"]
mod history;
#[cfg(feature = "objects")]
#[path = "redis_queue/object_faults.rs"]
mod object_faults;
#[cfg(feature = "objects")]
#[path = "redis_queue/objects.rs"]
mod objects;
#[path = "redis_queue/retention.rs"]
mod retention;
#[path = "redis_queue/wakeup.rs"]
mod wakeup;

use async_trait::async_trait;
use gpujobs_core::kinds::{Matmul, VectorAdd, VectorAddOutput};
use gpujobs_core::queue::{AdminQueue, LeaseQueue, ScheduleQueue, SubmitQueue};
use gpujobs_core::{
    DeviceClass, DeviceInfo, EarliestFinish, ExecContext, Execution, Executor, JobEnvelope,
    JobError, JobState, Queue, QueueError, Registry, RetryPolicy, Scheduler, SchedulerConfig,
    StageTimes, Tensor, Worker, WorkerConfig, conformance, shutdown_channel,
};
use gpujobs_queue::testkit::{RedisCluster, RedisServer};
use gpujobs_queue::{RedisConfig, RedisQueue};
use std::sync::Arc;
use std::time::Duration;

fn config(server: &RedisServer, ns: &str) -> RedisConfig {
    config_at(server.url(), ns, None)
}

fn config_at(url: String, ns: &str, partitions: Option<u32>) -> RedisConfig {
    let mut c = RedisConfig::new(url);
    c.namespace = ns.into();
    c.partitions = partitions;
    c.retry = RetryPolicy {
        base: Duration::from_millis(20),
        factor: 2.0,
        max: Duration::from_millis(50),
        jitter: 0.0,
    };
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite() {
    let server = RedisServer::start(false);
    let q = RedisQueue::connect(config(&server, "conf")).await.unwrap();
    conformance::run_all(&q).await;
    // The graph scenarios released, failed and cancelled waiting jobs: each was
    // counted out of `waiting` exactly once.
    assert_eq!(q.counts().await.unwrap().waiting, 0);
}

/// Graph jobs through real workers: cache hits, and ephemeral outputs made again by
/// another worker, on Redis (one and three partitions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_workers_on_redis() {
    let server = RedisServer::start(false);
    for (ns, parts) in [("graph1", 1), ("graph3", 3)] {
        let q = RedisQueue::connect(config_at(server.url(), ns, Some(parts)))
            .await
            .unwrap();
        conformance::graph_workers::run_all(std::sync::Arc::new(q)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_with_three_partitions() {
    let server = RedisServer::start(false);
    let q = RedisQueue::connect(config_at(server.url(), "conf3", Some(3)))
        .await
        .unwrap();
    assert_eq!(q.partitions().len(), 3);
    conformance::run_all_partitioned(&q, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    for (ns, parts) in [("one", 1), ("three", 3)] {
        let q = RedisQueue::connect(config_at(cluster.url(), ns, Some(parts)))
            .await
            .unwrap();
        conformance::run_all_partitioned(&q, parts as usize).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_count_that_differs_from_the_stored_one_is_refused() {
    let server = RedisServer::start(false);
    RedisQueue::connect(config_at(server.url(), "p", Some(2)))
        .await
        .unwrap();
    let q = RedisQueue::connect(config_at(server.url(), "p", None))
        .await
        .unwrap();
    assert_eq!(q.partitions().len(), 2, "learned from Redis");
    let e = RedisQueue::connect(config_at(server.url(), "p", Some(3)))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("--partitions 2"), "{e}");
}

/// Adds on the CPU, plainly: the queue tests need an executor, not a fast one.
struct Add;

#[async_trait]
impl Executor<VectorAdd> for Add {
    async fn run(
        &self,
        job: VectorAdd,
        _: &ExecContext,
    ) -> Result<Execution<VectorAddOutput>, JobError> {
        let (a, b) = (job.a.values()?, job.b.values()?);
        let c: Vec<f32> = a.iter().zip(b.iter()).map(|(x, y)| x + y).collect();
        Ok(Execution {
            output: VectorAddOutput {
                c: Tensor::from_values(vec![c.len()], c)?,
            },
            times: StageTimes::default(),
        })
    }
}

fn registry() -> Arc<Registry> {
    let mut r = Registry::with_builtin_kinds();
    let device = DeviceInfo {
        class: DeviceClass::Cpu,
        name: "test".into(),
        ordinal: 0,
    };
    r.register::<VectorAdd, _>(&device, Add);
    Arc::new(r)
}

fn start_cluster(q: Arc<dyn Queue>) -> gpujobs_core::ShutdownTrigger {
    start_cluster_with(q, |_| {})
}

/// A scheduler and a CPU worker (concurrency 4, 2 s leases) whose configuration
/// `tweak` may change.
fn start_cluster_with(
    q: Arc<dyn Queue>,
    tweak: impl FnOnce(&mut WorkerConfig),
) -> gpujobs_core::ShutdownTrigger {
    let (trigger, shutdown) = shutdown_channel();
    let sched = SchedulerConfig {
        poll: Duration::from_millis(100),
        ..SchedulerConfig::default()
    };
    tokio::spawn(
        Scheduler::new(
            q.clone(),
            registry(),
            Arc::new(EarliestFinish::default()),
            sched,
        )
        .run(shutdown.clone()),
    );
    let mut wc = WorkerConfig::new(DeviceInfo {
        class: DeviceClass::Cpu,
        name: "test".into(),
        ordinal: 0,
    });
    wc.concurrency = 4;
    wc.poll = Duration::from_millis(100);
    wc.lease = Duration::from_secs(2);
    wc.reclaim_every = Duration::from_millis(200);
    tweak(&mut wc);
    tokio::spawn(Worker::new(q, registry(), wc).run(shutdown));
    trigger
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_tensors_travel_as_blobs_both_ways() {
    let server = RedisServer::start(false);
    blobs_both_ways(config(&server, "blobs")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_tensors_travel_as_blobs_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    blobs_both_ways(config_at(cluster.url(), "blobs", Some(3))).await;
}

async fn blobs_both_ways(cfg: RedisConfig) {
    let url = cfg.url.clone();
    let q: Arc<RedisQueue> = Arc::new(RedisQueue::connect(cfg).await.unwrap());
    let _stop = start_cluster(q.clone());
    let a = Tensor::from_values(vec![3], vec![1.0, 2.0, 3.0]).unwrap();
    let b = Tensor::from_values(vec![3], vec![10.0, 20.0, 30.0]).unwrap();
    let id = q
        .submit(JobEnvelope::new(VectorAdd { a, b }).unwrap())
        .await
        .unwrap();
    let rec = q.wait(&id, Duration::from_secs(10)).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Succeeded, "{rec:?}");
    let out: VectorAddOutput = rec.result.unwrap().decode().unwrap();
    assert_eq!(out.c.values().unwrap().as_slice(), &[11.0, 22.0, 33.0]);
    // The envelope in Redis holds a blob reference, not the numbers.
    let env: String = query(
        &url,
        redis::cmd("HGET").arg(q.keys_of(&id).job(&id)).arg("env"),
    )
    .await;
    assert!(
        env.contains("\"blob\":\"t0\"") && !env.contains("data"),
        "{env}"
    );
    // A batch of records reads each as `status` does, an unknown id as none (more jobs,
    // so that a cluster's partitions each hold some).
    let mut ids = vec![id.clone()];
    for i in 0..6 {
        let a = Tensor::from_values(vec![2], vec![i as f32, 1.0]).unwrap();
        let env = JobEnvelope::new(VectorAdd { b: a.clone(), a }).unwrap();
        ids.push(q.submit(env).await.unwrap());
    }
    for id in &ids {
        q.wait(id, Duration::from_secs(10)).await.unwrap();
    }
    let unknown = gpujobs_core::JobId::parse("never-submitted").unwrap();
    let mut asked = ids.clone();
    asked.insert(2, unknown);
    let many = q.records(&asked).await.unwrap();
    assert_eq!(many.len(), asked.len());
    assert!(many[2].is_none());
    for (id, got) in asked.iter().zip(&many).filter(|(_, r)| r.is_some()) {
        let one = q.status(id).await.unwrap();
        assert_eq!(got.as_ref(), one.as_ref(), "{id}");
        assert!(
            !got.as_ref()
                .unwrap()
                .result
                .as_ref()
                .unwrap()
                .blobs
                .is_empty()
        );
    }
    // Once the job has ended its inputs are freed; its output stays with the record.
    let keys = q.keys_of(&id);
    for (name, exists) in [("t0", 0), ("t1", 0), ("out:t0", 1)] {
        let n: i64 = query(&url, redis::cmd("EXISTS").arg(keys.blob(&id, name))).await;
        assert_eq!(n, exists, "blob {name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_entries_are_refused_by_the_client_and_dead_lettered_unparsed() {
    let server = RedisServer::start(false);
    let mut cfg = config(&server, "caps");
    cfg.max_entry_bytes = 4096;
    let q: Arc<RedisQueue> = Arc::new(RedisQueue::connect(cfg).await.unwrap());
    let data = vec!["1.5"; 3000].join(",");
    let raw = format!(
        r#"{{"id":"too-big-1","kind":"vector-add","payload":{{"a":{{"shape":[3000],"data":[{data}]}},"b":{{"shape":[3000],"data":[{data}]}}}}}}"#
    );
    // The client refuses an envelope with inline numbers beyond the cap, storing nothing.
    let env: JobEnvelope = serde_json::from_str(&raw).unwrap();
    let err = q.submit(env).await.unwrap_err();
    assert!(matches!(err, QueueError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("submit entry"), "{err}");
    // A foreign client's oversized XADD: dead-lettered on its size, with a record for
    // its id; a small job beside it runs.
    q.submit_raw(raw.as_bytes()).await.unwrap();
    let ok = q
        .submit(JobEnvelope::new(VectorAdd::synthetic(8, 1)).unwrap())
        .await
        .unwrap();
    let _stop = start_cluster(q.clone());
    let rec = q.wait(&ok, Duration::from_secs(10)).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Succeeded, "{rec:?}");
    let id = gpujobs_core::JobId::parse("too-big-1").unwrap();
    let rec = q.wait(&id, Duration::from_secs(10)).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Dead, "{rec:?}");
    let why = rec.error.unwrap().message;
    assert!(why.contains("larger than the limit of 4096"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_of_large_entries_after_small_ones_stays_within_its_byte_budget() {
    let server = RedisServer::start(false);
    let mut cfg = config(&server, "budget");
    cfg.max_entry_bytes = 4096;
    cfg.take_batch_bytes = 10_240;
    let q = RedisQueue::connect(cfg).await.unwrap();
    let wait = Duration::from_millis(200);
    for seed in 0..20 {
        q.submit(JobEnvelope::new(VectorAdd::synthetic(8, seed)).unwrap())
            .await
            .unwrap();
    }
    let mut small = 0;
    while small < 20 {
        let got = q.take_submitted("sched", 256, wait).await.unwrap();
        assert!(!got.is_empty(), "small entries left untaken");
        small += got.len();
    }
    // A burst of entries of about 3.4 KB each: two fit in the 10 KiB budget, however
    // small the entries before them were.
    let data = vec!["1.25"; 330].join(",");
    for i in 0..10 {
        let raw = format!(
            r#"{{"id":"large-{i}","kind":"vector-add","payload":{{"a":{{"shape":[330],"data":[{data}]}},"b":{{"shape":[330],"data":[{data}]}}}}}}"#
        );
        assert!(raw.len() > 3300 && raw.len() <= 4096, "{}", raw.len());
        q.submit_raw(raw.as_bytes()).await.unwrap();
    }
    let mut large = 0;
    while large < 10 {
        let got = q.take_submitted("sched", 256, wait).await.unwrap();
        assert!(!got.is_empty(), "large entries left untaken");
        assert!(
            got.len() <= 2,
            "one take held {} entries of 3.4 KB: over the 10 KiB budget",
            got.len()
        );
        assert!(got.iter().all(|i| i.job.is_ok()), "{got:?}");
        large += got.len();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_redis_refuses_submits_early_and_every_accepted_job_finishes() {
    let server = RedisServer::start_with(
        false,
        &["--maxmemory", "16mb", "--maxmemory-policy", "noeviction"],
    );
    let q: Arc<RedisQueue> = Arc::new(RedisQueue::connect(config(&server, "full")).await.unwrap());
    // 512 KiB of input blobs per job, nothing running: submit until refused.
    let job = |seed: u64| {
        let n = 65_536;
        let v = |s: u64| {
            (0..n)
                .map(|i| ((i as u64 * 7 + s) % 1000) as f32)
                .collect::<Vec<f32>>()
        };
        JobEnvelope::new(VectorAdd {
            a: Tensor::from_values(vec![n], v(seed)).unwrap(),
            b: Tensor::from_values(vec![n], v(seed + 1)).unwrap(),
        })
        .unwrap()
    };
    let mut accepted = Vec::new();
    let refusal = loop {
        match q.submit(job(accepted.len() as u64)).await {
            Ok(id) => accepted.push(id),
            Err(e) => break e,
        }
        assert!(accepted.len() < 100, "never refused");
    };
    assert!(matches!(refusal, QueueError::Full(_)), "{refusal}");
    assert!(refusal.to_string().contains("high-water mark"), "{refusal}");
    assert!(
        accepted.len() >= 10,
        "refused too early: {}",
        accepted.len()
    );
    // The refused job's blobs were taken back; memory sits just under the mark.
    let d = q.diagnose().await;
    assert_eq!(d.maxmemory, Some(16 << 20));
    assert!(
        d.used_memory.unwrap() as f64 > 0.7 * (16 << 20) as f64,
        "{d:?}"
    );
    // Workers start: every accepted job succeeds (the reserve holds their results, and
    // each one ending frees its inputs), and submits are accepted again.
    let _stop = start_cluster(q.clone());
    for id in &accepted {
        let rec = q.wait(id, Duration::from_secs(60)).await.unwrap().unwrap();
        assert_eq!(rec.state, JobState::Succeeded, "{rec:?}");
    }
    let again = q.submit(job(999)).await.unwrap();
    let rec = q
        .wait(&again, Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.state, JobState::Succeeded, "{rec:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_is_renewed_while_redis_is_completely_full() {
    let server = RedisServer::start_with(
        false,
        &["--maxmemory", "8mb", "--maxmemory-policy", "noeviction"],
    );
    let q = RedisQueue::connect(config(&server, "oom")).await.unwrap();
    let wait = Duration::from_secs(2);
    let id = q
        .submit(JobEnvelope::new(VectorAdd::synthetic(8, 1)).unwrap())
        .await
        .unwrap();
    let taken = q.take_submitted("sched", 10, wait).await.unwrap();
    let decision = gpujobs_core::PlacementDecision {
        lane: DeviceClass::Cpu,
        estimates: Default::default(),
        run_estimate_s: 0.001,
        reason: "test".into(),
        model: "none".into(),
        worker: None,
        worker_wait_ms: 0,
    };
    q.place(&taken[0], decision).await.unwrap();
    let lease = Duration::from_secs(30);
    let mut got = q
        .fetch(DeviceClass::Cpu, "w1", 1, lease, wait)
        .await
        .unwrap();
    let running = got.remove(0);
    assert_eq!(running.lease.job_id, id);
    // Another client fills Redis to its maxmemory: every write that may grow memory is
    // now refused.
    let mut filler = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let chunk = vec![7u8; 256 << 10];
    for i in 0.. {
        let set: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("filler:{i}"))
            .arg(&chunk)
            .query_async(&mut filler)
            .await;
        match set {
            Ok(()) => assert!(i < 1000, "never full"),
            Err(e) => {
                assert!(e.to_string().contains("OOM"), "{e}");
                break;
            }
        }
    }
    let refused = q
        .submit(JobEnvelope::new(VectorAdd::synthetic(8, 2)).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(refused, QueueError::Full(_)), "{refused}");
    // The running job keeps its lease: renewing grows nothing, so it is let through,
    // and the job cannot be taken over (and run twice) while its result waits.
    q.renew(&running.lease, lease).await.unwrap();
    q.renew(&running.lease, lease).await.unwrap();
}

/// Runs one command on a plain connection to a single Redis or a cluster, as another
/// client would.
async fn query<T: redis::FromRedisValue>(url: &str, cmd: &redis::Cmd) -> T {
    match url.strip_prefix("redis+cluster://") {
        Some(hosts) => {
            let nodes: Vec<String> = hosts.split(',').map(|h| format!("redis://{h}")).collect();
            let c = redis::cluster::ClusterClient::new(nodes).unwrap();
            cmd.query_async(&mut c.get_async_connection().await.unwrap())
                .await
                .unwrap()
        }
        None => cmd
            .query_async(
                &mut redis::Client::open(url)
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap(),
            )
            .await
            .unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_submissions_are_dead_lettered_and_good_jobs_still_run() {
    let server = RedisServer::start(false);
    malformed_submissions(config(&server, "bad")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_submissions_on_a_redis_cluster_with_partitions() {
    let cluster = RedisCluster::start();
    malformed_submissions(config_at(cluster.url(), "bad", Some(3))).await;
}

/// A job whose input blob is not whole f32 values, fetched in one batch with good
/// jobs, fails alone with its reason; the good ones run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_blob_fails_its_job_alone() {
    let server = RedisServer::start(false);
    let url = server.url();
    let q: Arc<RedisQueue> = Arc::new(RedisQueue::connect(config(&server, "blob")).await.unwrap());
    let bad_id = gpujobs_core::JobId::parse("bad-blob").unwrap();
    let () = query(
        &url,
        redis::cmd("SET")
            .arg(q.keys_of(&bad_id).blob(&bad_id, "t0"))
            .arg(&b"1234567"[..]),
    )
    .await;
    let bad = br#"{"id":"bad-blob","kind":"vector-add","payload":{"a":{"shape":[2],"blob":"t0"},"b":{"shape":[2],"data":[3,4]}}}"#;
    // Submitted before any worker runs, so one fetch takes them all together.
    let mut good = Vec::new();
    for i in 0..10 {
        good.push(
            q.submit(JobEnvelope::new(VectorAdd::synthetic(8, i)).unwrap())
                .await
                .unwrap(),
        );
        if i == 4 {
            q.submit_raw(bad).await.unwrap();
        }
    }
    let _stop = start_cluster(q.clone());
    for id in &good {
        let rec = q.wait(id, Duration::from_secs(10)).await.unwrap().unwrap();
        assert_eq!(rec.state, JobState::Succeeded, "{id}: {rec:?}");
    }
    let rec = q
        .wait(&bad_id, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.state, JobState::Failed, "{rec:?}");
    let why = rec.error.unwrap().message;
    assert!(why.contains("not a whole number of f32 values"), "{why}");
    assert_eq!(rec.attempts, 1);
    // Its input was freed when it ended, so it cannot be retried from its record: said so.
    let n: i64 = query(
        &url,
        redis::cmd("EXISTS").arg(q.keys_of(&bad_id).blob(&bad_id, "t0")),
    )
    .await;
    assert_eq!(n, 0);
    let err = q.retry_dead(&bad_id).await.unwrap_err();
    assert!(matches!(err, QueueError::Refused(_)), "{err}");
    assert!(err.to_string().contains("submit it again"), "{err}");
}

async fn malformed_submissions(cfg: RedisConfig) {
    let q: Arc<RedisQueue> = Arc::new(RedisQueue::connect(cfg).await.unwrap());
    let _stop = start_cluster(q.clone());
    let huge = JobEnvelope::new(Matmul::synthetic(1_000_000, 1_000_000, 1_000_000, 1)).unwrap();
    let mut mismatched = JobEnvelope::new(Matmul::synthetic(3, 4, 5, 1)).unwrap();
    mismatched.payload["b"]["shape"] = serde_json::json!([7, 5]);
    let mut unknown = JobEnvelope::new(VectorAdd::synthetic(4, 1)).unwrap();
    unknown.kind = "teleport".into();
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (b"{ this is not json".to_vec(), "not a valid job envelope"),
        (
            serde_json::to_vec(&unknown).unwrap(),
            "unknown job kind `teleport`",
        ),
        (serde_json::to_vec(&mismatched).unwrap(), "inner dimensions"),
        (serde_json::to_vec(&huge).unwrap(), "memory"),
        (
            (0..200u8)
                .map(|i| i.wrapping_mul(37).wrapping_add(128))
                .collect(),
            "not UTF-8",
        ),
        // Readable id, no kind: refused, and the id gets a `dead` record.
        (
            br#"{"id":"no-kind-1","payload":{}}"#.to_vec(),
            "missing field `kind`",
        ),
    ];
    let good1 = q
        .submit(JobEnvelope::new(VectorAdd::synthetic(8, 1)).unwrap())
        .await
        .unwrap();
    for (raw, _) in &bad {
        q.submit_raw(raw).await.unwrap();
    }
    // A plain external submission with inline data is accepted.
    let external = br#"{"id":"ext-1","kind":"vector-add","payload":{"a":{"shape":[2],"data":[1,2]},"b":{"shape":[2],"data":[3,4]}}}"#;
    q.submit_raw(external).await.unwrap();
    let good2 = q
        .submit(JobEnvelope::new(VectorAdd::synthetic(8, 2)).unwrap())
        .await
        .unwrap();
    let ext = gpujobs_core::JobId::parse("ext-1").unwrap();
    // A raw entry has no record until a scheduler takes it (on a cluster with
    // partitions, after forwarding it to its home partition): `wait` answers `None`
    // for an unknown id at once, so wait for the record to appear first.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while q.status(&ext).await.unwrap().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "ext-1 was never recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for id in [&good1, &good2, &ext] {
        let rec = q.wait(id, Duration::from_secs(10)).await.unwrap().unwrap();
        assert_eq!(rec.state, JobState::Succeeded, "{id}: {rec:?}");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let dead = q.dead_letters(100).await.unwrap();
        let all_there = bad
            .iter()
            .all(|(_, why)| dead.iter().any(|d| d.reason.contains(why)));
        if all_there {
            assert!(dead.iter().any(|d| {
                d.raw
                    .as_deref()
                    .is_some_and(|r| r.contains("this is not json"))
            }));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "dead letters: {dead:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = q
        .status(&gpujobs_core::JobId::parse("no-kind-1").unwrap())
        .await
        .unwrap()
        .expect("a refused entry with a readable id has a record");
    assert_eq!(refused.state, JobState::Dead);
    assert!(
        refused
            .error
            .unwrap()
            .message
            .contains("missing field `kind`"),
        "the reason is on the record"
    );
    let out: VectorAddOutput = q
        .status(&gpujobs_core::JobId::parse("ext-1").unwrap())
        .await
        .unwrap()
        .unwrap()
        .result
        .unwrap()
        .decode()
        .unwrap();
    assert_eq!(out.c.values().unwrap().as_slice(), &[4.0, 6.0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_loses_no_acknowledged_job() {
    let mut server = RedisServer::start(true);
    let q: Arc<RedisQueue> = Arc::new(
        RedisQueue::connect(config(&server, "restart"))
            .await
            .unwrap(),
    );
    let _stop = start_cluster(q.clone());
    let mut ids = Vec::new();
    for i in 0..200 {
        // A client retries a submit that failed while Redis was down; only submits
        // that were acknowledged count.
        let mut tries = 0;
        let id = loop {
            match q
                .submit(JobEnvelope::new(VectorAdd::synthetic(16, i)).unwrap())
                .await
            {
                Ok(id) => break id,
                Err(e) if tries < 100 => {
                    tries += 1;
                    tracing::debug!("submit failed during the restart: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("Redis never came back: {e}"),
            }
        };
        ids.push(id);
        if i == 100 {
            server.restart();
        }
    }
    for id in &ids {
        let rec = q.wait(id, Duration::from_secs(30)).await.unwrap();
        let rec = rec.unwrap_or_else(|| panic!("job {id} lost"));
        assert_eq!(rec.state, JobState::Succeeded, "{id}: {rec:?}");
    }
}

/// An entry that names a queued job it does not carry (the job was submitted with its
/// own entry) is dead-lettered alone: refusing it, malformed or of an unknown kind,
/// leaves that job queued, and the job runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_naming_another_queued_job_is_refused_alone() {
    let server = RedisServer::start(false);
    let q = RedisQueue::connect(config(&server, "foreign"))
        .await
        .unwrap();
    let env = conformance::job(1);
    let mut lookalike = serde_json::to_value(&env).unwrap();
    lookalike["kind"] = "no-such-kind".into();
    let victim = q.submit(env).await.unwrap();
    let malformed = format!(r#"{{"id":"{victim}"}}"#);
    q.submit_raw(malformed.as_bytes()).await.unwrap();
    q.submit_raw(lookalike.to_string().as_bytes())
        .await
        .unwrap();
    let mut taken = Vec::new();
    while taken.len() < 3 {
        let got = q
            .take_submitted("sched", 10, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(!got.is_empty(), "taken so far: {}", taken.len());
        taken.extend(got);
    }
    let (own, foreign): (Vec<_>, Vec<_>) = taken
        .into_iter()
        .partition(|i| i.job.as_ref().is_ok_and(|e| e.kind == "vector-add"));
    assert_eq!((own.len(), foreign.len()), (1, 2));
    for inc in &foreign {
        assert_eq!(inc.id.as_ref(), Some(&victim), "both name the job");
        q.reject(inc, "refused by the test").await.unwrap();
    }
    let rec = q.status(&victim).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Queued, "{rec:?}");
    let dead = q.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 2, "{dead:#?}");
    for d in &dead {
        assert_ne!(d.id, victim.as_str(), "filed under its entry, not the job");
        assert!(
            d.reason.contains(&format!(
                "names job `{victim}`, which was submitted with another entry"
            )),
            "{}",
            d.reason
        );
    }
    q.place(&own[0], conformance::decision()).await.unwrap();
    let d = conformance::fetch_one(&q, "w", Duration::from_secs(30)).await;
    assert_eq!(d.envelope.id, victim);
}

/// A worker that restarts under its name gets back the jobs it held, each once, with
/// one attempt more: the re-read of its pending entries used to return them twice
/// when they were fewer than the fetch asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_gets_each_of_its_pending_jobs_once() {
    let server = RedisServer::start(false);
    let cfg = config(&server, "own-again");
    let lease = Duration::from_secs(30);
    let client = RedisQueue::connect(cfg.clone()).await.unwrap();
    let mut ids = Vec::new();
    for seed in 0..2 {
        ids.push(conformance::submit_and_place(&client, conformance::job(seed)).await);
    }
    let before = RedisQueue::connect(cfg.clone()).await.unwrap();
    let held = before
        .fetch(DeviceClass::Cpu, "w-own", 2, lease, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(held.len(), 2);
    drop(before); // killed: its entries stay pending under its name
    let after = RedisQueue::connect(cfg).await.unwrap();
    let again = after
        .fetch(DeviceClass::Cpu, "w-own", 10, lease, Duration::from_secs(5))
        .await
        .unwrap();
    let mut got: Vec<_> = again.iter().map(|d| d.envelope.id.clone()).collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids, "each held job once");
    for d in &again {
        assert_eq!(d.lease.attempt, 2, "{}", d.envelope.id);
    }
}

/// Wrong or missing credentials: retried for the grace, then a clear error that says
/// so (a daemon then exits instead of retrying forever); the right ones connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_end_in_a_clear_error_after_the_grace() {
    let server = RedisServer::start_with(false, &["--requirepass", "right-pw"]);
    for url in [
        format!("redis://:wrong-pw@127.0.0.1:{}", server.port),
        server.url(),
    ] {
        let mut cfg = RedisConfig::new(url);
        cfg.auth_grace = Duration::from_millis(500);
        let started = std::time::Instant::now();
        let e = RedisQueue::connect_retrying(cfg, None).await.unwrap_err();
        assert!(
            matches!(&e, gpujobs_core::QueueError::Misconfigured(m) if m.contains("authentication failed")),
            "{e}"
        );
        assert!(
            !e.to_string().contains("wrong-pw"),
            "the password is redacted: {e}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "gave up after the grace"
        );
    }
    let ok = RedisConfig::new(format!("redis://:right-pw@127.0.0.1:{}", server.port));
    RedisQueue::connect(ok).await.unwrap();
}
