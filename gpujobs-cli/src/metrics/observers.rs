//! The worker and scheduler observers: how the loops feed the counters and histograms.

use super::*;
use gpujobs_core::{DeviceClass, Outcome, SchedulerObserver, Timings, WorkerObserver};

impl WorkerObserver for Metrics {
    fn attempt_ended(
        &self,
        kind: &str,
        lane: DeviceClass,
        outcome: Outcome,
        timings: Option<&Timings>,
    ) {
        let device = lane.to_string();
        self.jobs
            .get_or_create(&JobLabels {
                kind: kind.into(),
                device: device.clone(),
                outcome: outcome.as_str().into(),
            })
            .inc();
        match outcome {
            Outcome::Retrying => {
                self.retries.inc();
            }
            Outcome::Dead | Outcome::Failed => {
                self.dead_letters.inc();
            }
            _ => {}
        }
        if let Some(t) = timings {
            for (stage, v) in [
                ("queue_wait", t.queue_wait_s),
                ("transfer", t.h2d_s + t.d2h_s),
                ("compute", t.compute_s),
                ("total", t.total_s.max(t.run_s)),
            ] {
                self.durations
                    .get_or_create(&StageLabels {
                        kind: kind.into(),
                        device: device.clone(),
                        stage: stage.into(),
                    })
                    .observe(v);
            }
        }
    }
}

impl SchedulerObserver for Metrics {
    fn placed(&self, lane: DeviceClass) {
        self.placed
            .get_or_create(&LaneLabels {
                lane: lane.to_string(),
            })
            .inc();
    }
    fn placed_by_locality(&self, lane: DeviceClass) {
        self.placed_by_locality
            .get_or_create(&LaneLabels {
                lane: lane.to_string(),
            })
            .inc();
    }
    fn rejected(&self) {
        self.rejected.inc();
        self.dead_letters.inc();
    }
}
