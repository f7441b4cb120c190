//! The worker and scheduler loops over the embedded queue, with a custom job kind whose
//! behaviour (duration, failures) the tests control.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use async_trait::async_trait;
use gpujobs_core::queue::{MemoryQueue, MemoryQueueConfig};
use gpujobs_core::{
    Cost, DeviceClass, DeviceInfo, EmbeddedCluster, ExecContext, Execution, Executor, Job,
    JobEnvelope, JobError, JobOutput, JobState, Limits, Queue, Registry, RetryPolicy, Scheduler,
    SchedulerConfig, StageTimes, ValidationError, Worker, WorkerConfig, shutdown_channel,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sleeps `ms` (checking for cancellation), failing the first `fail_first` attempts.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sleep {
    ms: u64,
    fail_first: u32,
    tag: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Slept {
    tag: u64,
}

impl JobOutput for Slept {
    fn summary(&self) -> String {
        format!("slept {}", self.tag)
    }
}

impl Job for Sleep {
    const KIND: &'static str = "test-sleep";
    type Output = Slept;
    fn validate(&self, _: &Limits) -> Result<(), ValidationError> {
        Ok(())
    }
    fn cost(&self) -> Cost {
        Cost::default()
    }
    fn size_label(&self) -> String {
        format!("{}ms", self.ms)
    }
}

#[derive(Default)]
struct SleepExec {
    runs: AtomicU64,
}

#[async_trait]
impl Executor<Sleep> for Arc<SleepExec> {
    async fn run(&self, job: Sleep, ctx: &ExecContext) -> Result<Execution<Slept>, JobError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if ctx.attempt <= job.fail_first {
            return Err(JobError::temporary(format!(
                "planned failure on attempt {}",
                ctx.attempt
            )));
        }
        let mut left = job.ms;
        while left > 0 {
            ctx.cancel.check()?;
            let step = left.min(10);
            tokio::time::sleep(Duration::from_millis(step)).await;
            left -= step;
        }
        Ok(Execution {
            output: Slept { tag: job.tag },
            times: StageTimes::default(),
        })
    }
}

fn registry(exec: &Arc<SleepExec>) -> Arc<Registry> {
    let mut r = Registry::new();
    let device = DeviceInfo {
        class: DeviceClass::Cpu,
        name: "test".into(),
        ordinal: 0,
    };
    r.register::<Sleep, _>(&device, exec.clone());
    Arc::new(r)
}

fn worker_config(concurrency: usize) -> WorkerConfig {
    let mut c = WorkerConfig::new(DeviceInfo {
        class: DeviceClass::Cpu,
        name: "test".into(),
        ordinal: 0,
    });
    c.concurrency = concurrency;
    c.lease = Duration::from_millis(300);
    c.poll = Duration::from_millis(50);
    c.reclaim_every = Duration::from_millis(100);
    c.heartbeat = Duration::from_millis(100);
    c.grace = Duration::from_millis(100);
    c
}

fn fast_queue_config() -> MemoryQueueConfig {
    MemoryQueueConfig {
        retry: RetryPolicy {
            base: Duration::from_millis(10),
            factor: 2.0,
            max: Duration::from_millis(40),
            jitter: 0.0,
        },
        ..MemoryQueueConfig::default()
    }
}

fn sleep_job(ms: u64, fail_first: u32, tag: u64) -> JobEnvelope {
    JobEnvelope::new(Sleep {
        ms,
        fail_first,
        tag,
    })
    .expect("serializes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_job_runs_once_across_workers() {
    let exec = Arc::new(SleepExec::default());
    let cluster = EmbeddedCluster::builder()
        .queue_config(fast_queue_config())
        .worker(worker_config(4), registry(&exec))
        .worker(worker_config(4), registry(&exec))
        .start();
    let client = cluster.client().clone();
    let mut ids = Vec::new();
    for tag in 0..300 {
        ids.push(client.submit_envelope(sleep_job(0, 0, tag)).await.unwrap());
    }
    for (tag, id) in ids.iter().enumerate() {
        let done = client
            .output::<Sleep>(id, Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(done.output.tag, tag as u64);
        assert_eq!(done.record.attempts, 1);
    }
    assert_eq!(exec.runs.load(Ordering::SeqCst), 300);
    let (sched, workers) = cluster.shutdown().await;
    assert_eq!(sched.placed, 300);
    assert_eq!(workers.iter().map(|w| w.done).sum::<u64>(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_dead_letters_and_timeouts() {
    let exec = Arc::new(SleepExec::default());
    let cluster = EmbeddedCluster::builder()
        .queue_config(fast_queue_config())
        .worker(worker_config(2), registry(&exec))
        .start();
    let client = cluster.client().clone();
    let flaky = client
        .submit_envelope(sleep_job(0, 2, 1).with_max_attempts(3))
        .await
        .unwrap();
    let doomed = client
        .submit_envelope(sleep_job(0, 99, 2).with_max_attempts(2))
        .await
        .unwrap();
    let slow = client
        .submit_envelope(
            sleep_job(5_000, 0, 3)
                .with_max_attempts(1)
                .with_timeout(Duration::from_millis(100)),
        )
        .await
        .unwrap();
    let rec = client.wait(&flaky, Duration::from_secs(10)).await.unwrap();
    assert_eq!((rec.state, rec.attempts), (JobState::Succeeded, 3));
    let rec = client.wait(&doomed, Duration::from_secs(10)).await.unwrap();
    assert_eq!((rec.state, rec.attempts), (JobState::Dead, 2));
    let rec = client.wait(&slow, Duration::from_secs(10)).await.unwrap();
    assert_eq!(rec.state, JobState::Dead);
    assert!(rec.error.unwrap().message.contains("timed out"));
    let dead = client.queue().dead_letters(10).await.unwrap();
    let letter = dead.iter().find(|d| d.id == doomed.as_str()).unwrap();
    assert!(
        letter.reason.contains("planned failure on attempt 2"),
        "{}",
        letter.reason
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_reaches_a_running_job() {
    let exec = Arc::new(SleepExec::default());
    let cluster = EmbeddedCluster::builder()
        .worker(worker_config(1), registry(&exec))
        .start();
    let client = cluster.client().clone();
    let id = client
        .submit_envelope(sleep_job(10_000, 0, 1))
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    while client.queue().status(&id).await.unwrap().unwrap().state != JobState::Running {
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        client.queue().cancel(&id).await.unwrap(),
        gpujobs_core::queue::CancelOutcome::Requested
    );
    let rec = client.wait(&id, Duration::from_secs(5)).await.unwrap();
    assert_eq!(rec.state, JobState::Cancelled);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cancel took {:?}",
        started.elapsed()
    );
    cluster.shutdown().await;
}

/// Starts a scheduler and returns its trigger.
fn scheduler(queue: Arc<dyn Queue>, reg: Arc<Registry>) -> gpujobs_core::ShutdownTrigger {
    let (trigger, shutdown) = shutdown_channel();
    let config = SchedulerConfig {
        poll: Duration::from_millis(50),
        ..SchedulerConfig::default()
    };
    let s = Scheduler::new(
        queue,
        reg,
        Arc::new(gpujobs_core::EarliestFinish::default()),
        config,
    );
    tokio::spawn(s.run(shutdown));
    trigger
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_drain_releases_unfinished_jobs_and_loses_nothing() {
    let exec = Arc::new(SleepExec::default());
    let reg = registry(&exec);
    let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new(fast_queue_config()));
    let _sched = scheduler(queue.clone(), reg.clone());
    let mut ids = Vec::new();
    for tag in 0..6 {
        ids.push(queue.submit(sleep_job(400, 0, tag)).await.unwrap());
    }
    let (stop_first, shutdown) = shutdown_channel();
    let first =
        tokio::spawn(Worker::new(queue.clone(), reg.clone(), worker_config(2)).run(shutdown));
    let t = tokio::time::Instant::now();
    while exec.runs.load(Ordering::SeqCst) < 2 {
        assert!(t.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop_first.trigger();
    let report = first.await.unwrap();
    assert_eq!(report.released, 2, "{report:?}");
    for id in &ids {
        let rec = queue.status(id).await.unwrap().unwrap();
        assert_eq!((rec.state, rec.attempts), (JobState::Placed, 0), "{id}");
    }
    let (stop_second, shutdown) = shutdown_channel();
    let second =
        tokio::spawn(Worker::new(queue.clone(), reg.clone(), worker_config(3)).run(shutdown));
    for id in &ids {
        let rec = queue
            .wait(id, Duration::from_secs(10))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((rec.state, rec.attempts), (JobState::Succeeded, 1));
    }
    stop_second.trigger();
    assert_eq!(second.await.unwrap().done, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_of_a_killed_worker_are_reclaimed() {
    let exec = Arc::new(SleepExec::default());
    let reg = registry(&exec);
    let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new(fast_queue_config()));
    let _sched = scheduler(queue.clone(), reg.clone());
    let mut ids = Vec::new();
    for tag in 0..4 {
        ids.push(queue.submit(sleep_job(300, 0, tag)).await.unwrap());
    }
    let (_keep, shutdown) = shutdown_channel();
    let doomed =
        tokio::spawn(Worker::new(queue.clone(), reg.clone(), worker_config(2)).run(shutdown));
    let t = tokio::time::Instant::now();
    while exec.runs.load(Ordering::SeqCst) < 2 {
        assert!(t.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Abort: the worker vanishes without releasing anything, like a SIGKILL.
    doomed.abort();
    let _ = doomed.await;
    let (stop, shutdown) = shutdown_channel();
    let rescuer =
        tokio::spawn(Worker::new(queue.clone(), reg.clone(), worker_config(4)).run(shutdown));
    let mut reclaimed = 0;
    for id in &ids {
        let rec = queue
            .wait(id, Duration::from_secs(10))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rec.state, JobState::Succeeded, "{id}");
        if rec.attempts == 2 {
            reclaimed += 1;
        }
    }
    assert_eq!(
        reclaimed, 2,
        "the two jobs the killed worker held ran again"
    );
    stop.trigger();
    rescuer.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_submissions_are_refused_and_the_system_keeps_serving() {
    let exec = Arc::new(SleepExec::default());
    let cluster = EmbeddedCluster::builder()
        .queue_config(fast_queue_config())
        .worker(worker_config(1), registry(&exec))
        .start();
    let client = cluster.client().clone();
    // Refused at submit by the client...
    let mut unknown = sleep_job(0, 0, 1);
    unknown.kind = "no-such-kind".into();
    assert!(client.submit_envelope(unknown.clone()).await.is_err());
    // ...and dead-lettered by the scheduler when it bypasses the client.
    let id = client.queue().submit(unknown).await.unwrap();
    let rec = client.wait(&id, Duration::from_secs(5)).await.unwrap();
    assert_eq!(rec.state, JobState::Dead);
    assert!(rec.error.unwrap().message.contains("no-such-kind"));
    let good = client.submit_envelope(sleep_job(0, 0, 2)).await.unwrap();
    assert_eq!(
        client
            .wait(&good, Duration::from_secs(5))
            .await
            .unwrap()
            .state,
        JobState::Succeeded
    );
    cluster.shutdown().await;
}
