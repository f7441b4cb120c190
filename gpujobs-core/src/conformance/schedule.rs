//! The scheduler role ([`crate::queue::ScheduleQueue`]): priorities, and entries rejected to dead-letter.

use super::*;
use crate::model::envelope::Priority;
use crate::model::state::JobState;
use crate::queue::Queue;

/// A high-priority job placed behind a backlog of normal ones is among the next
/// `window` fetched (3 for one queue); the backlog is then drained.
pub async fn priorities_overtake_a_backlog(q: &dyn Queue, window: usize) {
    for seed in 0..20 {
        submit_and_place(q, job(100 + seed)).await;
    }
    let high = submit_and_place(q, job(200).with_priority(Priority::High)).await;
    let mut seen = Vec::new();
    for _ in 0..window {
        let d = fetch_one(q, "w1", LEASE).await;
        seen.push(d.lease.job_id.clone());
        q.complete(&d.lease, result()).await.expect("complete");
    }
    assert!(
        seen.contains(&high),
        "high-priority job not among the first {window} fetched"
    );
    let mut drained = window;
    while drained < 21 {
        let got = q.fetch(LANE, "w1", 8, LEASE, WAIT).await.expect("fetch");
        assert!(!got.is_empty(), "backlog vanished after {drained} jobs");
        for d in got {
            q.complete(&d.lease, result()).await.expect("complete");
            drained += 1;
        }
    }
}

/// A rejected submission ends dead, in the dead-letter list with its reason.
pub async fn reject_goes_to_dead_letter(q: &dyn Queue) {
    let id = q.submit(job(9)).await.expect("submit");
    let taken = q
        .take_submitted("conformance-sched", 10, WAIT)
        .await
        .expect("take");
    assert_eq!(taken.len(), 1);
    q.reject(&taken[0], "unknown job kind `nope`")
        .await
        .expect("reject");
    assert_eq!(state(q, &id).await, JobState::Dead);
    let dead = q.dead_letters(100).await.expect("dead");
    assert!(
        dead.iter()
            .any(|d| d.id == id.as_str() && d.reason.contains("nope"))
    );
}
