//! The embedded queue under every role at once, on several threads: its job table is
//! split into shards with their own locks (`queue::memory::table`), so this checks
//! that nothing is lost, repeated or deadlocked when submitters, schedulers, workers
//! and cancellations meet on the same jobs, graph jobs (whose endings lock every shard)
//! among them.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use gpujobs_core::conformance::{decision, job, result};
use gpujobs_core::kinds::VectorAdd;
use gpujobs_core::queue::{AdminQueue, GraphQueue, LeaseQueue, ScheduleQueue, SubmitQueue};
use gpujobs_core::queue::{FailOutcome, MemoryQueue, MemoryQueueConfig};
use gpujobs_core::{
    DeviceClass, Graph, JobEnvelope, JobError, JobId, JobState, RetryPolicy, Tensor,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SUBMITTERS: u64 = 4;
const PER_SUBMITTER: u64 = 1500;
const GRAPHS: u64 = 150;
const LEASE: Duration = Duration::from_secs(60);

/// a, b → c → d, each reading its parents' outputs.
fn graph(n: u64) -> Vec<JobEnvelope> {
    let add = |a: Tensor, b: Tensor| JobEnvelope::new(VectorAdd { a, b }).unwrap();
    let syn = |seed| Tensor::synthetic(vec![4], seed, 0.0, 1.0);
    let mut g = Graph::new();
    let a = g
        .add_envelope(&format!("a{n}"), add(syn(1), syn(2)))
        .unwrap();
    let b = g
        .add_envelope(&format!("b{n}"), add(syn(3), syn(4)))
        .unwrap();
    let out = |p: &JobId| Tensor::output_of(p, "c", vec![4]);
    let c = g
        .add_envelope(&format!("c{n}"), add(out(&a), out(&b)))
        .unwrap();
    g.add_envelope(&format!("d{n}"), add(out(&c), syn(5)))
        .unwrap();
    g.into_jobs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_role_at_once_ends_each_job_once() {
    let q = Arc::new(MemoryQueue::new(MemoryQueueConfig {
        retry: RetryPolicy {
            base: Duration::from_millis(5),
            factor: 1.0,
            max: Duration::from_millis(5),
            jitter: 0.0,
        },
        ..MemoryQueueConfig::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    // Successes recorded per job, as the queue accepted them.
    let completed: Arc<Mutex<HashMap<JobId, u32>>> = Arc::default();
    let mut roles = Vec::new();
    for s in 0..2 {
        let (q, stop) = (q.clone(), stop.clone());
        roles.push(tokio::spawn(async move {
            let name = format!("sched{s}");
            while !stop.load(Ordering::Relaxed) {
                let wait = Duration::from_millis(20);
                for inc in q.take_submitted(&name, 64, wait).await.unwrap() {
                    q.place(&inc, decision()).await.unwrap();
                }
            }
        }));
    }
    for w in 0..3 {
        let (q, stop, completed) = (q.clone(), stop.clone(), completed.clone());
        roles.push(tokio::spawn(async move {
            let name = format!("worker{w}");
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let wait = Duration::from_millis(20);
                let got = q
                    .fetch(DeviceClass::Cpu, &name, 32, LEASE, wait)
                    .await
                    .unwrap();
                let mut batch = Vec::new();
                for d in got {
                    n += 1;
                    // Every seventh first attempt fails and is retried.
                    if n.is_multiple_of(7) && d.lease.attempt == 1 {
                        let err = JobError::temporary("flaky");
                        let outcome = q.fail(&d.lease, &err).await.unwrap();
                        assert!(matches!(
                            outcome,
                            FailOutcome::Retrying { .. } | FailOutcome::Cancelled
                        ));
                    } else {
                        batch.push((d.lease, result()));
                    }
                }
                let ids: Vec<JobId> = batch.iter().map(|(l, _)| l.job_id.clone()).collect();
                for (id, done) in ids.into_iter().zip(q.complete_batch(batch).await) {
                    done.unwrap();
                    *completed.lock().unwrap().entry(id).or_default() += 1;
                }
            }
        }));
    }
    let mut submitters = Vec::new();
    for s in 0..SUBMITTERS {
        let q = q.clone();
        submitters.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..PER_SUBMITTER {
                let id = q.submit(job(s * PER_SUBMITTER + i)).await.unwrap();
                // Some are cancelled at once, wherever they are by then.
                if i.is_multiple_of(10) {
                    q.cancel(&id).await.unwrap();
                }
                if i.is_multiple_of(PER_SUBMITTER / (GRAPHS / SUBMITTERS)) {
                    ids.extend(q.submit_graph(graph(s * PER_SUBMITTER + i)).await.unwrap());
                }
                ids.push(id);
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for s in submitters {
        ids.extend(s.await.unwrap());
    }

    // Every job ends (a hang here would be a deadlock or a lost job).
    let ended = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let mut open = 0;
            for id in &ids {
                let rec = q.status(id).await.unwrap().unwrap();
                open += usize::from(!rec.state.is_terminal());
            }
            if open == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for r in roles {
        r.await.unwrap();
    }
    assert!(ended.is_ok(), "jobs still open after 120 s");

    let completed = std::mem::take(&mut *completed.lock().unwrap());
    let mut succeeded = 0;
    for id in &ids {
        let rec = q.status(id).await.unwrap().unwrap();
        match rec.state {
            JobState::Succeeded => {
                succeeded += 1;
                assert_eq!(completed.get(id), Some(&1), "{id} recorded once");
                for p in &rec.parents {
                    let parent = q.status(p).await.unwrap().unwrap();
                    assert_eq!(parent.state, JobState::Succeeded, "{id}'s parent {p}");
                    assert!(
                        rec.started_ms >= parent.finished_ms,
                        "{id} started before its parent {p} ended"
                    );
                }
            }
            JobState::Cancelled => assert_eq!(completed.get(id), None, "{id} cancelled"),
            other => panic!("{id} ended {other}"),
        }
    }
    // Every graph job and nine of ten plain ones at least (a cancel can come late).
    let least = (GRAPHS * 4 + SUBMITTERS * PER_SUBMITTER * 9 / 10) as usize;
    assert!(
        succeeded >= least,
        "{succeeded} succeeded, expected ≥ {least}"
    );
    for lane in q.lane_stats().await.unwrap() {
        assert_eq!(
            (lane.ready, lane.delayed, lane.in_flight),
            (0, 0, 0),
            "{lane:?}"
        );
        assert_eq!(lane.backlog_s, 0.0, "{lane:?}");
    }
    assert!(q.dead_letters(10).await.unwrap().is_empty());
}
