//! The wake-up channel of several partitions: the scripts announce work on it, an idle
//! worker and an idle scheduler are woken by it (on a single Redis and across the nodes
//! of a Redis Cluster) and read only the partitions it named, and work whose wake-up
//! never comes is still found by the poll.

use super::{config_at, query};
use futures_util::StreamExt;
use gpujobs_core::DeviceClass;
use gpujobs_core::conformance::{decision, job, submit_and_place};
use gpujobs_core::queue::{LeaseQueue, ScheduleQueue, SubmitQueue};
use gpujobs_queue::testkit::{RedisCluster, RedisServer};
use gpujobs_queue::{RedisConfig, RedisQueue};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The next message of a subscription, within 10 s.
async fn next_message(
    messages: &mut (impl futures_util::Stream<Item = redis::Msg> + Unpin),
) -> String {
    let msg = tokio::time::timeout(Duration::from_secs(10), messages.next())
        .await
        .expect("a message within 10 s")
        .expect("subscription open");
    String::from_utf8_lossy(msg.get_payload_bytes()).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_announce_work_with_several_partitions_and_stay_quiet_with_one() {
    let server = RedisServer::start(false);
    for (ns, parts) in [("wake3", 3), ("wake1", 1)] {
        let q = RedisQueue::connect(config_at(server.url(), ns, Some(parts)))
            .await
            .unwrap();
        let channel = q.keys().wake();
        let client = redis::Client::open(server.url()).unwrap();
        let mut pubsub = client.get_async_pubsub().await.unwrap();
        pubsub.subscribe(&channel).await.unwrap();
        let mut messages = pubsub.into_on_message();
        let id = submit_and_place(&q, job(1)).await;
        if parts > 1 {
            // Each names the partition the job lives in.
            let prefix = q.keys_of(&id).prefix().to_string();
            assert_eq!(
                next_message(&mut messages).await,
                format!("submit {prefix}")
            );
            assert_eq!(next_message(&mut messages).await, format!("cpu {prefix}"));
        }
        // A marker of our own: with one partition it is the first message heard.
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let _: i64 = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg("marker")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(next_message(&mut messages).await, "marker", "{ns}");
    }
}

/// An idle worker and an idle scheduler, polling only once a minute, are woken by the
/// wake-up of a job placed (submitted) in whichever partition it lands.
async fn woken_within_the_poll(url: String, ns: &str) {
    let mut cfg = config_at(url, ns, Some(3));
    cfg.partition_poll = Duration::from_secs(60);
    let worker = Arc::new(RedisQueue::connect(cfg.clone()).await.unwrap());
    let scheduler = Arc::new(RedisQueue::connect(cfg.clone()).await.unwrap());
    let client = RedisQueue::connect(cfg).await.unwrap();
    let lease = Duration::from_secs(30);
    let wait = Duration::from_secs(40);

    // The scheduler waits for submissions; a submit in any partition wakes it.
    let taking = {
        let s = scheduler.clone();
        tokio::spawn(async move { s.take_submitted("sched", 10, wait).await })
    };
    // Long enough for the subscription to be up and the wait to have grown past the
    // first slices (1 ms doubling): without a wake-up it would now sleep for seconds.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = scheduler.wakeups_heard();
    let start = Instant::now();
    let id = client.submit(job(2)).await.unwrap();
    let taken = taking.await.unwrap().unwrap();
    assert_eq!(taken.len(), 1);
    assert!(
        scheduler.wakeups_heard() > before,
        "woken by the submit's wake-up"
    );
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "long before the poll"
    );

    // The worker waits for jobs; placing one in any partition wakes it.
    let fetching = {
        let w = worker.clone();
        tokio::spawn(async move { w.fetch(DeviceClass::Cpu, "w1", 1, lease, wait).await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = worker.wakeups_heard();
    scheduler.place(&taken[0], decision()).await.unwrap();
    let got = fetching.await.unwrap().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].envelope.id, id);
    assert!(
        worker.wakeups_heard() > before,
        "woken by the placement's wake-up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_readers_are_woken_on_one_redis() {
    let server = RedisServer::start(false);
    woken_within_the_poll(server.url(), "woken").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_readers_are_woken_across_a_redis_cluster() {
    let cluster = RedisCluster::start();
    woken_within_the_poll(cluster.url(), "woken-cluster").await;
}

/// A client that adds a submit entry with a plain XADD publishes nothing: the
/// scheduler's poll still finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_without_a_wake_up_is_found_by_the_poll() {
    let server = RedisServer::start(false);
    let mut cfg: RedisConfig = config_at(server.url(), "unannounced", Some(3));
    cfg.partition_poll = Duration::from_millis(200);
    let q = RedisQueue::connect(cfg).await.unwrap();
    // The subscription is up before the entry is added, so only the poll can find it.
    assert!(
        q.take_submitted("sched", 10, Duration::from_millis(500))
            .await
            .unwrap()
            .is_empty()
    );
    let before = q.wakeups_heard();
    let env = job(3);
    let body = serde_json::to_string(&env).unwrap();
    let stream = q.keys_of(&env.id).submit();
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("job")
        .arg(&body)
        .query_async(&mut conn)
        .await
        .unwrap();
    let taken = q
        .take_submitted("sched", 10, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].job.as_ref().unwrap().id, env.id);
    assert_eq!(q.wakeups_heard(), before, "nothing was published");
}

/// Script calls Redis has run so far (`INFO commandstats`).
async fn script_calls(url: &str) -> u64 {
    let info: String = query(url, redis::cmd("INFO").arg("commandstats")).await;
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// A woken worker reads the partition the wake-up named, and its next fetch reads that
/// partition again (its batch was full, more may wait) instead of every partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn woken_readers_read_only_what_was_announced() {
    let server = RedisServer::start(false);
    let mut cfg = config_at(server.url(), "announced", Some(3));
    cfg.partition_poll = Duration::from_secs(60);
    let worker = RedisQueue::connect(cfg.clone()).await.unwrap();
    let client = RedisQueue::connect(cfg).await.unwrap();
    let lease = Duration::from_secs(30);
    // The first fetch subscribes; the second, by wake-ups, reads every partition once
    // and then waits: its slice is the poll of a minute, so nothing below is a poll.
    for _ in 0..2 {
        let idle = worker
            .fetch(DeviceClass::Cpu, "w1", 1, lease, Duration::from_millis(300))
            .await
            .unwrap();
        assert!(idle.is_empty());
    }
    // Two jobs in one partition.
    let first = job(10);
    let partition = client.keys_of(&first.id).partition();
    let second = (11..)
        .map(job)
        .find(|e| client.keys_of(&e.id).partition() == partition)
        .unwrap();
    let mut ids = vec![
        submit_and_place(&client, first).await,
        submit_and_place(&client, second).await,
    ];
    let before = script_calls(&server.url()).await;
    let mut got = Vec::new();
    for _ in 0..2 {
        let d = worker
            .fetch(DeviceClass::Cpu, "w1", 1, lease, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(d.len(), 1);
        got.push(d[0].envelope.id.clone());
    }
    let none = worker
        .fetch(DeviceClass::Cpu, "w1", 1, lease, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(none.is_empty());
    let calls = script_calls(&server.url()).await - before;
    got.sort();
    ids.sort();
    assert_eq!(got, ids);
    assert_eq!(
        calls, 3,
        "one fetch call each, on the partition named, not three"
    );
}
