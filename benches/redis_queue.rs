//! Queue throughput and latency through Redis, with `redis-benchmark` XADD on the same
//! server as the anchor, measured in one run (`cargo bench --features redis --bench
//! redis_queue`). Starts its own redis-server (no persistence) on a free port.
//!
//! - end-to-end throughput of no-op jobs: submit → scheduler → worker → result recorded,
//!   with one scheduler and two workers in this process;
//! - submit-to-result latency (p50, p99) when idle and under that load, from each job's
//!   own `total_s` (submit time to result recorded, measured by the worker), and the
//!   slowest of ten jobs each submitted after a second of quiet;
//! - the embedded queue's throughput (queue operations alone, and end to end);
//! - end-to-end throughput on a local three-master Redis Cluster (started here) with
//!   one and with three partitions.

#[path = "common/noop.rs"]
mod noop;

use gpujobs::queue::{LeaseQueue, ScheduleQueue, SubmitQueue};
use gpujobs::redis::testkit::{RedisCluster, RedisServer};
use gpujobs::redis::{RedisConfig, RedisQueue};
use gpujobs::{
    DeviceClass, EarliestFinish, EmbeddedCluster, JobEnvelope, JobId, JobState, MemoryQueue,
    PlacementDecision, Queue, Registry, Scheduler, SchedulerConfig, Worker, WorkerConfig,
    shutdown_channel,
};
use noop::{Noop, NoopExec};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn registry() -> Arc<Registry> {
    let mut r = Registry::new();
    r.register::<Noop, _>(&NoopExec.device(), NoopExec);
    Arc::new(r)
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn redis_benchmark(port: u16, clients: u32, pipeline: u32) -> f64 {
    let out = Command::new("redis-benchmark")
        .args([
            "-p",
            &port.to_string(),
            "-q",
            "-n",
            "200000",
            "-c",
            &clients.to_string(),
            "-P",
            &pipeline.to_string(),
        ])
        .args(["XADD", "bench:xadd", "*", "field", "value"])
        .output()
        .expect("redis-benchmark is installed with redis-server");
    let text = String::from_utf8_lossy(&out.stdout);
    // "XADD bench:xadd * field value: 112359.55 requests per second, p50=..."
    text.split("requests per second")
        .next()
        .and_then(|s| s.rsplit(' ').nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::NAN)
}

async fn submit_many(q: &Arc<RedisQueue>, n: usize) -> Vec<JobId> {
    let mut set = tokio::task::JoinSet::new();
    let per = n.div_ceil(64);
    for chunk in 0..64 {
        let q = q.clone();
        set.spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..per.min(n.saturating_sub(chunk * per)) {
                ids.push(
                    q.submit(JobEnvelope::new(Noop).expect("serializes"))
                        .await
                        .expect("submit"),
                );
            }
            ids
        });
    }
    let mut ids = Vec::new();
    while let Some(r) = set.join_next().await {
        ids.extend(r.expect("submitter"));
    }
    ids
}

/// Waits until every job succeeded. Jobs finish roughly in submit order, so only the
/// oldest unfinished ones are polled: polling all of them would load Redis more than
/// the jobs do.
async fn wait_all(q: &RedisQueue, ids: &[JobId]) {
    let mut next = 0;
    while next < ids.len() {
        let chunk = &ids[next..(next + 500).min(ids.len())];
        let states = q.states(chunk).await.expect("states");
        let done = states
            .iter()
            .take_while(|s| **s == Some(JobState::Succeeded))
            .count();
        next += done;
        if done < chunk.len() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

async fn latencies(q: &RedisQueue, ids: &[JobId]) -> Vec<f64> {
    let mut v = Vec::new();
    for id in ids {
        let rec = q.status(id).await.expect("status").expect("record");
        v.push(rec.result.expect("result").timings.total_s);
    }
    v
}

/// Throughput and latency through Redis at `url` with `partitions`, `n` jobs.
async fn redis_part(url: String, partitions: u32, n: usize) -> BTreeMap<&'static str, f64> {
    let mut cfg = RedisConfig::new(url);
    cfg.warn_durability = false;
    cfg.partitions = Some(partitions);
    let q = Arc::new(RedisQueue::connect(cfg).await.expect("connect"));
    let dq: Arc<dyn Queue> = q.clone();
    let (stop, shutdown) = shutdown_channel();
    let sched = SchedulerConfig {
        batch: 512,
        poll: Duration::from_millis(200),
        ..SchedulerConfig::default()
    };
    let kinds = registry();
    tokio::spawn(
        Scheduler::new(
            dq.clone(),
            kinds.clone(),
            Arc::new(EarliestFinish::default()),
            sched,
        )
        .run(shutdown.clone()),
    );
    for _ in 0..2 {
        let mut wc = WorkerConfig::new(NoopExec.device());
        wc.concurrency = 128;
        wc.batch = 128;
        wc.poll = Duration::from_millis(200);
        tokio::spawn(Worker::new(dq.clone(), kinds.clone(), wc).run(shutdown.clone()));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut out = BTreeMap::new();
    // Idle latency: one job at a time.
    let mut idle = Vec::new();
    for _ in 0..300 {
        let id = q
            .submit(JobEnvelope::new(Noop).expect("serializes"))
            .await
            .expect("submit");
        q.wait(&id, Duration::from_secs(10)).await.expect("wait");
        idle.push(id);
    }
    let idle = latencies(&q, &idle).await;
    out.insert("idle_p50_ms", percentile(idle.clone(), 0.5) * 1e3);
    out.insert("idle_p99_ms", percentile(idle, 0.99) * 1e3);
    // After a quiet spell: one job after each second of nothing, when a reader that
    // polled would be at its longest wait.
    let mut quiet = Vec::new();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let id = q
            .submit(JobEnvelope::new(Noop).expect("serializes"))
            .await
            .expect("submit");
        q.wait(&id, Duration::from_secs(10)).await.expect("wait");
        quiet.push(id);
    }
    let quiet = latencies(&q, &quiet).await;
    out.insert(
        "quiet_max_ms",
        quiet.iter().copied().fold(0.0, f64::max) * 1e3,
    );
    // Throughput and latency under load.
    let start = Instant::now();
    let ids = submit_many(&q, n).await;
    let submitted = start.elapsed().as_secs_f64();
    wait_all(&q, &ids).await;
    let wall = start.elapsed().as_secs_f64();
    out.insert("jobs_per_s", n as f64 / wall);
    out.insert("submits_per_s", n as f64 / submitted);
    let sample: Vec<JobId> = ids.iter().step_by(n / 300).cloned().collect();
    let loaded = latencies(&q, &sample).await;
    out.insert("load_p50_ms", percentile(loaded.clone(), 0.5) * 1e3);
    out.insert("load_p99_ms", percentile(loaded, 0.99) * 1e3);
    stop.trigger();
    out
}

async fn embedded_part() -> BTreeMap<&'static str, f64> {
    let mut out = BTreeMap::new();
    let n = 100_000u64;
    let q = MemoryQueue::default();
    let decision = PlacementDecision {
        lane: DeviceClass::Cpu,
        estimates: BTreeMap::new(),
        run_estimate_s: 0.0,
        reason: String::new(),
        model: String::new(),
        worker: None,
        worker_wait_ms: 0,
    };
    let result = gpujobs::JobResult {
        output: serde_json::Value::Null,
        blobs: Default::default(),
        summary: String::new(),
        fingerprint: Default::default(),
        device: NoopExec.device(),
        timings: Default::default(),
        held_by: None,
    };
    let envs: Vec<JobEnvelope> = (0..n)
        .map(|_| JobEnvelope::new(Noop).expect("serializes"))
        .collect();
    let start = Instant::now();
    for env in envs {
        q.submit(env).await.expect("submit");
    }
    let mut left = n;
    while left > 0 {
        for inc in q
            .take_submitted("s", 1024, Duration::ZERO)
            .await
            .expect("take")
        {
            q.place(&inc, decision.clone()).await.expect("place");
        }
        for d in q
            .fetch(
                DeviceClass::Cpu,
                "w",
                1024,
                Duration::from_secs(30),
                Duration::ZERO,
            )
            .await
            .expect("fetch")
        {
            q.complete(&d.lease, result.clone())
                .await
                .expect("complete");
            left -= 1;
        }
    }
    out.insert(
        "embedded_ops_jobs_per_s",
        n as f64 / start.elapsed().as_secs_f64(),
    );
    let mut wc = WorkerConfig::new(NoopExec.device());
    wc.concurrency = 256;
    wc.batch = 256;
    let cluster = EmbeddedCluster::builder().worker(wc, registry()).start();
    let envs: Vec<JobEnvelope> = (0..n)
        .map(|_| JobEnvelope::new(Noop).expect("serializes"))
        .collect();
    let start = Instant::now();
    let mut ids = Vec::new();
    for env in envs {
        ids.push(cluster.queue().submit(env).await.expect("submit"));
    }
    for id in &ids {
        cluster
            .queue()
            .wait(id, Duration::from_secs(60))
            .await
            .expect("wait");
    }
    out.insert(
        "embedded_e2e_jobs_per_s",
        n as f64 / start.elapsed().as_secs_f64(),
    );
    cluster.shutdown().await;
    out
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` lists criterion benches; this harness has none.
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = RedisServer::start(false);
    let xadd_50 = redis_benchmark(server.port, 50, 1);
    let xadd_50_p16 = redis_benchmark(server.port, 50, 16);
    let xadd_1 = redis_benchmark(server.port, 1, 1);
    let r = rt.block_on(redis_part(server.url(), 1, 30_000));
    let e = rt.block_on(embedded_part());
    // A local three-master Redis Cluster on the same two cores: correctness is tested
    // elsewhere; here, what one and three partitions (hash tags) get.
    let cluster = RedisCluster::start();
    let c1 = rt.block_on(redis_part(cluster.url(), 1, 20_000));
    drop(cluster);
    let cluster = RedisCluster::start();
    let c3 = rt.block_on(redis_part(cluster.url(), 3, 20_000));
    drop(cluster);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!(
        "machine: {cpu}, {} threads; redis-server {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        server.url()
    );
    println!();
    println!("| measure | value | anchor (same server, same run) | ratio |");
    println!("|---|---|---|---|");
    println!("| redis-benchmark XADD, 50 clients | {xadd_50:.0}/s | - | - |");
    println!("| redis-benchmark XADD, 50 clients, pipeline 16 | {xadd_50_p16:.0}/s | - | - |");
    println!("| redis-benchmark XADD, 1 client | {xadd_1:.0}/s | - | - |");
    println!(
        "| end-to-end no-op jobs through Redis (1 scheduler, 2 workers) | {:.0} jobs/s | XADD 50 clients {xadd_50:.0}/s | {:.3} |",
        r["jobs_per_s"],
        r["jobs_per_s"] / xadd_50
    );
    println!(
        "| submits alone (64 concurrent clients) | {:.0}/s | XADD 50 clients | {:.3} |",
        r["submits_per_s"],
        r["submits_per_s"] / xadd_50
    );
    println!(
        "| submit-to-result latency, idle: p50 / p99 | {:.2} / {:.2} ms | - | - |",
        r["idle_p50_ms"], r["idle_p99_ms"]
    );
    println!(
        "| submit-to-result latency under the load above: p50 / p99 | {:.1} / {:.1} ms | - | - |",
        r["load_p50_ms"], r["load_p99_ms"]
    );
    for (parts, c) in [(1, &c1), (3, &c3)] {
        println!(
            "| three-master local Redis Cluster, {parts} partition(s): end to end / idle p50 | {:.0} jobs/s / {:.2} ms | single Redis above {:.0} jobs/s | {:.3} |",
            c["jobs_per_s"],
            c["idle_p50_ms"],
            r["jobs_per_s"],
            c["jobs_per_s"] / r["jobs_per_s"]
        );
    }
    for (what, c) in [("single Redis", &r), ("Cluster, 3 partitions", &c3)] {
        println!(
            "| {what}: slowest of 10 jobs, each after 1 s of quiet | {:.2} ms | - | - |",
            c["quiet_max_ms"]
        );
    }
    println!(
        "| embedded queue, queue operations alone | {:.0} jobs/s | - | - |",
        e["embedded_ops_jobs_per_s"]
    );
    println!(
        "| embedded queue, end to end with a worker | {:.0} jobs/s | - | - |",
        e["embedded_e2e_jobs_per_s"]
    );
}
