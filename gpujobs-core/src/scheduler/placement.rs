//! Placement: which lane a job goes to.
//!
//! The policy estimates, for every device class that has live workers, when the job
//! would finish there: the class's backlog spread over its workers, plus the job's own
//! time from a [`CostModel`]. It picks the earliest (the HEFT rule). A job pinned to a
//! device goes there whatever the estimates say. With no live GPU worker, jobs go to the
//! CPU. The estimates are recorded with the decision, so `gpujobs status` can say why a
//! job ran where it ran.
//!
//! [`NominalCostModel`] uses fixed, uncalibrated rates; a calibrated model plugs in
//! through the same [`CostModel`] trait.
//!
//! Graph jobs add a transfer term: reading their inputs (other jobs' outputs) from the
//! queue. A live worker whose output cache holds some of them pays only for the rest,
//! so the next step of a chain goes to the worker that made its inputs unless another
//! lane is sooner even so; the decision then names that worker, and the queue offers
//! the job to it alone for [`EarliestFinish::locality_wait`] before any worker of the
//! lane may take it (the holder may be busy, or may have died).

use crate::model::cost::Cost;
pub use crate::model::decision::PlacementDecision;
use crate::model::device::DeviceClass;
use crate::model::envelope::JobEnvelope;
use crate::model::id::JobId;
use crate::scheduler::locality::HeldInputs;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// What the scheduler knows about the cluster when it places a job.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterFacts {
    /// Live worker slots (sum of concurrency) per class.
    pub slots: BTreeMap<DeviceClass, u32>,
    /// Estimated seconds of work queued per class.
    pub backlog_s: BTreeMap<DeviceClass, f64>,
    /// Live workers by id: their lane and free slots (from heartbeats, then kept up
    /// to date by the scheduler's own placements, see [`ClusterFacts::credit_holders`]).
    pub workers: BTreeMap<String, LiveWorker>,
    /// Parent jobs whose finishing has been counted as a freed slot.
    credited: BTreeSet<JobId>,
}

/// One live worker, as placement sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveWorker {
    /// The lane it serves.
    pub lane: DeviceClass,
    /// Jobs it runs at once.
    pub slots: u32,
    /// Slots not running a job (at its last heartbeat, less the jobs placed on it
    /// since, plus the parents it has finished since).
    pub free_slots: u32,
}

impl ClusterFacts {
    /// A released graph job's parents have just finished, each on the worker named: the
    /// slot it ran in is free again. Counted once per parent, so the many children of
    /// one parent do not all claim its worker's one slot.
    pub fn credit_holders(&mut self, holders: &[(JobId, String)]) {
        for (parent, worker) in holders {
            if self.credited.insert(parent.clone())
                && let Some(w) = self.workers.get_mut(worker)
            {
                w.free_slots = (w.free_slots + 1).min(w.slots.max(1));
            }
        }
    }

    /// Seconds of `class`'s queued work per live slot: how long a new job waits there.
    pub fn backlog_share(&self, class: DeviceClass) -> f64 {
        let slots = f64::from(self.slots.get(&class).copied().unwrap_or(0).max(1));
        self.backlog_s.get(&class).copied().unwrap_or(0.0) / slots
    }

    /// A job was placed on `worker`: one slot fewer until the next heartbeat says.
    pub fn take_slot(&mut self, worker: &str) {
        if let Some(w) = self.workers.get_mut(worker) {
            w.free_slots = w.free_slots.saturating_sub(1);
        }
    }

    /// Facts with the given live slots and no backlog.
    pub fn with_slots(slots: &[(DeviceClass, u32)]) -> Self {
        ClusterFacts {
            slots: slots.iter().copied().collect(),
            ..ClusterFacts::default()
        }
    }
}

/// Turns a job's cost into seconds on a device class.
pub trait CostModel: Send + Sync {
    /// Estimated seconds to run a job of `kind` with `cost` on `class`, transfers
    /// included.
    fn estimate(&self, kind: &str, cost: &Cost, class: DeviceClass) -> f64;

    /// A short name recorded with each decision (says whether it was calibrated). It
    /// is stored in every job's record, so it stays a few words: where the model came
    /// from belongs in [`description`](Self::description).
    fn name(&self) -> String;

    /// The name with where the model came from, for logs and reports (said once, not
    /// per job). Defaults to [`name`](Self::name).
    fn description(&self) -> String {
        self.name()
    }

    /// Estimated seconds to read `bytes` of inputs from the queue (another job's
    /// outputs, stored as blobs) and decode them. The default is a nominal
    /// [`QUEUE_BANDWIDTH`].
    fn fetch_estimate(&self, bytes: f64) -> f64 {
        bytes / QUEUE_BANDWIDTH
    }
}

/// Nominal rate, bytes per second, at which a worker reads a blob from the queue and
/// decodes it: the 2-core machine of docs/benchmarks.md's graph chain moved a 64 MiB
/// intermediate through Redis (upload, download, decode) at a few hundred MB/s.
pub const QUEUE_BANDWIDTH: f64 = 0.5e9;

/// Fixed, uncalibrated rates: a few-core CPU and a data-centre GPU behind PCIe.
///
/// These are orders of magnitude, not measurements of your machines; they are enough
/// to keep small vector adds on the CPU and send large matmuls to the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NominalCostModel {
    /// CPU floating-point rate (flop/s).
    pub cpu_flops: f64,
    /// CPU memory bandwidth (byte/s).
    pub cpu_bandwidth: f64,
    /// CPU fixed overhead per job (s).
    pub cpu_overhead_s: f64,
    /// GPU floating-point rate (flop/s).
    pub gpu_flops: f64,
    /// GPU memory bandwidth (byte/s).
    pub gpu_bandwidth: f64,
    /// Host-device bandwidth (byte/s).
    pub pcie_bandwidth: f64,
    /// GPU fixed overhead per job (s), plus per launch below.
    pub gpu_overhead_s: f64,
    /// GPU overhead per kernel launch (s).
    pub gpu_launch_s: f64,
}

impl Default for NominalCostModel {
    fn default() -> Self {
        NominalCostModel {
            cpu_flops: 100e9,
            cpu_bandwidth: 10e9,
            cpu_overhead_s: 20e-6,
            gpu_flops: 20e12,
            gpu_bandwidth: 1.5e12,
            pcie_bandwidth: 12e9,
            gpu_overhead_s: 200e-6,
            gpu_launch_s: 10e-6,
        }
    }
}

impl CostModel for NominalCostModel {
    fn estimate(&self, _kind: &str, c: &Cost, class: DeviceClass) -> f64 {
        match class {
            DeviceClass::Cpu => {
                self.cpu_overhead_s + (c.flops / self.cpu_flops).max(c.bytes / self.cpu_bandwidth)
            }
            DeviceClass::Gpu => {
                self.gpu_overhead_s
                    + f64::from(c.launches) * self.gpu_launch_s
                    + c.transfer_bytes / self.pcie_bandwidth
                    + (c.flops / self.gpu_flops).max(c.bytes / self.gpu_bandwidth)
            }
        }
    }

    fn name(&self) -> String {
        "nominal (uncalibrated)".into()
    }
}

/// Chooses a lane for a job.
pub trait Placement: Send + Sync {
    /// Decides where `job`, of cost `cost`, should run.
    fn place(&self, job: &JobEnvelope, cost: &Cost, facts: &ClusterFacts) -> PlacementDecision;

    /// Decides where `job` should run knowing which workers hold its inputs. The
    /// default ignores them.
    fn place_near(
        &self,
        job: &JobEnvelope,
        cost: &Cost,
        facts: &ClusterFacts,
        inputs: &HeldInputs,
    ) -> PlacementDecision {
        let _ = inputs;
        self.place(job, cost, facts)
    }
}

/// Earliest estimated finish among the classes with live workers (and the live
/// workers holding a graph job's inputs); pins win.
pub struct EarliestFinish<M> {
    model: M,
    locality_wait: Duration,
}

/// How long a job placed by locality waits for its worker by default.
pub const LOCALITY_WAIT: Duration = Duration::from_secs(2);

impl<M: CostModel> EarliestFinish<M> {
    /// The policy over the given cost model.
    pub fn new(model: M) -> Self {
        EarliestFinish {
            model,
            locality_wait: LOCALITY_WAIT,
        }
    }

    /// How long a job placed on the worker holding its inputs is offered to that
    /// worker alone (default [`LOCALITY_WAIT`]). Longer keeps more chains local when
    /// their worker is busy; shorter bounds the delay when it has died. Zero turns
    /// placement by locality off (inputs are still counted as read from the queue).
    pub fn with_locality_wait(mut self, wait: Duration) -> Self {
        self.locality_wait = wait;
        self
    }

    /// The wait set by [`with_locality_wait`](Self::with_locality_wait).
    pub fn locality_wait(&self) -> Duration {
        self.locality_wait
    }

    /// Seconds until the job would finish on `class`: its share of the class's
    /// backlog, its own run, and `fetch_s` to read its graph inputs.
    fn finish(
        &self,
        job: &JobEnvelope,
        cost: &Cost,
        facts: &ClusterFacts,
        class: DeviceClass,
        fetch_s: f64,
    ) -> f64 {
        facts.backlog_share(class) + self.model.estimate(&job.kind, cost, class) + fetch_s
    }

    /// The earliest-finish lane, every input read from the queue.
    fn by_class(
        &self,
        job: &JobEnvelope,
        cost: &Cost,
        facts: &ClusterFacts,
        fetch_s: f64,
    ) -> PlacementDecision {
        let live: Vec<DeviceClass> = DeviceClass::ALL
            .into_iter()
            .filter(|c| facts.slots.get(c).copied().unwrap_or(0) > 0)
            .collect();
        let considered: Vec<DeviceClass> = match job.device.pinned() {
            Some(pin) => vec![pin],
            None if live.is_empty() => vec![DeviceClass::Cpu],
            None => live.clone(),
        };
        let estimates: BTreeMap<DeviceClass, f64> = considered
            .iter()
            .map(|&c| (c, self.finish(job, cost, facts, c, fetch_s)))
            .collect();
        let lane = estimates
            .iter()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map(|(c, _)| *c)
            .unwrap_or(DeviceClass::Cpu);
        let reason = match job.device.pinned() {
            Some(pin) if live.contains(&pin) => format!("pinned to {pin}"),
            Some(pin) => format!("pinned to {pin} (no live {pin} worker yet; it waits)"),
            None if live.is_empty() => "no live workers yet; defaulting to cpu".to_string(),
            None if estimates.len() == 1 => format!("only {lane} workers are alive"),
            None => {
                let parts: Vec<String> = estimates
                    .iter()
                    .map(|(c, s)| format!("{c} {}", fmt_seconds(*s)))
                    .collect();
                format!("earliest finish on {lane} ({})", parts.join(" vs "))
            }
        };
        PlacementDecision {
            lane,
            run_estimate_s: self.model.estimate(&job.kind, cost, lane),
            estimates,
            reason,
            model: self.model.name(),
            worker: None,
            worker_wait_ms: 0,
        }
    }
}

impl Default for EarliestFinish<NominalCostModel> {
    fn default() -> Self {
        Self::new(NominalCostModel::default())
    }
}

impl<M: CostModel> Placement for EarliestFinish<M> {
    fn place(&self, job: &JobEnvelope, cost: &Cost, facts: &ClusterFacts) -> PlacementDecision {
        self.by_class(job, cost, facts, 0.0)
    }

    fn place_near(
        &self,
        job: &JobEnvelope,
        cost: &Cost,
        facts: &ClusterFacts,
        inputs: &HeldInputs,
    ) -> PlacementDecision {
        let fetch_all = self.model.fetch_estimate(inputs.input_bytes);
        let mut d = self.by_class(job, cost, facts, fetch_all);
        if self.locality_wait.is_zero() {
            return d;
        }
        // Each live holder on a lane the job may use: it waits for the class's queue
        // only when busy, and reads only the inputs it does not hold. Elsewhere, a lane
        // with another free worker starts the job at once.
        let mut best: Option<(&String, DeviceClass, f64, f64, f64)> = None;
        for (id, &held) in &inputs.on {
            let Some(w) = facts.workers.get(id) else {
                continue;
            };
            if !d.estimates.contains_key(&w.lane) {
                continue;
            }
            let queued = if w.free_slots > 0 {
                0.0
            } else {
                facts.backlog_share(w.lane)
            };
            let finish = queued
                + self.model.estimate(&job.kind, cost, w.lane)
                + self
                    .model
                    .fetch_estimate((inputs.input_bytes - held).max(0.0));
            let elsewhere = d
                .estimates
                .iter()
                .map(|(&class, &s)| {
                    let free = facts
                        .workers
                        .iter()
                        .any(|(other, o)| other != id && o.lane == class && o.free_slots > 0);
                    if free {
                        self.model.estimate(&job.kind, cost, class) + fetch_all
                    } else {
                        s
                    }
                })
                .fold(f64::INFINITY, f64::min);
            if finish <= elsewhere && best.is_none_or(|b| finish < b.2) {
                best = Some((id, w.lane, finish, held, elsewhere));
            }
        }
        if let Some((id, lane, finish, held, elsewhere)) = best {
            d.reason = format!(
                "inputs held by worker {id} ({} of {} cached there; {} there vs {} elsewhere)",
                fmt_bytes(held),
                fmt_bytes(inputs.input_bytes),
                fmt_seconds(finish),
                fmt_seconds(elsewhere)
            );
            d.lane = lane;
            d.run_estimate_s = self.model.estimate(&job.kind, cost, lane);
            d.worker = Some(id.clone());
            d.worker_wait_ms = (self.locality_wait.as_millis() as u64).max(1);
        }
        d
    }
}

/// Bytes in a compact human form (`512B`, `64.0MiB`).
pub fn fmt_bytes(b: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = b;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0}{}", UNITS[0])
    } else {
        format!("{v:.1}{}", UNITS[unit])
    }
}

/// Seconds in a compact human form (`850µs`, `12.3ms`, `4.20s`).
pub fn fmt_seconds(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.0}µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1}ms", s * 1e3)
    } else {
        format!("{s:.2}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{Matmul, VectorAdd};
    use crate::model::device::DevicePref;
    use crate::model::job::Job;

    fn env<J: Job>(j: J) -> (JobEnvelope, Cost) {
        let cost = j.cost();
        (JobEnvelope::new(j).unwrap(), cost)
    }

    #[test]
    fn small_vector_add_stays_on_cpu_big_matmul_goes_to_gpu() {
        let p = EarliestFinish::default();
        let facts = ClusterFacts::with_slots(&[(DeviceClass::Cpu, 2), (DeviceClass::Gpu, 1)]);
        let (e, c) = env(VectorAdd::synthetic(10_000, 1));
        assert_eq!(p.place(&e, &c, &facts).lane, DeviceClass::Cpu);
        let (e, c) = env(Matmul::synthetic(4096, 4096, 4096, 1));
        let d = p.place(&e, &c, &facts);
        assert_eq!(d.lane, DeviceClass::Gpu, "{}", d.reason);
        assert_eq!(d.estimates.len(), 2);
    }

    #[test]
    fn pins_win_and_no_gpu_means_cpu() {
        let p = EarliestFinish::default();
        let (e, c) = env(Matmul::synthetic(4096, 4096, 4096, 1));
        let cpu_only = ClusterFacts::with_slots(&[(DeviceClass::Cpu, 2)]);
        assert_eq!(p.place(&e, &c, &cpu_only).lane, DeviceClass::Cpu);
        let pinned = e.clone().with_device(DevicePref::Gpu);
        let d = p.place(&pinned, &c, &cpu_only);
        assert_eq!(d.lane, DeviceClass::Gpu);
        assert!(d.reason.contains("pinned"));
        let (e, c) = env(VectorAdd::synthetic(10, 1));
        assert_eq!(
            p.place(&e, &c, &ClusterFacts::default()).lane,
            DeviceClass::Cpu
        );
    }

    #[test]
    fn backlog_pushes_work_to_the_other_lane() {
        let p = EarliestFinish::default();
        let (e, c) = env(Matmul::synthetic(4096, 4096, 4096, 1));
        let mut facts = ClusterFacts::with_slots(&[(DeviceClass::Cpu, 2), (DeviceClass::Gpu, 1)]);
        facts.backlog_s.insert(DeviceClass::Gpu, 1e6);
        assert_eq!(p.place(&e, &c, &facts).lane, DeviceClass::Cpu);
    }

    fn facts_with(workers: &[(&str, DeviceClass, bool)]) -> ClusterFacts {
        let mut facts = ClusterFacts::with_slots(&[(DeviceClass::Cpu, 2), (DeviceClass::Gpu, 1)]);
        for &(id, lane, free) in workers {
            let free_slots = u32::from(free);
            facts.workers.insert(
                id.into(),
                LiveWorker {
                    lane,
                    slots: 1,
                    free_slots,
                },
            );
        }
        facts
    }

    fn held(total: f64, on: &[(&str, f64)]) -> HeldInputs {
        HeldInputs {
            input_bytes: total,
            on: on.iter().map(|(w, b)| (w.to_string(), *b)).collect(),
        }
    }

    #[test]
    fn a_job_goes_to_the_live_worker_holding_its_inputs() {
        let p = EarliestFinish::default().with_locality_wait(Duration::from_millis(700));
        let (e, c) = env(VectorAdd::synthetic(1 << 24, 1));
        let facts = facts_with(&[
            ("w1", DeviceClass::Cpu, true),
            ("w2", DeviceClass::Cpu, true),
        ]);
        let d = p.place_near(&e, &c, &facts, &held(128e6, &[("w2", 128e6)]));
        assert_eq!(d.worker.as_deref(), Some("w2"), "{}", d.reason);
        assert_eq!(d.lane, DeviceClass::Cpu);
        assert_eq!(d.worker_wait_ms, 700);
        assert!(
            d.reason
                .starts_with("inputs held by worker w2 (122.1MiB of 122.1MiB"),
            "{}",
            d.reason
        );
        // The same job with nothing held: any worker.
        let d = p.place_near(&e, &c, &facts, &held(128e6, &[]));
        assert_eq!(d.worker, None);
        // A holder that is no longer alive is not waited for.
        let gone = facts_with(&[("w1", DeviceClass::Cpu, true)]);
        assert_eq!(
            p.place_near(&e, &c, &gone, &held(128e6, &[("w2", 128e6)]))
                .worker,
            None
        );
    }

    #[test]
    fn a_clearly_sooner_lane_or_a_pin_beats_locality() {
        let p = EarliestFinish::default();
        // A big matmul whose small inputs sit on a CPU worker still belongs on the GPU.
        let (e, c) = env(Matmul::synthetic(4096, 4096, 4096, 1));
        let facts = facts_with(&[
            ("cpu1", DeviceClass::Cpu, true),
            ("gpu1", DeviceClass::Gpu, true),
        ]);
        let d = p.place_near(&e, &c, &facts, &held(64e6, &[("cpu1", 64e6)]));
        assert_eq!(
            (d.lane, d.worker.as_deref()),
            (DeviceClass::Gpu, None),
            "{}",
            d.reason
        );
        // Pinned to the GPU: a CPU holder is not considered; a GPU holder is.
        let pinned = e.clone().with_device(crate::model::device::DevicePref::Gpu);
        let d = p.place_near(&pinned, &c, &facts, &held(64e6, &[("cpu1", 64e6)]));
        assert_eq!(d.worker, None);
        let d = p.place_near(&pinned, &c, &facts, &held(64e6, &[("gpu1", 64e6)]));
        assert_eq!(d.worker.as_deref(), Some("gpu1"));
        // A busy holder behind a long backlog loses to its idle class-mates' share.
        let (e, c) = env(VectorAdd::synthetic(1 << 20, 1));
        let mut busy = facts_with(&[
            ("w1", DeviceClass::Cpu, false),
            ("w2", DeviceClass::Cpu, true),
        ]);
        busy.slots.remove(&DeviceClass::Gpu);
        busy.backlog_s.insert(DeviceClass::Cpu, 100.0);
        let d = p.place_near(&e, &c, &busy, &held(8e6, &[("w1", 8e6)]));
        assert_eq!(d.worker, None, "{}", d.reason);
    }

    #[test]
    fn a_finished_parent_frees_its_workers_slot_once() {
        let p = EarliestFinish::default();
        let (e, c) = env(VectorAdd::synthetic(1 << 20, 1));
        let mut facts = facts_with(&[
            ("w1", DeviceClass::Cpu, false),
            ("w2", DeviceClass::Cpu, true),
        ]);
        facts.backlog_s.insert(DeviceClass::Cpu, 1.0);
        let held = held(8e6, &[("w1", 8e6)]);
        let parent = JobId::parse("{g}p").expect("a valid id");
        // The heartbeat says w1 is busy; its parent job has just finished, so it is not.
        facts.credit_holders(&[(parent.clone(), "w1".into())]);
        let d = p.place_near(&e, &c, &facts, &held);
        assert_eq!(d.worker.as_deref(), Some("w1"), "{}", d.reason);
        facts.take_slot("w1");
        // A second child of the same parent finds w1's slot taken.
        facts.credit_holders(&[(parent, "w1".into())]);
        assert_eq!(p.place_near(&e, &c, &facts, &held).worker, None);
    }
}
