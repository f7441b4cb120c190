//! Key names, all under the namespace (see `docs/wire-format.md`).

use gpujobs_core::{DeviceClass, JobId, Priority};

/// Consumer group of the schedulers on the submit stream.
pub const SCHEDULERS: &str = "schedulers";
/// Consumer group of the workers on the lane streams.
pub const WORKERS: &str = "workers";

/// Builds the keys of one namespace.
#[derive(Debug, Clone)]
pub struct Keys {
    ns: String,
}

impl Keys {
    /// Keys under `namespace`.
    pub fn new(namespace: &str) -> Self {
        Keys {
            ns: namespace.to_string(),
        }
    }

    /// The namespace (Lua scripts build per-job keys from it).
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// Stream of new jobs, one field `job` with the JSON envelope.
    pub fn submit(&self) -> String {
        format!("{}:submit", self.ns)
    }

    /// Stream of one lane and priority, entries `id = <job id>`.
    pub fn lane(&self, lane: DeviceClass, p: Priority) -> String {
        format!("{}:lane:{}:{}", self.ns, lane, p)
    }

    /// Sorted set of jobs of a lane waiting out a retry backoff (score: due, ms).
    pub fn delayed(&self, lane: DeviceClass) -> String {
        format!("{}:delayed:{}", self.ns, lane)
    }

    /// Sum of the placement estimates of a lane's queued jobs, in seconds.
    pub fn backlog(&self, lane: DeviceClass) -> String {
        format!("{}:backlog:{}", self.ns, lane)
    }

    /// Hash with a job's record.
    pub fn job(&self, id: &JobId) -> String {
        format!("{}:job:{}", self.ns, id)
    }

    /// Binary blob of a job (`name` is `t0`, ... for inputs, `out:t0`, ... for outputs).
    pub fn blob(&self, id: &JobId, name: &str) -> String {
        format!("{}:blob:{}:{}", self.ns, id, name)
    }

    /// Dead-letter stream.
    pub fn dead(&self) -> String {
        format!("{}:dead", self.ns)
    }

    /// Capped stream of state changes, for monitors.
    pub fn events(&self) -> String {
        format!("{}:events", self.ns)
    }

    /// Hash of worker heartbeats (field: worker id, value: JSON).
    pub fn workers(&self) -> String {
        format!("{}:workers", self.ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The KEDA triggers in deploy/k8s watch exactly the lane streams the queue writes,
    /// in the default namespace: renaming a key without the manifests fails here.
    #[test]
    fn keda_triggers_watch_the_lane_streams() {
        let manifests = [
            include_str!("../../deploy/k8s/autoscaling-cpu.yaml"),
            include_str!("../../deploy/k8s/autoscaling-gpu.yaml"),
        ];
        let watched: Vec<&str> = manifests
            .iter()
            .flat_map(|m| m.lines())
            .filter_map(|l| l.trim().strip_prefix("stream: "))
            .map(|s| s.trim_matches('"'))
            .collect();
        let keys = Keys::new("gpujobs");
        let mut want = Vec::new();
        for lane in DeviceClass::ALL {
            for p in Priority::ALL {
                want.push(keys.lane(lane, p));
            }
        }
        let mut got: Vec<String> = watched.iter().map(|s| s.to_string()).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }
}
