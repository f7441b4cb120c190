//! The worker role ([`crate::queue::LeaseQueue`]): leases that expire and are reclaimed, retries with backoff, permanent failures, batch completion fenced per lease, releases that cost no attempt.

use super::*;
use crate::model::error::{JobError, QueueError};
use crate::model::state::JobState;
use crate::queue::{FailOutcome, Queue};
use std::time::Duration;

/// A lease that is not renewed expires; another worker reclaims the job with a new
/// attempt, and the first worker's late result is refused.
pub async fn lease_expiry_is_reclaimed(q: &dyn Queue) {
    let id = submit_and_place(q, job(2)).await;
    let first = fetch_one(q, "w1", Duration::from_millis(100)).await;
    assert!(
        q.reclaim_expired(LANE, "w2", 10, LEASE)
            .await
            .expect("reclaim")
            .is_empty(),
        "reclaimed before expiry"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut again = q
        .reclaim_expired(LANE, "w2", 10, LEASE)
        .await
        .expect("reclaim");
    assert_eq!(again.len(), 1);
    let second = again.remove(0);
    assert_eq!(second.lease.job_id, id);
    assert_eq!(second.envelope.attempts, 2);
    assert!(matches!(
        q.complete(&first.lease, result()).await,
        Err(QueueError::LeaseLost(_))
    ));
    q.complete(&second.lease, result()).await.expect("complete");
    let rec = q.status(&id).await.expect("status").expect("record");
    assert_eq!((rec.state, rec.attempts), (JobState::Succeeded, 2));
}

/// Two attempts of one job both finish: the first stalls past its lease, the job is
/// reclaimed and the second attempt's result recorded, then the first resumes and
/// completes with other values. It is refused, and the recorded outputs stay the
/// second attempt's (in Redis, in object storage, and as any worker reads them).
pub async fn a_late_attempt_cannot_replace_a_recorded_result(q: &dyn Queue) {
    let id = submit_and_place(q, job(5)).await;
    let first = fetch_one(q, "stalled", Duration::from_millis(100)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut again = q
        .reclaim_expired(LANE, "fresh", 10, LEASE)
        .await
        .expect("reclaim");
    assert_eq!(again.len(), 1, "the stalled attempt's job is reclaimed");
    let second = again.remove(0);
    // 80 KB: large enough that a queue may store it apart from the completion itself.
    q.complete(&second.lease, result_with(vec![2.0; 20_000]))
        .await
        .expect("the second attempt completes");
    let late = q
        .complete(&first.lease, result_with(vec![9.0; 20_000]))
        .await;
    assert!(
        matches!(late, Err(QueueError::LeaseLost(_))),
        "a late attempt is refused: {late:?}"
    );
    let rec = q.status(&id).await.expect("status").expect("record");
    assert_eq!(rec.state, JobState::Succeeded);
    let c = crate::model::tensor::OutputRef {
        job: id.clone(),
        output: "c".into(),
    };
    let crate::queue::ParentOutput::Ready(t) = q.read_output(&c).await.expect("read_output") else {
        panic!("the recorded output exists");
    };
    let values = t.values().expect("values");
    assert!(
        values.len() == 20_000 && values.iter().all(|&v| v == 2.0),
        "the recorded attempt's outputs stand"
    );
}

/// Temporary failures retry until attempts run out, then the job is dead-lettered with
/// its error; `retry_dead` runs it again.
pub async fn retries_then_dead_letter_then_retry(q: &dyn Queue) {
    let id = submit_and_place(q, job(3).with_max_attempts(2)).await;
    let d = fetch_one(q, "w1", LEASE).await;
    let outcome = q
        .fail(&d.lease, &JobError::temporary("flaky device"))
        .await
        .expect("fail");
    assert!(
        matches!(outcome, FailOutcome::Retrying { attempts: 1, .. }),
        "{outcome:?}"
    );
    let d = fetch_one(q, "w1", LEASE).await;
    assert_eq!(d.envelope.attempts, 2);
    let outcome = q
        .fail(&d.lease, &JobError::temporary("flaky device"))
        .await
        .expect("fail");
    assert_eq!(outcome, FailOutcome::Dead);
    assert_eq!(state(q, &id).await, JobState::Dead);
    let dead = q.dead_letters(100).await.expect("dead letters");
    let letter = dead
        .iter()
        .find(|d| d.id == id.as_str())
        .expect("in dead letters");
    assert!(letter.reason.contains("flaky device"), "{}", letter.reason);
    assert!(q.retry_dead(&id).await.expect("retry_dead"));
    assert!(
        !q.dead_letters(100)
            .await
            .expect("dead letters")
            .iter()
            .any(|d| d.id == id.as_str())
    );
    let taken = q
        .take_submitted("conformance-sched", 10, WAIT)
        .await
        .expect("take");
    assert_eq!(taken.len(), 1);
    q.place(&taken[0], decision()).await.expect("place");
    let d = fetch_one(q, "w1", LEASE).await;
    assert_eq!(d.envelope.attempts, 1);
    q.complete(&d.lease, result()).await.expect("complete");
    assert_eq!(state(q, &id).await, JobState::Succeeded);
}

/// A permanent error ends the job as failed at once, in the dead-letter list.
pub async fn permanent_failure_is_not_retried(q: &dyn Queue) {
    let id = submit_and_place(q, job(4).with_max_attempts(5)).await;
    let d = fetch_one(q, "w1", LEASE).await;
    assert_eq!(
        q.fail(&d.lease, &JobError::permanent("bad shape"))
            .await
            .expect("fail"),
        FailOutcome::Failed
    );
    let rec = q.status(&id).await.expect("status").expect("record");
    assert_eq!((rec.state, rec.attempts), (JobState::Failed, 1));
    assert!(
        q.dead_letters(100)
            .await
            .expect("dead")
            .iter()
            .any(|d| d.id == id.as_str())
    );
    assert!(
        q.fetch(LANE, "w1", 1, LEASE, Duration::from_millis(100))
            .await
            .expect("fetch")
            .is_empty()
    );
}

/// A batch of completions records each job once; a stale lease in the batch is
/// refused alone.
pub async fn complete_batch_records_each_and_fences_each(q: &dyn Queue) {
    let mut ids = Vec::new();
    for seed in 0..3 {
        ids.push(submit_and_place(q, job(300 + seed)).await);
    }
    let mut leases = Vec::new();
    while leases.len() < 3 {
        let got = q.fetch(LANE, "wb", 3, LEASE, WAIT).await.expect("fetch");
        assert!(!got.is_empty(), "jobs vanished");
        leases.extend(got.into_iter().map(|d| d.lease));
    }
    let mut stale = leases[1].clone();
    stale.attempt += 1;
    let batch = vec![
        (leases[0].clone(), result()),
        (stale, result()),
        (leases[2].clone(), result()),
    ];
    let answers = q.complete_batch(batch).await;
    assert_eq!(answers.len(), 3);
    assert!(answers[0].is_ok() && answers[2].is_ok(), "{answers:?}");
    assert!(
        matches!(answers[1], Err(QueueError::LeaseLost(_))),
        "{answers:?}"
    );
    assert_eq!(state(q, &leases[0].job_id).await, JobState::Succeeded);
    assert_eq!(state(q, &leases[2].job_id).await, JobState::Succeeded);
    assert_eq!(state(q, &leases[1].job_id).await, JobState::Running);
    q.complete(&leases[1], result())
        .await
        .expect("the real lease completes");
    assert!(
        q.complete_batch(vec![(leases[0].clone(), result())]).await[0].is_err(),
        "a second completion is refused"
    );
    for id in &ids {
        assert_eq!(state(q, id).await, JobState::Succeeded);
    }
}

/// A job given back at shutdown is fetched again without losing an attempt.
pub async fn release_does_not_count_an_attempt(q: &dyn Queue) {
    let id = submit_and_place(q, job(8)).await;
    let d = fetch_one(q, "w1", LEASE).await;
    q.release(&d.lease).await.expect("release");
    assert_eq!(state(q, &id).await, JobState::Placed);
    let d = fetch_one(q, "w2", LEASE).await;
    assert_eq!(d.lease.job_id, id);
    assert_eq!(d.envelope.attempts, 1);
    q.complete(&d.lease, result()).await.expect("complete");
}
