//! What the simulated device did, for tests to assert on: bytes and copies each way,
//! copies per host buffer, registrations, launches per kernel, streams used and how
//! much their work overlapped, and anything the simulator caught the program doing
//! wrong (violations).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// The counters, reset by `gpujobs_sim_reset_counters`.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    /// Bytes copied host to device.
    pub h2d_bytes: u64,
    /// Bytes copied device to host.
    pub d2h_bytes: u64,
    /// Bytes copied device to device.
    pub d2d_bytes: u64,
    /// Host-to-device copies.
    pub h2d_copies: u64,
    /// Device-to-host copies.
    pub d2h_copies: u64,
    /// Copies whose host side was pageable memory (staged by the driver).
    pub pageable_copies: u64,
    /// Copies whose host side was pinned or registered memory (direct).
    pub pinned_copies: u64,
    /// Copies per host buffer (the start of its pinned/registered range, or its
    /// address when pageable).
    pub copies_per_host_buffer: BTreeMap<usize, u64>,
    /// `cuMemHostRegister` calls that succeeded.
    pub host_registrations: u64,
    /// Registrations per host address.
    pub registrations_per_host_buffer: BTreeMap<usize, u64>,
    /// `cuMemHostUnregister` calls that succeeded.
    pub host_unregistrations: u64,
    /// Pinned host allocations.
    pub pinned_allocations: u64,
    /// Device allocations.
    pub device_allocations: u64,
    /// Kernel launches that ran, by name.
    pub launches: BTreeMap<String, u64>,
    /// Streams created.
    pub streams_created: u64,
    /// Streams (by handle) that ran any work, the legacy default stream as 0.
    pub streams_used: BTreeSet<usize>,
    /// The most streams with queued work seen when any operation ran.
    pub max_busy_streams: u64,
    /// Kernels that ran while a copy was queued on another stream (copy/compute overlap).
    pub kernel_copy_overlap: u64,
    /// Synchronisations dropped by the `drop_sync` fault.
    pub dropped_syncs: u64,
    /// Faults that fired.
    pub faults_fired: u64,
    /// Misuse the simulator caught (host memory freed with copies queued, a kernel
    /// without a twin, a twin that refused its launch).
    pub violations: Vec<String>,
}

impl Counters {
    /// The counters as a JSON object.
    pub fn to_json(&self, device_in_use: u64, device_peak: u64, live_allocations: usize) -> String {
        let mut s = String::from("{");
        let mut num = |k: &str, v: u64| {
            let _ = write!(s, "\"{k}\":{v},");
        };
        num("h2d_bytes", self.h2d_bytes);
        num("d2h_bytes", self.d2h_bytes);
        num("d2d_bytes", self.d2d_bytes);
        num("h2d_copies", self.h2d_copies);
        num("d2h_copies", self.d2h_copies);
        num("pageable_copies", self.pageable_copies);
        num("pinned_copies", self.pinned_copies);
        num("host_registrations", self.host_registrations);
        num("host_unregistrations", self.host_unregistrations);
        num("pinned_allocations", self.pinned_allocations);
        num("device_allocations", self.device_allocations);
        num("streams_created", self.streams_created);
        num("max_busy_streams", self.max_busy_streams);
        num("kernel_copy_overlap", self.kernel_copy_overlap);
        num("dropped_syncs", self.dropped_syncs);
        num("faults_fired", self.faults_fired);
        num("device_bytes_in_use", device_in_use);
        num("device_bytes_peak", device_peak);
        num("live_device_allocations", live_allocations as u64);
        let map = |m: &BTreeMap<usize, u64>| {
            let items: Vec<String> = m.iter().map(|(k, v)| format!("\"{k:#x}\":{v}")).collect();
            format!("{{{}}}", items.join(","))
        };
        let _ = write!(
            s,
            "\"copies_per_host_buffer\":{},",
            map(&self.copies_per_host_buffer)
        );
        let _ = write!(
            s,
            "\"registrations_per_host_buffer\":{},",
            map(&self.registrations_per_host_buffer)
        );
        let launches: Vec<String> = self
            .launches
            .iter()
            .map(|(k, v)| format!("{}:{v}", json_string(k)))
            .collect();
        let _ = write!(s, "\"launches\":{{{}}},", launches.join(","));
        let streams: Vec<String> = self.streams_used.iter().map(|s| s.to_string()).collect();
        let _ = write!(s, "\"streams_used\":[{}],", streams.join(","));
        let v: Vec<String> = self.violations.iter().map(|v| json_string(v)).collect();
        let _ = write!(s, "\"violations\":[{}]", v.join(","));
        s.push('}');
        s
    }
}

/// A JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
