//! What a job costs, in units a placement policy can turn into seconds per device.

use serde::{Deserialize, Serialize};

/// A job's work and data volume, independent of the device that will run it.
///
/// A cost model (see [`crate::scheduler::placement::CostModel`]) turns this into an estimated time
/// per device class: a CPU pays for `flops` and `bytes`; a GPU pays for them at its own
/// rates plus `transfer_bytes` over PCIe and a launch overhead, which is why a small
/// vector add belongs on the CPU even when a GPU is free.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Cost {
    /// Floating-point operations (a fused multiply-add counts as two).
    pub flops: f64,
    /// Bytes read and written in memory by the computation, at least once.
    pub bytes: f64,
    /// Bytes copied host-to-device plus device-to-host when run on a GPU.
    pub transfer_bytes: f64,
    /// Peak device (or host) memory the job needs, in bytes.
    pub memory_bytes: u64,
    /// Number of kernel launches or passes, each paying a fixed overhead.
    pub launches: u32,
}

impl Cost {
    /// Arithmetic intensity in flops per byte moved (0 when no bytes are moved).
    pub fn intensity(&self) -> f64 {
        if self.bytes > 0.0 {
            self.flops / self.bytes
        } else {
            0.0
        }
    }
}
