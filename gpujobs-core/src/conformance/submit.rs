//! The client role ([`crate::queue::SubmitQueue`]): a job's whole life as a client sees it, and cancel before and during a run.

use super::*;
use crate::model::error::{JobError, QueueError};
use crate::model::id::JobId;
use crate::model::state::JobState;
use crate::queue::{CancelOutcome, FailOutcome, Queue};
use std::time::Duration;

/// Submit → place → fetch → renew → complete, and a second complete is refused.
pub async fn happy_path(q: &dyn Queue) {
    let before = crate::model::envelope::now_us();
    let id = q.submit(job(1)).await.expect("submit");
    let rec = q.status(&id).await.expect("status").expect("record");
    assert_eq!(rec.state, JobState::Queued);
    assert!(rec.created_us >= before.saturating_sub(1_000_000));
    let taken = q
        .take_submitted("conformance-sched", 10, WAIT)
        .await
        .expect("take");
    assert_eq!(taken.len(), 1);
    let env = taken[0].job.as_ref().expect("readable");
    assert_eq!(env.id, id);
    q.place(&taken[0], decision()).await.expect("place");
    assert_eq!(state(q, &id).await, JobState::Placed);
    let d = fetch_one(q, "w1", LEASE).await;
    assert_eq!(d.lease.job_id, id);
    assert_eq!(d.envelope.attempts, 1);
    assert_eq!(state(q, &id).await, JobState::Running);
    assert!(
        !q.renew(&d.lease, LEASE)
            .await
            .expect("renew")
            .cancel_requested
    );
    q.complete(&d.lease, result()).await.expect("complete");
    let rec = q.status(&id).await.expect("status").expect("record");
    assert_eq!(rec.state, JobState::Succeeded);
    assert_eq!(rec.attempts, 1);
    assert_eq!(rec.result.as_ref().map(|r| r.summary.as_str()), Some("ok"));
    assert!(matches!(
        q.complete(&d.lease, result()).await,
        Err(QueueError::LeaseLost(_))
    ));
}

/// A job cancelled before a worker takes it never runs.
pub async fn cancel_before_start_never_runs(q: &dyn Queue) {
    let id = submit_and_place(q, job(5)).await;
    assert_eq!(
        q.cancel(&id).await.expect("cancel"),
        CancelOutcome::Cancelled
    );
    assert!(
        q.fetch(LANE, "w1", 1, LEASE, Duration::from_millis(200))
            .await
            .expect("fetch")
            .is_empty()
    );
    assert_eq!(state(q, &id).await, JobState::Cancelled);
    // Cancelled while still waiting for the scheduler.
    let id = q.submit(job(6)).await.expect("submit");
    assert_eq!(
        q.cancel(&id).await.expect("cancel"),
        CancelOutcome::Cancelled
    );
    let taken = q
        .take_submitted("conformance-sched", 10, Duration::from_millis(200))
        .await
        .expect("take");
    for inc in &taken {
        q.place(inc, decision()).await.expect("place");
    }
    assert!(
        q.fetch(LANE, "w1", 1, LEASE, Duration::from_millis(200))
            .await
            .expect("fetch")
            .is_empty()
    );
    assert_eq!(state(q, &id).await, JobState::Cancelled);
    assert_eq!(
        q.cancel(&id).await.expect("cancel"),
        CancelOutcome::AlreadyFinished(JobState::Cancelled)
    );
    assert_eq!(
        q.cancel(&JobId::new()).await.expect("cancel"),
        CancelOutcome::NotFound
    );
}

/// Cancelling a running job is relayed through lease renewal, and it ends cancelled.
pub async fn cancel_while_running(q: &dyn Queue) {
    let id = submit_and_place(q, job(7)).await;
    let d = fetch_one(q, "w1", LEASE).await;
    assert_eq!(
        q.cancel(&id).await.expect("cancel"),
        CancelOutcome::Requested
    );
    assert!(
        q.renew(&d.lease, LEASE)
            .await
            .expect("renew")
            .cancel_requested
    );
    assert_eq!(
        q.fail(&d.lease, &JobError::cancelled())
            .await
            .expect("fail"),
        FailOutcome::Cancelled
    );
    assert_eq!(state(q, &id).await, JobState::Cancelled);
    assert!(
        !q.dead_letters(100)
            .await
            .expect("dead")
            .iter()
            .any(|d| d.id == id.as_str())
    );
}
