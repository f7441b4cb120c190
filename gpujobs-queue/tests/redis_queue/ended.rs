//! `RedisQueue::ended_since`: the jobs that ended, read from the finished and events
//! streams of every partition, for clients waiting on many jobs.

use super::config_at;
use gpujobs_core::conformance::{job, result, submit_and_place};
use gpujobs_core::model::envelope::now_ms;
use gpujobs_core::queue::{AdminQueue, LeaseQueue, SubmitQueue};
use gpujobs_core::{DeviceClass, JobError, JobState};
use gpujobs_queue::RedisQueue;
use gpujobs_queue::testkit::RedisServer;
use std::collections::HashMap;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_jobs_are_read_from_the_streams_of_every_partition() {
    let server = RedisServer::start(false);
    let q = RedisQueue::connect(config_at(server.url(), "ended", Some(3)))
        .await
        .unwrap();
    let mut cursor = q.ended_cursor(now_ms().saturating_sub(10_000));
    assert!(q.ended_since(&mut cursor, 100).await.unwrap().is_empty());

    // Six jobs: three succeed, one fails for good, one is cancelled before it runs, one
    // is still running.
    let mut ids = Vec::new();
    for seed in 0..6 {
        ids.push(submit_and_place(&q, job(seed)).await);
    }
    let cancelled = ids[5].clone();
    q.cancel(&cancelled).await.unwrap();
    let mut expected = HashMap::new();
    let mut done = 0;
    while done < 5 {
        let got = q
            .fetch(
                DeviceClass::Cpu,
                "w",
                5,
                Duration::from_secs(30),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert!(!got.is_empty(), "the placed jobs are fetched");
        for d in got {
            let id = d.envelope.id.clone();
            match done {
                0..=2 => {
                    q.complete(&d.lease, result()).await.unwrap();
                    expected.insert(id, JobState::Succeeded);
                }
                3 => {
                    q.fail(&d.lease, &JobError::permanent("bad input"))
                        .await
                        .unwrap();
                    expected.insert(id, JobState::Failed);
                }
                _ => {} // still running
            }
            done += 1;
        }
    }
    expected.insert(cancelled, JobState::Cancelled);

    let mut seen = HashMap::new();
    for (id, state) in q.ended_since(&mut cursor, 100).await.unwrap() {
        seen.insert(id, state);
    }
    assert_eq!(
        seen, expected,
        "every ending, with its state, and nothing else"
    );
    // The cursor moved past them: nothing new until something else ends.
    assert!(q.ended_since(&mut cursor, 100).await.unwrap().is_empty());
    // A small count reads the same in several calls.
    let mut again = q.ended_cursor(now_ms().saturating_sub(60_000));
    let mut paged = HashMap::new();
    loop {
        let page = q.ended_since(&mut again, 1).await.unwrap();
        if page.is_empty() {
            break;
        }
        paged.extend(page);
    }
    assert_eq!(paged, expected);

    // A failure retried since is not an ending any more: a reader that starts before
    // the failure sees the job only once it has ended again.
    let failed = expected
        .iter()
        .find(|(_, s)| **s == JobState::Failed)
        .map(|(id, _)| id.clone())
        .unwrap();
    assert!(q.retry_dead(&failed).await.unwrap());
    let mut stale = q.ended_cursor(now_ms().saturating_sub(60_000));
    let seen: HashMap<_, _> = q
        .ended_since(&mut stale, 100)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert!(!seen.contains_key(&failed), "queued again, not failed");
    assert_eq!(seen.len(), expected.len() - 1);
}
