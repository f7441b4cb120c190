//! Id-only submit entries (`job` = `{"id": .., "ref": true}`): written only while
//! every scheduler reading the namespace has said it reads them; resolved from the record by the scheduler on each
//! way it takes entries (new, reclaimed from a dead scheduler); refused with a reason
//! when the record is gone; older schedulers named by doctor's diagnosis.

use super::{config_at, query};
use gpujobs_core::conformance::{decision, fetch_one, job};
use gpujobs_core::kinds::VectorAdd;
use gpujobs_core::model::graph::Graph;
use gpujobs_core::queue::{AdminQueue, GraphQueue, Incoming};
use gpujobs_core::queue::{ScheduleQueue, SubmitQueue};
use gpujobs_core::{JobEnvelope, JobId, JobState, Tensor};
use gpujobs_queue::RedisQueue;
use gpujobs_queue::testkit::RedisServer;
use std::time::Duration;

/// The entries on the submit stream of namespace `ns`: (entry id, its `job` value).
async fn entries(url: &str, ns: &str) -> Vec<(String, String)> {
    let entries: Vec<(String, Vec<(String, String)>)> = query(
        url,
        redis::cmd("XRANGE")
            .arg(format!("{{{ns}}}:submit"))
            .arg("-")
            .arg("+"),
    )
    .await;
    entries
        .into_iter()
        .map(|(e, f)| {
            let job = f.into_iter().find(|(k, _)| k == "job").map(|(_, v)| v);
            (e, job.expect("every entry has a `job` field"))
        })
        .collect()
}

/// Appends an entry with this `job` value, as a plain-`XADD` client would.
async fn xadd_job(url: &str, ns: &str, body: &str) {
    let _: String = query(
        url,
        redis::cmd("XADD")
            .arg(format!("{{{ns}}}:submit"))
            .arg("*")
            .arg("job")
            .arg(body),
    )
    .await;
}

/// Takes the next new entry as consumer `old-sched` of the schedulers' group: what a
/// scheduler of an older gpujobs does (it never announces itself).
async fn take_as_older_scheduler(url: &str, ns: &str) {
    let _: redis::Value = query(
        url,
        redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("schedulers")
            .arg("old-sched")
            .arg("COUNT")
            .arg(1)
            .arg("STREAMS")
            .arg(format!("{{{ns}}}:submit"))
            .arg(">"),
    )
    .await;
}

/// Each entry's form: `ref <id>` for an id-only one, `whole <id>` for an envelope.
async fn entry_forms(url: &str, ns: &str) -> Vec<String> {
    entries(url, ns)
        .await
        .into_iter()
        .map(|(_, job)| {
            let v: serde_json::Value = serde_json::from_str(&job).unwrap();
            let id = v["id"].as_str().unwrap();
            if v.get("ref") == Some(&serde_json::Value::Bool(true)) {
                assert_eq!(v.as_object().unwrap().len(), 2, "{job}");
                format!("ref {id}")
            } else {
                assert!(v.get("kind").is_some(), "{job}");
                format!("whole {id}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refs_are_written_once_a_scheduler_reads_them_and_run_end_to_end() {
    let server = RedisServer::start(false);
    let url = server.url();
    let client = RedisQueue::connect(config_at(server.url(), "form", None))
        .await
        .unwrap();
    // No scheduler has ever run: a whole entry, which any version reads.
    let first = client.submit(job(1)).await.unwrap();
    assert_eq!(entry_forms(&url, "form").await, [format!("whole {first}")]);

    let sched = RedisQueue::connect(config_at(server.url(), "form", None))
        .await
        .unwrap();
    let taken = sched
        .take_submitted("new-sched", 10, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    sched.place(&taken[0], decision()).await.unwrap();

    // A new client (nothing cached) now writes the id only.
    let client = RedisQueue::connect(config_at(server.url(), "form", None))
        .await
        .unwrap();
    let want = job(2);
    let second = client.submit(want.clone()).await.unwrap();
    assert_eq!(entry_forms(&url, "form").await, [format!("ref {second}")]);
    let taken = sched
        .take_submitted("new-sched", 10, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    let env = taken[0]
        .job
        .as_ref()
        .expect("the envelope read from the record");
    assert_eq!(env.id, second);
    assert_eq!(env.kind, want.kind);
    assert_eq!(env.payload, want.payload);
    sched.place(&taken[0], decision()).await.unwrap();
    assert!(entries(&url, "form").await.is_empty());

    // Both run: the worker gets each job's envelope.
    let mut seen = [
        fetch_one(&sched, "w", Duration::from_secs(30)).await,
        fetch_one(&sched, "w", Duration::from_secs(30)).await,
    ];
    seen.sort_by(|a, b| a.envelope.id.as_str().cmp(b.envelope.id.as_str()));
    let mut ids = vec![first, second];
    ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(
        seen.iter()
            .map(|d| d.envelope.id.clone())
            .collect::<Vec<_>>(),
        ids
    );

    // A graph: the job that can start at once is queued id-only; the waiting one has
    // no entry yet.
    let mut g = Graph::new();
    let parent = g.add_envelope("p", job(7)).unwrap();
    let child_env = JobEnvelope::new(VectorAdd {
        a: Tensor::output_of(&parent, "c", vec![4]),
        b: Tensor::synthetic(vec![4], 1, 0.0, 1.0),
    })
    .unwrap();
    g.add_envelope("c", child_env).unwrap();
    client.submit_graph(g.into_jobs()).await.unwrap();
    assert_eq!(entry_forms(&url, "form").await, [format!("ref {parent}")]);
    let taken = sched
        .take_submitted("new-sched", 10, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(taken[0].job.as_ref().unwrap().id, parent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_scheduler_reading_the_stream_keeps_entries_whole() {
    let server = RedisServer::start(false);
    let url = server.url();
    let sched = RedisQueue::connect(config_at(server.url(), "old", None))
        .await
        .unwrap();
    sched
        .take_submitted("new-sched", 10, Duration::from_millis(50))
        .await
        .unwrap();
    // A scheduler of an older gpujobs: takes an entry, never announces itself. (Redis
    // lists a consumer only once it has been delivered an entry.)
    xadd_job(&url, "old", &serde_json::to_string(&job(9)).unwrap()).await;
    take_as_older_scheduler(&url, "old").await;
    let older = sched.older_schedulers().await;
    assert_eq!(
        older.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["old-sched"]
    );
    assert_eq!(sched.diagnose().await.older_schedulers.len(), 1);

    let client = RedisQueue::connect(config_at(server.url(), "old", None))
        .await
        .unwrap();
    let id = client.submit(job(3)).await.unwrap();
    let forms = entry_forms(&url, "old").await;
    assert_eq!(forms.last(), Some(&format!("whole {id}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ref_entry_taken_back_from_a_dead_scheduler_is_resolved() {
    let server = RedisServer::start(false);
    let url = server.url();
    let mut cfg = config_at(server.url(), "claim", None);
    cfg.scheduler_lease = Duration::from_millis(300);
    let q = RedisQueue::connect(cfg).await.unwrap();
    q.take_submitted("a", 10, Duration::from_millis(10))
        .await
        .unwrap();
    let id = q.submit(job(4)).await.unwrap();
    assert_eq!(entry_forms(&url, "claim").await, [format!("ref {id}")]);
    // Scheduler `a` takes it and dies before placing it.
    let taken = q
        .take_submitted("a", 10, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    tokio::time::sleep(Duration::from_millis(700)).await;
    // `b` takes it back through XAUTOCLAIM, with the envelope from the record.
    let mut back = Vec::new();
    for _ in 0..20 {
        back = q
            .take_submitted("b", 10, Duration::from_millis(100))
            .await
            .unwrap();
        if !back.is_empty() {
            break;
        }
    }
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].job.as_ref().unwrap().id, id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ref_entry_without_a_record_is_refused_with_its_reason() {
    let server = RedisServer::start(false);
    let url = server.url();
    let q = RedisQueue::connect(config_at(server.url(), "gone", None))
        .await
        .unwrap();
    // A job that exists, so that a lookalike naming it shows it is not resolved.
    let real = q.submit(job(6)).await.unwrap();
    for body in [
        r#"{"id":"no-such-job","ref":true}"#.to_string(),
        // A third field: an envelope (and not a valid one), in take.lua and in Rust.
        format!(r#"{{"id":"{real}","ref":true,"kind":"vector-add"}}"#),
    ] {
        xadd_job(&url, "gone", &body).await;
    }
    let taken = q
        .take_submitted("s", 10, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(taken.len(), 3);
    assert_eq!(taken[0].job.as_ref().unwrap().id, real);
    let reason = taken[1].job.clone().unwrap_err();
    assert!(reason.contains("`no-such-job`"), "{reason}");
    assert!(reason.contains("no record"), "{reason}");
    let lookalike = taken[2].job.clone().unwrap_err();
    assert!(
        lookalike.contains("not a valid job envelope"),
        "{lookalike}"
    );
    // Placed first: a refused entry naming a job still `queued` ends that job (as any
    // malformed entry naming an id does).
    q.place(&taken[0], decision()).await.unwrap();
    q.reject(&taken[1], &reason).await.unwrap();
    q.reject(&taken[2], &lookalike).await.unwrap();
    assert!(entries(&url, "gone").await.is_empty());
    // No record was made for the id it named, and doctor does not blame a scheduler.
    let missing = JobId::parse("no-such-job").unwrap();
    assert!(q.status(&missing).await.unwrap().is_none());
    assert!(q.diagnose().await.refs_refused.is_empty());
}

/// What a scheduler older than id-only entries does with one it takes, replayed with
/// its calls: the job is `dead` with the parse error (not stuck `queued`), doctor names
/// it, and a dead-letter retry runs it from the envelope its record kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_schedulers_refusal_is_visible_and_retried() {
    let server = RedisServer::start(false);
    let url = server.url();
    let q = RedisQueue::connect(config_at(server.url(), "race", None))
        .await
        .unwrap();
    q.take_submitted("new-sched", 10, Duration::from_millis(10))
        .await
        .unwrap();
    let id = q.submit(job(5)).await.unwrap();
    let (entry, body) = entries(&url, "race").await.remove(0);
    // The older scheduler's parse of `{"id":..,"ref":true}`.
    let err = serde_json::from_str::<JobEnvelope>(&body).unwrap_err();
    let reason = format!("`job` field is not a valid job envelope: {err}");
    take_as_older_scheduler(&url, "race").await;
    let refused = Incoming {
        entry: format!("0|{entry}"),
        job: Err(reason.clone()),
        raw: Some(body),
        id: Some(id.clone()),
        holders: Vec::new(),
    };
    q.reject(&refused, &reason).await.unwrap();
    let rec = q.status(&id).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Dead);
    assert_eq!(q.diagnose().await.refs_refused, [id.to_string()]);

    assert!(q.retry_dead(&id).await.unwrap());
    let again = q
        .take_submitted("new-sched", 10, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].job.as_ref().unwrap().id, id);
}
