//! Outputs kept in device memory for the jobs that read them next (part of the device
//! pipeline, off by default).
//!
//! A graph's next step usually runs on the worker that made its input (the scheduler
//! places it there, and the worker's output cache hands the next job the very same
//! host values). When the pipeline is on, the executor keeps each output's device copy
//! here, keyed by the identity of its host values; an input that is one of them is
//! copied device to device instead of crossing PCIe again. An entry names its host
//! values with a weak handle: it does not keep them (or their pooled memory) alive, it
//! stops matching once they are dropped, and its device copy is freed then. Bounded by
//! bytes, least recently used first out; admission evicts entries before it refuses a
//! job for lack of device memory. Evicting only drops the device copy: the host values
//! are the job's output and stay where they are.

use cust::memory::DeviceBuffer;
use gpujobs_core::model::tensor::{Values, WeakValues};

struct Entry {
    values: WeakValues,
    len: usize,
    dev: DeviceBuffer<f32>,
    last: u64,
}

/// The kept outputs of one device.
#[derive(Default)]
pub(crate) struct Resident {
    entries: Vec<Entry>,
    bytes: u64,
    tick: u64,
}

impl std::fmt::Debug for Resident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resident")
            .field("entries", &self.entries.len())
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Resident {
    /// The device copy of `values`, if kept.
    pub(crate) fn find(&mut self, values: &Values) -> Option<&DeviceBuffer<f32>> {
        self.prune();
        self.tick += 1;
        let tick = self.tick;
        let e = self
            .entries
            .iter_mut()
            .find(|e| e.values.refers_to(values) && e.len == values.len())?;
        e.last = tick;
        Some(&e.dev)
    }

    /// Keeps `dev` as the device copy of `values`, evicting the least recently used
    /// entries past `bound` bytes (an output larger than the bound is not kept).
    pub(crate) fn insert(&mut self, values: &Values, dev: DeviceBuffer<f32>, bound: u64) {
        self.prune();
        let bytes = values.len() as u64 * 4;
        if bytes > bound {
            return;
        }
        while self.bytes + bytes > bound && self.evict_one().is_some() {}
        self.tick += 1;
        self.bytes += bytes;
        self.entries.push(Entry {
            values: values.downgrade(),
            len: values.len(),
            dev,
            last: self.tick,
        });
    }

    /// Frees the device copies of values that no longer exist.
    fn prune(&mut self) {
        let before = self.entries.len();
        self.entries.retain(|e| e.values.is_alive());
        if self.entries.len() != before {
            self.bytes = self.entries.iter().map(|e| e.len as u64 * 4).sum();
        }
    }

    /// Drops the least recently used entry's device copy; its bytes, or `None` if empty.
    pub(crate) fn evict_one(&mut self) -> Option<u64> {
        self.prune();
        let (i, _) = self
            .entries
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| e.last)?;
        let e = self.entries.swap_remove(i);
        let bytes = e.len as u64 * 4;
        self.bytes -= bytes;
        Some(bytes)
    }
}
