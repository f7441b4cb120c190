//! One suite of semantic tests for every [`Queue`] implementation (enable the `testkit`
//! feature). The embedded queue and the Redis queue both run it, so they cannot drift
//! apart.
//!
//! Requirements on the queue under test: it is fresh (no other jobs), and its retry
//! backoff starts at 50 ms or less. Each scenario drains what it created, so
//! [`run_all`] can run them one after another on the same queue.
//!
//! The scenarios are grouped by the queue role they exercise, in files named for the
//! roles of [`crate::queue`]; the helpers they share live here.

mod admin;
mod graph;
pub mod graph_workers;
mod lease;
pub mod locality;
mod schedule;
mod submit;

pub use admin::heartbeats_and_lane_stats;
pub use graph::{
    graph_failures_reach_every_dependant, graph_jobs_wait_for_their_parents,
    graph_submit_refuses_cycles_and_strangers,
};
pub use lease::{
    a_late_attempt_cannot_replace_a_recorded_result, complete_batch_records_each_and_fences_each,
    lease_expiry_is_reclaimed, permanent_failure_is_not_retried, release_does_not_count_an_attempt,
    retries_then_dead_letter_then_retry,
};
pub use schedule::{priorities_overtake_a_backlog, reject_goes_to_dead_letter};
pub use submit::{cancel_before_start_never_runs, cancel_while_running, happy_path};

use crate::kinds::VectorAdd;
use crate::model::decision::PlacementDecision;
use crate::model::device::{DeviceClass, DeviceInfo};
use crate::model::envelope::JobEnvelope;
use crate::model::fingerprint::Fingerprint;
use crate::model::id::JobId;
use crate::model::state::{JobResult, JobState};
use crate::model::timing::Timings;
use crate::queue::{Delivery, Incoming, Queue};
use std::collections::BTreeMap;
use std::time::Duration;

const LANE: DeviceClass = DeviceClass::Cpu;
const LEASE: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_millis(1500);

/// Runs every scenario in turn.
pub async fn run_all(q: &dyn Queue) {
    run_all_partitioned(q, 1).await;
}

/// Runs every scenario on a queue spread over `partitions` independent partitions
/// (the Redis queue's): priorities hold within a partition, and a worker's fetches
/// visit every partition in turn, so a high-priority job overtakes a backlog within
/// `3 · partitions` fetches instead of 3.
pub async fn run_all_partitioned(q: &dyn Queue, partitions: usize) {
    happy_path(q).await;
    lease_expiry_is_reclaimed(q).await;
    a_late_attempt_cannot_replace_a_recorded_result(q).await;
    retries_then_dead_letter_then_retry(q).await;
    permanent_failure_is_not_retried(q).await;
    priorities_overtake_a_backlog(q, 3 * partitions.max(1)).await;
    cancel_before_start_never_runs(q).await;
    cancel_while_running(q).await;
    release_does_not_count_an_attempt(q).await;
    complete_batch_records_each_and_fences_each(q).await;
    reject_goes_to_dead_letter(q).await;
    graph_jobs_wait_for_their_parents(q).await;
    graph_failures_reach_every_dependant(q).await;
    graph_submit_refuses_cycles_and_strangers(q).await;
    locality::a_released_child_names_its_parents_worker(q).await;
    locality::a_job_its_worker_does_not_take_goes_to_the_lane(q).await;
    locality::a_leaving_worker_hands_its_jobs_to_the_lane(q).await;
    heartbeats_and_lane_stats(q).await;
}

/// A tiny vector add (4 synthetic values from `seed`): the job every scenario uses.
pub fn job(seed: u64) -> JobEnvelope {
    JobEnvelope::new(VectorAdd::synthetic(4, seed)).expect("a synthetic job serializes")
}

/// A placement on the CPU lane with no worker preferred.
pub fn decision() -> PlacementDecision {
    PlacementDecision {
        lane: LANE,
        estimates: BTreeMap::from([(LANE, 0.001)]),
        run_estimate_s: 0.001,
        reason: "conformance".into(),
        model: "none".into(),
        worker: None,
        worker_wait_ms: 0,
    }
}

/// A small successful result, as a CPU worker would record it.
pub fn result() -> JobResult {
    JobResult {
        output: serde_json::json!({"ok": true}),
        blobs: Default::default(),
        summary: "ok".into(),
        fingerprint: Fingerprint::default(),
        device: DeviceInfo {
            class: LANE,
            name: "test".into(),
            ordinal: 0,
        },
        timings: Timings::default(),
        held_by: None,
    }
}

/// Submits `env` and places it on the CPU lane.
pub async fn submit_and_place(q: &dyn Queue, env: JobEnvelope) -> JobId {
    let id = q.submit(env).await.expect("submit");
    let inc = take_until(q, &id).await;
    q.place(&inc, decision()).await.expect("place");
    id
}

/// Takes submissions until `id`'s arrives (placing any other on the CPU lane) and
/// returns it, not yet placed.
async fn take_until(q: &dyn Queue, id: &JobId) -> Incoming {
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    loop {
        let taken = q
            .take_submitted("conformance-sched", 64, WAIT)
            .await
            .expect("take_submitted");
        let mut found = None;
        for inc in taken {
            if inc.job.as_ref().is_ok_and(|e| &e.id == id) {
                found = Some(inc);
            } else {
                q.place(&inc, decision()).await.expect("place");
            }
        }
        if let Some(inc) = found {
            return inc;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "submitted job {id} was never taken"
        );
    }
}

/// Fetches exactly one job from the CPU lane for `consumer` (waiting up to 1.5 s).
pub async fn fetch_one(q: &dyn Queue, consumer: &str, lease: Duration) -> Delivery {
    let mut got = q
        .fetch(LANE, consumer, 1, lease, WAIT)
        .await
        .expect("fetch");
    assert_eq!(got.len(), 1, "expected one job on the lane");
    got.remove(0)
}

async fn state(q: &dyn Queue, id: &JobId) -> JobState {
    q.status(id)
        .await
        .expect("status")
        .expect("record exists")
        .state
}

/// A result whose output is one tensor `c` holding `values` (blob `t0`).
pub fn result_with(values: Vec<f32>) -> JobResult {
    let mut r = result();
    r.output = serde_json::json!({"c": {"shape": [values.len()], "blob": "t0"}});
    r.blobs.insert("t0".into(), values.into());
    r
}

/// Takes whatever was submitted and places it on the CPU lane; returns what it took.
async fn place_submitted(q: &dyn Queue) -> Vec<crate::queue::Incoming> {
    let taken = q
        .take_submitted("conformance-sched", 64, WAIT)
        .await
        .expect("take_submitted");
    for inc in &taken {
        q.place(inc, decision()).await.expect("place");
    }
    taken
}

/// Takes and places whatever was submitted, then runs the next job of the lane, which
/// must be `id`, to success with `result`.
async fn run_next(q: &dyn Queue, id: &JobId, result: JobResult) {
    place_submitted(q).await;
    let d = fetch_one(q, "graph-worker", LEASE).await;
    assert_eq!(&d.lease.job_id, id, "the next job on the lane");
    q.complete(&d.lease, result).await.expect("complete");
}

fn reads(parents: &[&JobId]) -> JobEnvelope {
    use crate::model::tensor::Tensor;
    let input = |i: usize| match parents.get(i) {
        Some(p) => Tensor::output_of(p, "c", vec![4]),
        None => Tensor::synthetic(vec![4], i as u64, 0.0, 1.0),
    };
    JobEnvelope::new(VectorAdd {
        a: input(0),
        b: input(1),
    })
    .expect("a job serializes")
}
