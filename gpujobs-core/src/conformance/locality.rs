//! Placement by locality, as every queue must carry it out: a job placed on a worker
//! (the one holding its inputs) is offered to that worker alone until its wait ends,
//! then to any worker of the lane; a released graph job names the worker that made
//! each parent's output.

use super::{LANE, LEASE, decision, fetch_one, job, reads, result_with, take_until as take};
use crate::model::decision::PlacementDecision;
use crate::model::envelope::JobEnvelope;
use crate::model::id::JobId;
use crate::model::state::JobState;
use crate::queue::{CancelOutcome, Queue};
use std::time::Duration;

fn near(worker: &str, wait: Duration) -> PlacementDecision {
    PlacementDecision {
        worker: Some(worker.into()),
        worker_wait_ms: wait.as_millis() as u64,
        ..decision()
    }
}

async fn submit_near(q: &dyn Queue, env: JobEnvelope, worker: &str, wait: Duration) -> JobId {
    let id = q.submit(env).await.expect("submit");
    let inc = take(q, &id).await;
    q.place(&inc, near(worker, wait)).await.expect("place");
    id
}

async fn fetch_none(q: &dyn Queue, consumer: &str, wait: Duration) {
    let got = q
        .fetch(LANE, consumer, 4, LEASE, wait)
        .await
        .expect("fetch");
    let ids: Vec<String> = got.iter().map(|d| d.lease.job_id.to_string()).collect();
    assert!(ids.is_empty(), "{consumer} was handed {ids:?}");
}

/// A released child names the worker that ran its parent; placed on that worker, only
/// it gets the job.
pub async fn a_released_child_names_its_parents_worker(q: &dyn Queue) {
    let mut g = crate::model::graph::Graph::new();
    let p = g.add_envelope("p", reads(&[])).expect("add");
    let k = g.add_envelope("k", reads(&[&p])).expect("add");
    q.submit_graph(g.into_jobs()).await.expect("submit_graph");
    let inc = take(q, &p).await;
    assert!(
        inc.holders.is_empty(),
        "a job without parents has no holders"
    );
    q.place(&inc, decision()).await.expect("place");
    let d = fetch_one(q, "near-a", LEASE).await;
    q.complete(&d.lease, result_with(vec![1.0; 4]))
        .await
        .expect("complete p");
    let inc = take(q, &k).await;
    assert_eq!(inc.holders, vec![(p.clone(), "near-a".to_string())]);
    q.place(&inc, near("near-a", Duration::from_secs(30)))
        .await
        .expect("place k");
    assert_eq!(
        q.status(&k).await.expect("status").expect("record").state,
        JobState::Placed
    );
    fetch_none(q, "near-b", Duration::from_millis(150)).await;
    let d = fetch_one(q, "near-a", LEASE).await;
    assert_eq!(d.lease.job_id, k);
    q.complete(&d.lease, result_with(vec![2.0; 4]))
        .await
        .expect("complete k");
}

/// A worker that deregisters (a graceful stop) hands the jobs placed on it to its lane
/// at once.
pub async fn a_leaving_worker_hands_its_jobs_to_the_lane(q: &dyn Queue) {
    let id = submit_near(q, job(42), "near-leaving", Duration::from_secs(60)).await;
    fetch_none(q, "near-b", Duration::from_millis(50)).await;
    q.deregister("near-leaving").await.expect("deregister");
    let d = fetch_one(q, "near-b", LEASE).await;
    assert_eq!(d.lease.job_id, id);
    q.complete(&d.lease, super::result())
        .await
        .expect("complete");
}

/// A job whose worker does not take it by the end of its wait (busy, or gone) goes to
/// any worker of the lane once a reclaim or the scheduler's sweep has run; a cancelled
/// one goes nowhere.
pub async fn a_job_its_worker_does_not_take_goes_to_the_lane(q: &dyn Queue) {
    let wait = Duration::from_millis(300);
    let id = submit_near(q, job(40), "near-gone", wait).await;
    let ready: u64 = q
        .lane_stats()
        .await
        .expect("lane_stats")
        .iter()
        .filter(|s| s.lane == LANE)
        .map(|s| s.ready)
        .sum();
    assert_eq!(
        ready, 1,
        "a job placed on a worker counts as ready on its lane"
    );
    fetch_none(q, "near-b", Duration::from_millis(50)).await;
    tokio::time::sleep(wait + Duration::from_millis(100)).await;
    q.reclaim_expired(LANE, "near-b", 10, LEASE)
        .await
        .expect("reclaim");
    let d = fetch_one(q, "near-b", LEASE).await;
    assert_eq!(d.lease.job_id, id);
    q.complete(&d.lease, super::result())
        .await
        .expect("complete");

    // The scheduler's sweep moves it as well, without any worker's reclaim; not before
    // its wait has passed.
    let id = submit_near(q, job(43), "near-gone", wait).await;
    q.release_overdue_near().await.expect("sweep");
    fetch_none(q, "near-b", Duration::from_millis(50)).await;
    tokio::time::sleep(wait + Duration::from_millis(100)).await;
    q.release_overdue_near().await.expect("sweep");
    let d = fetch_one(q, "near-b", LEASE).await;
    assert_eq!(d.lease.job_id, id);
    q.complete(&d.lease, super::result())
        .await
        .expect("complete");

    let id = submit_near(q, job(41), "near-gone", Duration::from_secs(60)).await;
    assert_eq!(
        q.cancel(&id).await.expect("cancel"),
        CancelOutcome::Cancelled
    );
    fetch_none(q, "near-gone", Duration::from_millis(50)).await;
    q.reclaim_expired(LANE, "near-b", 10, LEASE)
        .await
        .expect("reclaim");
    fetch_none(q, "near-b", Duration::from_millis(50)).await;
}
