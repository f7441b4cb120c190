//! The graph role ([`crate::queue::GraphQueue`]): jobs that wait for their parents, failures that reach every dependant, graphs refused at submit.

use super::*;
use crate::model::error::{JobError, QueueError};
use crate::model::id::JobId;
use crate::model::state::JobState;
use crate::queue::{CancelOutcome, ParentOutput, Queue};

/// a, b → c → d: c waits for both parents, d for c; each is released by its last
/// parent's success, and a child reads its parent's output through the queue.
pub async fn graph_jobs_wait_for_their_parents(q: &dyn Queue) {
    let mut g = crate::model::graph::Graph::new();
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
    let from_a = crate::model::tensor::OutputRef {
        job: a.clone(),
        output: "c".into(),
    };
    let ParentOutput::Ready(t) = q.read_output(&from_a).await.expect("read_output") else {
        panic!("a's output exists");
    };
    assert_eq!(t.shape(), &[4]);
    assert_eq!(&*t.values().expect("values"), &[1.0, 2.0, 3.0, 4.0]);
    let missing = crate::model::tensor::OutputRef {
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
    let mut g = crate::model::graph::Graph::new();
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
    let mut g = crate::model::graph::Graph::new();
    let x = g.id("x").expect("id");
    let y = g.id("y").expect("id");
    g.add_envelope("x", reads(&[&y])).expect("add");
    g.add_envelope("y", reads(&[&x])).expect("add");
    let err = q.submit_graph(g.into_jobs()).await.expect_err("a cycle");
    assert!(err.to_string().contains("cycle"), "{err}");
    assert!(q.status(&x).await.expect("status").is_none());

    let mut g = crate::model::graph::Graph::new();
    let stranger = JobId::parse("not-in-the-graph").expect("id");
    let z = g.add_envelope("z", reads(&[&stranger])).expect("add");
    let err = q.submit_graph(g.into_jobs()).await.expect_err("unknown");
    assert!(err.to_string().contains("not-in-the-graph"), "{err}");
    assert!(q.status(&z).await.expect("status").is_none());
}
