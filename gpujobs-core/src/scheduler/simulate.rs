//! A deterministic simulation of placement policies on a mixed workload, runnable
//! without a GPU: it evaluates cost-based placement against fixed policies under a
//! cost model (`gpujobs simulate`, and a property test).
//!
//! Each lane has its workers; jobs arrive in order and each lane serves its jobs first
//! come, first served, one per free worker. A job's real duration is the model's
//! estimate times a random factor in `[0.8, 1.25]`, so the cost-based policy decides on
//! estimates that are off, as in life. The cost-based policy is the scheduler's own
//! [`EarliestFinish`], fed the same facts the scheduler reads from Redis: live worker
//! slots and each lane's committed backlog.

use crate::kinds::{FilterOp, ImageFilter, Matmul, MlpTrain, VectorAdd};
use crate::model::cost::Cost;
use crate::model::device::DeviceClass;
use crate::model::envelope::JobEnvelope;
use crate::model::job::Job;
use crate::model::synth::{derive_seed, unit};
use crate::scheduler::placement::{ClusterFacts, CostModel, EarliestFinish, Placement};
use serde::Serialize;
use std::sync::Arc;

/// One job of a simulated workload.
#[derive(Debug, Clone)]
pub struct SimJob {
    /// Its kind.
    pub kind: String,
    /// Its cost.
    pub cost: Cost,
    /// When it is submitted, seconds from the start.
    pub arrival_s: f64,
    /// The envelope the policy sees.
    envelope: JobEnvelope,
}

impl SimJob {
    /// A job of `job`'s kind and cost arriving at `arrival_s`.
    pub fn new<J: Job>(job: J, arrival_s: f64) -> Self {
        let cost = job.cost();
        let envelope = JobEnvelope::new(job).expect("built-in jobs serialize");
        SimJob {
            kind: envelope.kind.clone(),
            cost,
            arrival_s,
            envelope,
        }
    }
}

/// How jobs are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimPolicy {
    /// The scheduler's earliest-finish policy on the cost model.
    CostBased,
    /// Every job on the GPU lane.
    AlwaysGpu,
    /// Every job on the CPU lane.
    AlwaysCpu,
    /// Alternating lanes.
    RoundRobin,
}

impl SimPolicy {
    /// Every policy, cost-based first.
    pub const ALL: [SimPolicy; 4] = [
        SimPolicy::CostBased,
        SimPolicy::AlwaysGpu,
        SimPolicy::AlwaysCpu,
        SimPolicy::RoundRobin,
    ];
}

/// What a policy achieved.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SimOutcome {
    /// The policy.
    pub policy: SimPolicy,
    /// When the last job finished, seconds.
    pub makespan_s: f64,
    /// Mean of (finish − arrival) over jobs, seconds.
    pub mean_completion_s: f64,
    /// Jobs run on the GPU lane.
    pub on_gpu: usize,
    /// Jobs run on the CPU lane.
    pub on_cpu: usize,
}

/// The mixed workload of the evaluation: many small vector adds, some large matmuls,
/// blurs and Sobels, and a few MLP trainings, with real (uploaded) inputs, arriving
/// over `window_s` seconds in an order drawn from `seed`.
pub fn mixed_workload(seed: u64, window_s: f64) -> Vec<SimJob> {
    let mut jobs = Vec::new();
    let s = derive_seed(seed, "workload");
    let pick = |i: u64, options: &[usize]| {
        options[(unit(s, i) * options.len() as f32) as usize % options.len()]
    };
    let shape_only = |shape: Vec<usize>| {
        crate::model::tensor::Tensor::from_values(shape.clone(), vec![0.0; shape.iter().product()])
    };
    let mut i = 0u64;
    let mut next = || {
        i += 1;
        i
    };
    for _ in 0..300 {
        let n = pick(next(), &[10_000, 100_000, 1_000_000]);
        if let (Ok(a), Ok(b)) = (shape_only(vec![n]), shape_only(vec![n])) {
            jobs.push(VectorAdd { a, b }.into_sim(0.0));
        }
    }
    for _ in 0..20 {
        let n = pick(next(), &[1024, 2048, 4096]);
        let m = Matmul::synthetic(n, n, n, next());
        jobs.push(m.into_sim(0.0));
    }
    for _ in 0..40 {
        let n = pick(next(), &[1024, 2048, 4096]);
        let filter = if next() % 2 == 0 {
            FilterOp::GaussianBlur { sigma: 2.0 }
        } else {
            FilterOp::Sobel
        };
        if let Ok(image) = shape_only(vec![n, n]) {
            jobs.push(ImageFilter { image, filter }.into_sim(0.0));
        }
    }
    for _ in 0..4 {
        let mut m = MlpTrain::synthetic(16_384, 784, 10, 1024, next());
        m.epochs = 3;
        m.batch = 1024;
        jobs.push(m.into_sim(0.0));
    }
    // Shuffle and spread the arrivals over the window.
    let order = crate::model::synth::permutation(jobs.len(), derive_seed(seed, "order"));
    let mut shuffled: Vec<SimJob> = order.iter().map(|&k| jobs[k as usize].clone()).collect();
    let n = shuffled.len().max(1) as f64;
    for (k, j) in shuffled.iter_mut().enumerate() {
        j.arrival_s = window_s * k as f64 / n;
    }
    shuffled
}

trait IntoSim {
    fn into_sim(self, arrival_s: f64) -> SimJob;
}

impl<J: Job> IntoSim for J {
    fn into_sim(self, arrival_s: f64) -> SimJob {
        SimJob::new(self, arrival_s)
    }
}

/// Simulates `policy` on `jobs` with the given workers per lane; real durations are
/// the model's estimates times a factor drawn from `noise_seed`.
pub fn simulate(
    jobs: &[SimJob],
    cpu_workers: usize,
    gpu_workers: usize,
    model: Arc<dyn CostModel>,
    policy: SimPolicy,
    noise_seed: u64,
) -> SimOutcome {
    struct ModelRef(Arc<dyn CostModel>);
    impl CostModel for ModelRef {
        fn estimate(&self, kind: &str, cost: &Cost, class: DeviceClass) -> f64 {
            self.0.estimate(kind, cost, class)
        }
        fn name(&self) -> String {
            self.0.name()
        }
        fn description(&self) -> String {
            self.0.description()
        }
    }
    let placement = EarliestFinish::new(ModelRef(model.clone()));
    let mut free: [Vec<f64>; 2] = [vec![0.0; cpu_workers], vec![0.0; gpu_workers]];
    let lane_index = |c: DeviceClass| usize::from(c == DeviceClass::Gpu);
    let (mut makespan, mut total_completion) = (0f64, 0f64);
    let mut counts = [0usize; 2];
    for (k, job) in jobs.iter().enumerate() {
        let t = job.arrival_s;
        let lane = match policy {
            SimPolicy::AlwaysCpu => DeviceClass::Cpu,
            SimPolicy::AlwaysGpu if gpu_workers > 0 => DeviceClass::Gpu,
            SimPolicy::AlwaysGpu => DeviceClass::Cpu,
            SimPolicy::RoundRobin if gpu_workers > 0 && k % 2 == 1 => DeviceClass::Gpu,
            SimPolicy::RoundRobin => DeviceClass::Cpu,
            SimPolicy::CostBased => {
                let mut facts = ClusterFacts::default();
                for class in DeviceClass::ALL {
                    let workers = &free[lane_index(class)];
                    if !workers.is_empty() {
                        facts.slots.insert(class, workers.len() as u32);
                        facts
                            .backlog_s
                            .insert(class, workers.iter().map(|&f| (f - t).max(0.0)).sum());
                    }
                }
                placement.place(&job.envelope, &job.cost, &facts).lane
            }
        };
        let li = lane_index(lane);
        let noise = 0.8 + 0.45 * f64::from(unit(noise_seed, k as u64));
        let duration = model.estimate(&job.kind, &job.cost, lane) * noise;
        let workers = &mut free[li];
        let (w, &earliest) = workers
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .expect("lane has workers");
        let finish = earliest.max(t) + duration;
        workers[w] = finish;
        makespan = makespan.max(finish);
        total_completion += finish - t;
        counts[li] += 1;
    }
    SimOutcome {
        policy,
        makespan_s: makespan,
        mean_completion_s: total_completion / jobs.len().max(1) as f64,
        on_gpu: counts[1],
        on_cpu: counts[0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::cost_model::CalibratedCostModel;

    #[test]
    fn cost_based_is_never_much_worse_than_the_best_fixed_policy() {
        let model: Arc<dyn CostModel> = Arc::new(CalibratedCostModel::default_model());
        for seed in 1..=8 {
            for window in [0.0, 2.0, 10.0] {
                let jobs = mixed_workload(seed, window);
                let outcomes: Vec<SimOutcome> = SimPolicy::ALL
                    .iter()
                    .map(|&p| simulate(&jobs, 2, 1, model.clone(), p, seed))
                    .collect();
                let cost = outcomes[0];
                let best_makespan = outcomes[1..]
                    .iter()
                    .map(|o| o.makespan_s)
                    .fold(f64::INFINITY, f64::min);
                let best_mean = outcomes[1..]
                    .iter()
                    .map(|o| o.mean_completion_s)
                    .fold(f64::INFINITY, f64::min);
                assert!(
                    cost.makespan_s <= best_makespan * 1.1,
                    "seed {seed} window {window}: {outcomes:#?}"
                );
                assert!(
                    cost.mean_completion_s <= best_mean * 1.1,
                    "seed {seed} window {window}: {outcomes:#?}"
                );
                assert!(
                    cost.on_cpu > 0 && cost.on_gpu > 0,
                    "cost-based uses both lanes: {cost:?}"
                );
            }
        }
    }

    #[test]
    fn simulation_is_deterministic() {
        let model: Arc<dyn CostModel> = Arc::new(CalibratedCostModel::default_model());
        let jobs = mixed_workload(3, 2.0);
        let a = simulate(&jobs, 2, 1, model.clone(), SimPolicy::CostBased, 3);
        let b = simulate(&jobs, 2, 1, model, SimPolicy::CostBased, 3);
        assert_eq!(a, b);
    }
}
