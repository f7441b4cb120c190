//! Retention by count (`RedisConfig::keep_succeeded`): past the count, the oldest
//! succeeded jobs' records and output blobs are deleted as new ones succeed; other
//! endings are not counted.

use super::{config_at, query};
use gpujobs_core::JobId;
use gpujobs_core::conformance::{fetch_one, job, result_with, submit_and_place};
use gpujobs_core::queue::{LeaseQueue, SubmitQueue};
use gpujobs_core::{JobError, JobState};
use gpujobs_queue::RedisQueue;
use gpujobs_queue::testkit::RedisServer;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(30);

/// Submits `n` jobs and completes them one by one, in submit order, each with a
/// one-value output blob; returns their ids.
async fn run_in_order(q: &RedisQueue, seeds: std::ops::Range<u64>) -> Vec<JobId> {
    let mut ids = Vec::new();
    for seed in seeds {
        let id = submit_and_place(q, job(seed)).await;
        let d = fetch_one(q, "w", LEASE).await;
        q.complete(&d.lease, result_with(vec![seed as f32]))
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

async fn exists(server: &RedisServer, key: &str) -> bool {
    query::<i64>(&server.url(), redis::cmd("EXISTS").arg(key)).await == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_count_the_oldest_successes_are_forgotten() {
    let server = RedisServer::start(false);
    let mut cfg = config_at(server.url(), "keep", None);
    cfg.keep_succeeded = 4;
    let q = RedisQueue::connect(cfg).await.unwrap();

    // A failure first: not counted, kept (a dead letter stays for retry).
    let failed = submit_and_place(&q, job(100)).await;
    let d = fetch_one(&q, "w", LEASE).await;
    q.fail(&d.lease, &JobError::permanent("bad input"))
        .await
        .unwrap();

    let ids = run_in_order(&q, 0..10).await;
    for (i, id) in ids.iter().enumerate() {
        let rec = q.status(id).await.unwrap();
        let out_blob = format!("{{keep}}:blob:{id}:out:t0");
        if i < 6 {
            assert!(rec.is_none(), "job {i} of 10 is past the count: forgotten");
            assert!(!exists(&server, &out_blob).await, "its output too");
        } else {
            let rec = rec.expect("the newest four are kept");
            assert_eq!(rec.state, JobState::Succeeded);
            let blobs = &rec.result.expect("result").blobs;
            assert_eq!(blobs["t0"].as_slice(), &[i as f32], "with their outputs");
        }
    }
    let rec = q
        .status(&failed)
        .await
        .unwrap()
        .expect("the failure is kept");
    assert_eq!(rec.state, JobState::Failed);
    let mut c = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let listed: i64 = redis::cmd("LLEN")
        .arg("{keep}:succeeded")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(listed, 4, "the list holds what is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_partition_keeps_its_share() {
    let server = RedisServer::start(false);
    let mut cfg = config_at(server.url(), "keep3", Some(3));
    cfg.keep_succeeded = 6;
    let q = RedisQueue::connect(cfg).await.unwrap();
    let ids = run_in_order(&q, 0..30).await;
    let mut kept = 0;
    for id in &ids {
        kept += usize::from(q.status(id).await.unwrap().is_some());
    }
    // Two per partition; the ids spread unevenly, so a partition with fewer than two
    // successes keeps what it has.
    assert!(
        (4..=6).contains(&kept),
        "{kept} of 30 kept with a count of 6 over 3 partitions"
    );
    // Without a count every one stays.
    let server2 = RedisServer::start(false);
    let q2 = RedisQueue::connect(config_at(server2.url(), "keepall", Some(3)))
        .await
        .unwrap();
    let all = run_in_order(&q2, 0..12).await;
    for id in &all {
        assert!(q2.status(id).await.unwrap().is_some());
    }
}

/// Graph jobs go by age only: a child may still have to read a parent's outputs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_of_a_graph_are_not_counted_out() {
    use gpujobs_core::conformance::decision;
    use gpujobs_core::kinds::VectorAdd;
    use gpujobs_core::queue::{GraphQueue, ScheduleQueue};
    use gpujobs_core::{Graph, JobEnvelope, Tensor};
    let server = RedisServer::start(false);
    let mut cfg = config_at(server.url(), "keepg", None);
    cfg.keep_succeeded = 1;
    let q = RedisQueue::connect(cfg).await.unwrap();
    let syn = |seed| Tensor::synthetic(vec![1], seed, 0.0, 1.0);
    let mut g = Graph::new();
    let add = |a, b| JobEnvelope::new(VectorAdd { a, b }).unwrap();
    let a = g.add_envelope("a", add(syn(1), syn(2))).unwrap();
    let b = g
        .add_envelope("b", add(Tensor::output_of(&a, "c", vec![1]), syn(3)))
        .unwrap();
    q.submit_graph(g.into_jobs()).await.unwrap();
    for _ in 0..2 {
        let taken = q
            .take_submitted("s", 8, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(taken.len(), 1);
        q.place(&taken[0], decision()).await.unwrap();
        let d = fetch_one(&q, "w", LEASE).await;
        q.complete(&d.lease, result_with(vec![1.0])).await.unwrap();
    }
    let plain = run_in_order(&q, 0..3).await;
    for id in [&a, &b] {
        let rec = q.status(id).await.unwrap().expect("graph jobs stay");
        assert_eq!(rec.state, JobState::Succeeded);
    }
    assert!(
        q.status(&plain[0]).await.unwrap().is_none(),
        "plain ones are counted"
    );
    assert!(q.status(&plain[2]).await.unwrap().is_some());
}
