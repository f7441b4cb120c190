//! The operator role ([`crate::queue::AdminQueue`]): heartbeats, live workers and lane statistics.

use super::*;
use crate::model::device::DeviceInfo;
use crate::model::envelope::now_ms;
use crate::model::id::JobId;
use crate::queue::{Queue, WorkerInfo};

/// Heartbeats make a worker visible until it deregisters; lane stats count jobs.
pub async fn heartbeats_and_lane_stats(q: &dyn Queue) {
    let info = WorkerInfo {
        id: "conformance-worker".into(),
        lane: LANE,
        device: DeviceInfo {
            class: LANE,
            name: "test".into(),
            ordinal: 0,
        },
        concurrency: 2,
        in_flight: 0,
        jobs_done: 0,
        jobs_failed: 0,
        started_ms: now_ms(),
        last_seen_ms: now_ms(),
        cached_jobs: vec![JobId::parse("{g}cached").expect("a valid id")],
        cache_bytes: 4096,
        locality: true,
    };
    q.heartbeat(&info).await.expect("heartbeat");
    assert!(
        q.workers()
            .await
            .expect("workers")
            .iter()
            .any(|w| w.id == info.id && w.concurrency == 2 && w.cached_jobs == info.cached_jobs)
    );
    q.deregister(&info.id).await.expect("deregister");
    assert!(
        !q.workers()
            .await
            .expect("workers")
            .iter()
            .any(|w| w.id == info.id)
    );

    let ids = [
        submit_and_place(q, job(10)).await,
        submit_and_place(q, job(11)).await,
    ];
    let stats = q.lane_stats().await.expect("stats");
    let cpu = stats.iter().find(|s| s.lane == LANE).expect("cpu lane");
    assert_eq!((cpu.ready, cpu.in_flight), (2, 0));
    assert!(cpu.backlog_s > 0.0);
    let d = fetch_one(q, "w1", LEASE).await;
    let stats = q.lane_stats().await.expect("stats");
    let cpu = stats.iter().find(|s| s.lane == LANE).expect("cpu lane");
    assert_eq!((cpu.ready, cpu.in_flight), (1, 1));
    q.complete(&d.lease, result()).await.expect("complete");
    for id in &ids {
        q.cancel(id).await.expect("cancel");
    }
}
