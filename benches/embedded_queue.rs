//! Throughput of the embedded queue (criterion): the queue operations alone, one after
//! another in one task (`queue_ops_10k`, envelopes built inside the timing as before)
//! and as a pipeline (`queue_ops_pipelined_10k`: a submitter, a scheduler and a worker
//! as concurrent tasks on a runtime with one thread per core, envelopes built before
//! the timing, as a service's own tasks would use the queue); and tiny jobs end to end
//! through the scheduler and a worker.
//!
//! `cargo bench --bench embedded_queue`.

#[path = "common/noop.rs"]
mod noop;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gpujobs::queue::{LeaseQueue, ScheduleQueue, SubmitQueue};
use gpujobs::{
    DeviceClass, EmbeddedCluster, JobEnvelope, MemoryQueue, PlacementDecision, Registry,
    WorkerConfig,
};
use noop::{Noop, NoopExec};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const JOBS: u64 = 10_000;

fn decision() -> PlacementDecision {
    PlacementDecision {
        lane: DeviceClass::Cpu,
        estimates: BTreeMap::new(),
        run_estimate_s: 0.0,
        reason: String::new(),
        model: String::new(),
        worker: None,
        worker_wait_ms: 0,
    }
}

fn noop_result() -> gpujobs::JobResult {
    gpujobs::JobResult {
        output: serde_json::Value::Null,
        blobs: Default::default(),
        summary: String::new(),
        fingerprint: Default::default(),
        device: NoopExec.device(),
        timings: Default::default(),
        held_by: None,
    }
}

fn envelopes() -> Vec<JobEnvelope> {
    (0..JOBS)
        .map(|_| JobEnvelope::new(Noop).expect("serializes"))
        .collect()
}

/// submit → take → place → fetch → complete for `JOBS` jobs, in batches, no workers.
async fn queue_ops(q: &MemoryQueue) {
    let envs = envelopes();
    let result = noop_result();
    for env in envs {
        q.submit(env).await.expect("submit");
    }
    let mut left = JOBS;
    while left > 0 {
        for inc in q
            .take_submitted("s", 256, Duration::ZERO)
            .await
            .expect("take")
        {
            q.place(&inc, decision()).await.expect("place");
        }
        for d in q
            .fetch(
                DeviceClass::Cpu,
                "w",
                256,
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
}

/// The same operations as three concurrent tasks: a submitter, a scheduler (take, place
/// the batch) and a worker (fetch, complete a batch at once), as the services batch.
async fn pipelined(q: Arc<MemoryQueue>, envs: Vec<JobEnvelope>) {
    let submitter = {
        let q = q.clone();
        tokio::spawn(async move {
            for env in envs {
                q.submit(env).await.expect("submit");
            }
        })
    };
    let scheduler = {
        let q = q.clone();
        tokio::spawn(async move {
            let mut left = JOBS;
            while left > 0 {
                let wait = Duration::from_millis(50);
                let taken = q.take_submitted("s", 256, wait).await.expect("take");
                left -= taken.len() as u64;
                // As the scheduler service does: decide every entry, place them at once.
                let batch: Vec<_> = taken.into_iter().map(|inc| (inc, decision())).collect();
                q.place_batch(&batch).await.expect("place");
            }
        })
    };
    let result = noop_result();
    let mut left = JOBS;
    while left > 0 {
        let wait = Duration::from_millis(50);
        let lease = Duration::from_secs(30);
        let got = q
            .fetch(DeviceClass::Cpu, "w", 256, lease, wait)
            .await
            .expect("fetch");
        let batch: Vec<_> = got.into_iter().map(|d| (d.lease, result.clone())).collect();
        for done in q.complete_batch(batch).await {
            done.expect("complete");
            left -= 1;
        }
    }
    submitter.await.expect("submitter");
    scheduler.await.expect("scheduler");
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("embedded_queue");
    g.throughput(Throughput::Elements(JOBS));
    g.bench_function("queue_ops_10k", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let q = MemoryQueue::default();
                    let t = Instant::now();
                    queue_ops(&q).await;
                    total += t.elapsed();
                }
                total
            })
        })
    });
    g.bench_function("queue_ops_pipelined_10k", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let q = Arc::new(MemoryQueue::default());
                    let envs = envelopes();
                    let t = Instant::now();
                    // A task itself, so all three run on the runtime's threads.
                    tokio::spawn(pipelined(q.clone(), envs))
                        .await
                        .expect("pipeline");
                    total += t.elapsed();
                    // Dropped here, outside the timing, as in `queue_ops_10k`.
                    drop(q);
                }
                total
            })
        })
    });
    g.bench_function("end_to_end_10k_noop_jobs", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut reg = Registry::new();
                    reg.register::<Noop, _>(&NoopExec.device(), NoopExec);
                    let mut wc = WorkerConfig::new(NoopExec.device());
                    wc.concurrency = 64;
                    wc.batch = 64;
                    let cluster = EmbeddedCluster::builder().worker(wc, Arc::new(reg)).start();
                    let envs: Vec<JobEnvelope> = (0..JOBS)
                        .map(|_| JobEnvelope::new(Noop).expect("serializes"))
                        .collect();
                    let t = Instant::now();
                    let mut ids = Vec::with_capacity(envs.len());
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
                    total += t.elapsed();
                    cluster.shutdown().await;
                }
                total
            })
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
