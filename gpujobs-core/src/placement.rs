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

use crate::cost::Cost;
use crate::device::DeviceClass;
use crate::envelope::JobEnvelope;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a job was placed where it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlacementDecision {
    /// The chosen lane.
    pub lane: DeviceClass,
    /// Estimated seconds until the job would finish on each class considered
    /// (backlog share plus the job's own time).
    pub estimates: BTreeMap<DeviceClass, f64>,
    /// The job's own estimated run time on the chosen lane, in seconds.
    pub run_estimate_s: f64,
    /// One line for humans.
    pub reason: String,
    /// The cost model's name.
    pub model: String,
}

impl PlacementDecision {
    /// The job's own run estimate if `lane` is the chosen lane.
    pub fn estimate_for(&self, lane: DeviceClass) -> Option<f64> {
        (lane == self.lane).then_some(self.run_estimate_s)
    }
}

/// What the scheduler knows about the cluster when it places a job.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterFacts {
    /// Live worker slots (sum of concurrency) per class.
    pub slots: BTreeMap<DeviceClass, u32>,
    /// Estimated seconds of work queued per class.
    pub backlog_s: BTreeMap<DeviceClass, f64>,
}

impl ClusterFacts {
    /// Facts with the given live slots and no backlog.
    pub fn with_slots(slots: &[(DeviceClass, u32)]) -> Self {
        ClusterFacts {
            slots: slots.iter().copied().collect(),
            backlog_s: BTreeMap::new(),
        }
    }
}

/// Turns a job's cost into seconds on a device class.
pub trait CostModel: Send + Sync {
    /// Estimated seconds to run a job of `kind` with `cost` on `class`, transfers
    /// included.
    fn estimate(&self, kind: &str, cost: &Cost, class: DeviceClass) -> f64;

    /// A name recorded with each decision (says whether it was calibrated).
    fn name(&self) -> String;
}

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
}

/// Earliest estimated finish among the classes with live workers; pins win.
pub struct EarliestFinish<M> {
    model: M,
}

impl<M: CostModel> EarliestFinish<M> {
    /// The policy over the given cost model.
    pub fn new(model: M) -> Self {
        EarliestFinish { model }
    }
}

impl Default for EarliestFinish<NominalCostModel> {
    fn default() -> Self {
        Self::new(NominalCostModel::default())
    }
}

impl<M: CostModel> Placement for EarliestFinish<M> {
    fn place(&self, job: &JobEnvelope, cost: &Cost, facts: &ClusterFacts) -> PlacementDecision {
        let finish = |class: DeviceClass| {
            let slots = f64::from(facts.slots.get(&class).copied().unwrap_or(0).max(1));
            let backlog = facts.backlog_s.get(&class).copied().unwrap_or(0.0);
            backlog / slots + self.model.estimate(&job.kind, cost, class)
        };
        let live: Vec<DeviceClass> = DeviceClass::ALL
            .into_iter()
            .filter(|c| facts.slots.get(c).copied().unwrap_or(0) > 0)
            .collect();
        let considered: Vec<DeviceClass> = match job.device.pinned() {
            Some(pin) => vec![pin],
            None if live.is_empty() => vec![DeviceClass::Cpu],
            None => live.clone(),
        };
        let estimates: BTreeMap<DeviceClass, f64> =
            considered.iter().map(|&c| (c, finish(c))).collect();
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
        }
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
    use crate::device::DevicePref;
    use crate::job::Job;
    use crate::jobs::{Matmul, VectorAdd};

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
}
