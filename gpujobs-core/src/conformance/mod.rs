//! One suite of semantic tests for every [`Queue`] implementation (enable the `testkit`
//! feature). The embedded queue and the Redis queue both run it, so they cannot drift
//! apart.
//!
//! Requirements on the queue under test: it is fresh (no other jobs), and its retry
//! backoff starts at 50 ms or less. Each scenario drains what it created, so
//! [`run_all`] can run them one after another on the same queue.

pub mod graph_workers;
pub mod locality;

use crate::device::{DeviceClass, DeviceInfo};
use crate::envelope::{JobEnvelope, Priority, now_ms};
use crate::error::{JobError, QueueError};
use crate::fingerprint::Fingerprint;
use crate::id::JobId;
use crate::jobs::VectorAdd;
use crate::placement::PlacementDecision;
use crate::queue::{
    CancelOutcome, Delivery, FailOutcome, Incoming, ParentOutput, Queue, WorkerInfo,
};
use crate::state::{JobResult, JobState};
use crate::timing::Timings;
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

fn job(seed: u64) -> JobEnvelope {
    JobEnvelope::new(VectorAdd::synthetic(4, seed)).expect("a synthetic job serializes")
}

fn decision() -> PlacementDecision {
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

fn result() -> JobResult {
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

async fn fetch_one(q: &dyn Queue, consumer: &str, lease: Duration) -> Delivery {
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

/// Submit → place → fetch → renew → complete, and a second complete is refused.
pub async fn happy_path(q: &dyn Queue) {
    let before = crate::envelope::now_us();
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

/// A result whose output is one tensor `c` holding `values`.
fn result_with(values: Vec<f32>) -> JobResult {
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
    use crate::tensor::Tensor;
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

/// a, b → c → d: c waits for both parents, d for c; each is released by its last
/// parent's success, and a child reads its parent's output through the queue.
pub async fn graph_jobs_wait_for_their_parents(q: &dyn Queue) {
    let mut g = crate::graph::Graph::new();
    let a = g.add_envelope("a", reads(&[])).expect("add");
    let b = g.add_envelope("b", reads(&[])).expect("add");
    let c = g.add_envelope("c", reads(&[&a, &b])).expect("add");
    let d = g.add_envelope("d", reads(&[&c])).expect("add");
    let jobs = g.into_jobs();
    let ids = q.submit_graph(jobs.clone()).await.expect("submit_graph");
    assert_eq!(ids, vec![a.clone(), b.clone(), c.clone(), d.clone()]);
    let rec = q.status(&c).await.expect("status").expect("record");
    assert_eq!((rec.state, rec.waiting_on), (JobState::Waiting, 2));
    assert_eq!(rec.parents, vec![a.clone(), b.clone()]);
    assert_eq!(state(q, &d).await, JobState::Waiting);
    // Submitting the same graph again changes nothing.
    q.submit_graph(jobs).await.expect("resubmit");
    assert_eq!(state(q, &c).await, JobState::Waiting);

    // a and b are queued; a succeeds first, c still waits for b.
    let taken = q
        .take_submitted("conformance-sched", 64, WAIT)
        .await
        .expect("take_submitted");
    let mut taken_ids: Vec<JobId> = taken
        .iter()
        .filter_map(|i| i.job.as_ref().ok().map(|e| e.id.clone()))
        .collect();
    taken_ids.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(taken_ids, want, "only the jobs without parents are queued");
    for inc in &taken {
        q.place(inc, decision()).await.expect("place");
    }
    let d1 = fetch_one(q, "graph-worker", LEASE).await;
    let d2 = fetch_one(q, "graph-worker", LEASE).await;
    let (da, db) = if d1.lease.job_id == a {
        (d1, d2)
    } else {
        (d2, d1)
    };
    q.complete(&da.lease, result_with(vec![1.0, 2.0, 3.0, 4.0]))
        .await
        .expect("complete a");
    let rec = q.status(&c).await.expect("status").expect("record");
    assert_eq!((rec.state, rec.waiting_on), (JobState::Waiting, 1));
    let from_a = crate::tensor::OutputRef {
        job: a.clone(),
        output: "c".into(),
    };
    let ParentOutput::Ready(t) = q.read_output(&from_a).await.expect("read_output") else {
        panic!("a's output exists");
    };
    assert_eq!(t.shape(), &[4]);
    assert_eq!(&*t.values().expect("values"), &[1.0, 2.0, 3.0, 4.0]);
    let missing = crate::tensor::OutputRef {
        job: b.clone(),
        output: "c".into(),
    };
    assert!(
        matches!(
            q.read_output(&missing).await.expect("read_output"),
            ParentOutput::Missing
        ),
        "b has not succeeded yet"
    );
    q.complete(&db.lease, result_with(vec![5.0; 4]))
        .await
        .expect("complete b");
    assert_eq!(state(q, &c).await, JobState::Queued);
    run_next(q, &c, result_with(vec![6.0; 4])).await;
    assert_eq!(state(q, &d).await, JobState::Queued);
    run_next(q, &d, result_with(vec![7.0; 4])).await;
    assert_eq!(state(q, &d).await, JobState::Succeeded);
}

/// A parent that fails fails every job depending on it, naming it; cancelling a
/// waiting job, or a parent, does the same for theirs.
pub async fn graph_failures_reach_every_dependant(q: &dyn Queue) {
    let mut g = crate::graph::Graph::new();
    let a = g.add_envelope("a", reads(&[])).expect("add");
    let b = g.add_envelope("b", reads(&[&a])).expect("add");
    let c = g.add_envelope("c", reads(&[&b])).expect("add");
    let p = g.add_envelope("p", reads(&[])).expect("add");
    let w = g.add_envelope("w", reads(&[&p])).expect("add");
    let x = g.add_envelope("x", reads(&[&w])).expect("add");
    q.submit_graph(g.into_jobs()).await.expect("submit_graph");

    // Cancelling the waiting w fails x, which reads w; p is untouched.
    assert_eq!(
        q.cancel(&w).await.expect("cancel"),
        CancelOutcome::Cancelled
    );
    let rec = q.status(&x).await.expect("status").expect("record");
    assert_eq!(rec.state, JobState::Failed);
    let msg = rec.error.map(|e| e.message).unwrap_or_default();
    assert!(
        msg.contains(w.as_str()) && msg.contains("cancelled"),
        "{msg}"
    );
    // Cancelling the queued p: nothing waits on it any more.
    assert_eq!(
        q.cancel(&p).await.expect("cancel"),
        CancelOutcome::Cancelled
    );

    // a fails for good: b and c fail, naming a.
    place_submitted(q).await;
    let da = fetch_one(q, "graph-worker", LEASE).await;
    assert_eq!(da.lease.job_id, a);
    q.fail(&da.lease, &JobError::permanent("bad input"))
        .await
        .expect("fail");
    for id in [&b, &c] {
        let rec = q.status(id).await.expect("status").expect("record");
        assert_eq!(rec.state, JobState::Failed, "{id}");
        let msg = rec.error.map(|e| e.message).unwrap_or_default();
        assert!(msg.contains(a.as_str()) && msg.contains("failed"), "{msg}");
    }
    let dead = q.dead_letters(100).await.expect("dead");
    assert!(dead.iter().any(|d| d.id == c.as_str()), "{dead:?}");
    // c cannot be retried before the job it reads from has succeeded.
    assert!(matches!(
        q.retry_dead(&c).await,
        Err(QueueError::Refused(_))
    ));
    // Retrying a makes b and c wait for it again (their dead letters go); the chain
    // then runs to the end.
    assert!(q.retry_dead(&a).await.expect("retry a"));
    for id in [&b, &c] {
        let rec = q.status(id).await.expect("status").expect("record");
        assert_eq!((rec.state, rec.waiting_on), (JobState::Waiting, 1), "{id}");
        assert!(rec.error.is_none(), "{id}");
    }
    let dead = q.dead_letters(100).await.expect("dead");
    assert!(
        !dead
            .iter()
            .any(|d| d.id == b.as_str() || d.id == c.as_str()),
        "{dead:?}"
    );
    run_next(q, &a, result_with(vec![1.0; 4])).await;
    run_next(q, &b, result_with(vec![2.0; 4])).await;
    run_next(q, &c, result_with(vec![3.0; 4])).await;
    assert_eq!(state(q, &c).await, JobState::Succeeded);
}

/// Cycles and inputs naming jobs outside the graph are refused, and nothing is kept.
pub async fn graph_submit_refuses_cycles_and_strangers(q: &dyn Queue) {
    let mut g = crate::graph::Graph::new();
    let x = g.id("x").expect("id");
    let y = g.id("y").expect("id");
    g.add_envelope("x", reads(&[&y])).expect("add");
    g.add_envelope("y", reads(&[&x])).expect("add");
    let err = q.submit_graph(g.into_jobs()).await.expect_err("a cycle");
    assert!(err.to_string().contains("cycle"), "{err}");
    assert!(q.status(&x).await.expect("status").is_none());

    let mut g = crate::graph::Graph::new();
    let stranger = JobId::parse("not-in-the-graph").expect("id");
    let z = g.add_envelope("z", reads(&[&stranger])).expect("add");
    let err = q.submit_graph(g.into_jobs()).await.expect_err("unknown");
    assert!(err.to_string().contains("not-in-the-graph"), "{err}");
    assert!(q.status(&z).await.expect("status").is_none());
}
