//! Graph jobs through real [`Worker`]s on any queue: an input read from the cache of the
//! worker that made it, and ephemeral outputs made again by another worker after the
//! worker that held them has gone. Placement is done by hand (no scheduler), so which
//! worker sees which job is decided by the scenario, not by timing; the last scenario
//! runs a real [`Scheduler`] to show that it keeps a chain on the worker holding it.
//! Needs a fresh queue (or one whose other jobs are not on the CPU lane).

use crate::scheduler::placement::{EarliestFinish, PlacementDecision};
use crate::{
    Cost, DeviceClass, DeviceInfo, ExecContext, Execution, Executor, Graph, Job, JobEnvelope,
    JobError, JobId, JobOutput, JobState, Limits, Queue, Registry, Scheduler, SchedulerConfig,
    StageTimes, Tensor, ValidationError, Worker, WorkerConfig, shutdown_channel,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Runs every scenario in turn.
pub async fn run_all(q: Arc<dyn Queue>) {
    a_chain_on_one_worker_reads_its_cache(q.clone()).await;
    ephemeral_outputs_are_made_again_when_their_worker_is_gone(q.clone()).await;
    an_ephemeral_job_nothing_reads_is_refused(q.as_ref()).await;
    a_scheduler_keeps_a_chain_on_the_worker_holding_it(q.clone()).await;
}

/// `y = x · factor`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Scale {
    x: Tensor,
    factor: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Scaled {
    y: Tensor,
}

impl JobOutput for Scaled {
    fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        vec![&mut self.y]
    }
    fn summary(&self) -> String {
        "scaled".into()
    }
}

impl Job for Scale {
    const KIND: &'static str = "test-scale";
    type Output = Scaled;
    fn validate(&self, _: &Limits) -> Result<(), ValidationError> {
        self.x.check_shape("x", 1).map(|_| ())
    }
    fn cost(&self) -> Cost {
        Cost::default()
    }
    fn size_label(&self) -> String {
        format!("{:?}", self.x.shape())
    }
    fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        vec![&mut self.x]
    }
}

#[derive(Default)]
struct ScaleExec {
    runs: AtomicU64,
}

#[async_trait]
impl Executor<Scale> for Arc<ScaleExec> {
    async fn run(&self, job: Scale, _: &ExecContext) -> Result<Execution<Scaled>, JobError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let x = job.x.values()?;
        let y: Vec<f32> = x.iter().map(|v| v * job.factor).collect();
        Ok(Execution {
            output: Scaled {
                y: Tensor::from_values(job.x.shape().to_vec(), y)?,
            },
            times: StageTimes::default(),
        })
    }
}

fn device(class: DeviceClass) -> DeviceInfo {
    DeviceInfo {
        class,
        name: "test".into(),
        ordinal: 0,
    }
}

fn registry(exec: &Arc<ScaleExec>, class: DeviceClass) -> Arc<Registry> {
    let mut r = Registry::new();
    r.register::<Scale, _>(&device(class), exec.clone());
    Arc::new(r)
}

fn config(class: DeviceClass) -> WorkerConfig {
    let mut c = WorkerConfig::new(device(class));
    c.poll = Duration::from_millis(20);
    c.grace = Duration::from_millis(200);
    c
}

/// Places everything submitted so far (what a scheduler would do): `gpu_job` on the
/// GPU lane, where a CPU worker never sees it, the rest on the CPU lane.
async fn place_all(q: &dyn Queue, gpu_job: Option<&JobId>) {
    for inc in q
        .take_submitted("test", 64, Duration::from_millis(10))
        .await
        .expect("graph scenario step")
    {
        let on_gpu = inc.id.as_ref().is_some_and(|id| Some(id) == gpu_job);
        let lane = if on_gpu {
            DeviceClass::Gpu
        } else {
            DeviceClass::Cpu
        };
        let decision = PlacementDecision {
            lane,
            estimates: BTreeMap::from([(lane, 0.001)]),
            run_estimate_s: 0.001,
            reason: "test".into(),
            model: "none".into(),
            worker: None,
            worker_wait_ms: 0,
        };
        q.place(&inc, decision).await.expect("graph scenario step");
    }
}

/// Runs a worker, placing submitted jobs, until `id` has ended; then stops the worker.
async fn run_until(
    q: &Arc<dyn Queue>,
    worker: Worker,
    id: &JobId,
    gpu_job: Option<&JobId>,
) -> JobState {
    let (trigger, shutdown) = shutdown_channel();
    let task = tokio::spawn(worker.run(shutdown));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let state = loop {
        let s = q
            .status(id)
            .await
            .expect("graph scenario step")
            .expect("graph scenario step")
            .state;
        if s.is_terminal() || tokio::time::Instant::now() > deadline {
            break s;
        }
        place_all(q.as_ref(), gpu_job).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    trigger.trigger();
    task.await.expect("graph scenario step");
    state
}

/// a (ephemeral) → b (ephemeral) → c, each scaling its input.
fn chain() -> (Graph, [JobId; 3]) {
    let mut g = Graph::new();
    let x = Tensor::from_values(vec![4], vec![1.0, 2.0, 3.0, 4.0]).expect("graph scenario step");
    let ephemeral = |job: Scale| {
        JobEnvelope::new(job)
            .expect("graph scenario step")
            .with_ephemeral(true)
    };
    let a = g
        .add_envelope("a", ephemeral(Scale { x, factor: 2.0 }))
        .expect("graph scenario step");
    let b = g
        .add_envelope(
            "b",
            ephemeral(Scale {
                x: Tensor::output_of(&a, "y", vec![4]),
                factor: 3.0,
            }),
        )
        .expect("graph scenario step");
    let c = g
        .add(
            "c",
            Scale {
                x: Tensor::output_of(&b, "y", vec![4]),
                factor: 1.0,
            },
        )
        .expect("graph scenario step");
    (g, [a, b, c])
}

async fn output_of(q: &dyn Queue, id: &JobId) -> Vec<f32> {
    let rec = q
        .status(id)
        .await
        .expect("graph scenario step")
        .expect("graph scenario step");
    let out: Scaled = rec
        .result
        .expect("graph scenario step")
        .decode()
        .expect("graph scenario step");
    out.y.values().expect("graph scenario step").to_vec()
}

/// One worker runs the whole chain: the ephemeral outputs never reach the queue, the
/// children read them from its cache, and nothing runs twice.
pub async fn a_chain_on_one_worker_reads_its_cache(q: Arc<dyn Queue>) {
    let exec = Arc::new(ScaleExec::default());
    let (g, [a, _b, c]) = chain();
    q.submit_graph(g.into_jobs())
        .await
        .expect("graph scenario step");
    let cpu = DeviceClass::Cpu;
    let worker = Worker::new(q.clone(), registry(&exec, cpu), config(cpu));
    let cache = worker.cache();
    let state = run_until(&q, worker, &c, None).await;
    assert_eq!(state, JobState::Succeeded);
    assert_eq!(output_of(q.as_ref(), &c).await, vec![6.0, 12.0, 18.0, 24.0]);
    assert_eq!(exec.runs.load(Ordering::SeqCst), 3);
    let rec = q
        .status(&a)
        .await
        .expect("graph scenario step")
        .expect("graph scenario step");
    let result = rec.result.expect("graph scenario step");
    assert!(result.held_by.is_some() && result.blobs.is_empty());
    // The queue says who holds it instead of a tensor.
    let from = crate::model::tensor::OutputRef {
        job: a.clone(),
        output: "y".into(),
    };
    let read = q.read_output(&from).await.expect("graph scenario step");
    assert!(
        matches!(&read, crate::queue::ParentOutput::HeldBy(w) if Some(w) == result.held_by.as_ref()),
        "{read:?}"
    );
    // Both of c's ancestors' inputs came from the cache.
    assert_eq!(cache.hits_and_misses(), (2, 0));
}

/// The worker that made the ephemeral outputs stops before their reader runs: another
/// worker (of the other lane, so the order does not depend on timing) re-runs both
/// producers from their kept inputs and gets the same answer.
pub async fn ephemeral_outputs_are_made_again_when_their_worker_is_gone(q: Arc<dyn Queue>) {
    let exec = Arc::new(ScaleExec::default());
    let (g, [_a, b, c]) = chain();
    q.submit_graph(g.into_jobs())
        .await
        .expect("graph scenario step");
    // The first worker serves the CPU lane; c is placed on the GPU lane, so the first
    // worker can never run it, however soon c is released.
    let (cpu, gpu) = (DeviceClass::Cpu, DeviceClass::Gpu);
    let first = Worker::new(q.clone(), registry(&exec, cpu), config(cpu));
    assert_eq!(
        run_until(&q, first, &b, Some(&c)).await,
        JobState::Succeeded
    );
    // c is released but has not run: the first worker (and its cache) is gone.
    let state = q
        .status(&c)
        .await
        .expect("graph scenario step")
        .expect("graph scenario step")
        .state;
    assert!(
        matches!(state, JobState::Queued | JobState::Placed),
        "{state}"
    );
    assert_eq!(exec.runs.load(Ordering::SeqCst), 2);
    let second = Worker::new(q.clone(), registry(&exec, gpu), config(gpu));
    assert_eq!(
        run_until(&q, second, &c, Some(&c)).await,
        JobState::Succeeded
    );
    assert_eq!(output_of(q.as_ref(), &c).await, vec![6.0, 12.0, 18.0, 24.0]);
    // a and b ran again on the second worker, c once.
    assert_eq!(exec.runs.load(Ordering::SeqCst), 5);
}

/// An ephemeral job that nothing reads is refused at submit.
pub async fn an_ephemeral_job_nothing_reads_is_refused(q: &dyn Queue) {
    let mut g = Graph::new();
    let x = Tensor::from_values(vec![1], vec![1.0]).expect("graph scenario step");
    g.add_envelope(
        "lonely",
        JobEnvelope::new(Scale { x, factor: 1.0 })
            .expect("graph scenario step")
            .with_ephemeral(true),
    )
    .expect("graph scenario step");
    let err = q
        .submit_graph(g.into_jobs())
        .await
        .expect_err("an ephemeral job nothing reads");
    assert!(err.to_string().contains("ephemeral"), "{err}");
}

/// Two idle workers on one lane and a real scheduler: each step of a six-job chain is
/// placed on the worker that ran the step before (the one whose cache holds its
/// input), so one worker runs all six and every input after the first is a cache hit.
/// Without placement by locality the idle workers would share the steps and miss.
pub async fn a_scheduler_keeps_a_chain_on_the_worker_holding_it(q: Arc<dyn Queue>) {
    const STEPS: usize = 6;
    let mut g = Graph::new();
    let mut x =
        Tensor::from_values(vec![4], vec![1.0, 2.0, 3.0, 4.0]).expect("graph scenario step");
    let mut last = None;
    for i in 0..STEPS {
        let id = g
            .add(&format!("s{i}"), Scale { x, factor: 2.0 })
            .expect("graph scenario step");
        x = Tensor::output_of(&id, "y", vec![4]);
        last = Some(id);
    }
    let last = last.expect("graph scenario step");
    let cpu = DeviceClass::Cpu;
    let execs = [
        Arc::new(ScaleExec::default()),
        Arc::new(ScaleExec::default()),
    ];
    let (trigger, shutdown) = shutdown_channel();
    let mut tasks = Vec::new();
    let mut caches = Vec::new();
    for exec in &execs {
        let worker = Worker::new(q.clone(), registry(exec, cpu), config(cpu));
        caches.push(worker.cache());
        let shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            worker.run(shutdown).await;
        }));
    }
    // Both workers are known to the scheduler before the chain starts.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while q.workers().await.expect("graph scenario step").len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "workers never heartbeat"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let scheduler = Scheduler::new(
        q.clone(),
        registry(&execs[0], cpu),
        Arc::new(EarliestFinish::default()),
        SchedulerConfig {
            poll: Duration::from_millis(50),
            facts_every: Duration::from_millis(50),
            ..SchedulerConfig::default()
        },
    );
    tasks.push(tokio::spawn(async move {
        scheduler.run(shutdown).await;
    }));
    q.submit_graph(g.into_jobs())
        .await
        .expect("graph scenario step");
    let state = loop {
        let rec = q.status(&last).await.expect("graph scenario step");
        let s = rec.map(|r| r.state);
        if s.is_some_and(JobState::is_terminal) || tokio::time::Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let reason = q
        .status(&last)
        .await
        .expect("graph scenario step")
        .and_then(|r| r.placement)
        .map(|p| p.reason)
        .unwrap_or_default();
    trigger.trigger();
    for t in tasks {
        t.await.expect("graph scenario step");
    }
    assert_eq!(state, Some(JobState::Succeeded));
    assert_eq!(
        output_of(q.as_ref(), &last).await,
        vec![64.0, 128.0, 192.0, 256.0]
    );
    let runs: Vec<u64> = execs
        .iter()
        .map(|e| e.runs.load(Ordering::SeqCst))
        .collect();
    assert!(runs.contains(&(STEPS as u64)), "steps per worker: {runs:?}");
    let (hits, misses) = caches
        .iter()
        .map(|c| c.hits_and_misses())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert_eq!(
        (hits, misses),
        (STEPS as u64 - 1, 0),
        "steps per worker: {runs:?}"
    );
    assert!(reason.starts_with("inputs held by worker"), "{reason}");
}
