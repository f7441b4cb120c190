//! A worker's cache of recent graph outputs, bounded in bytes, least recently used
//! first out.
//!
//! A job of a graph that runs on the worker that made its input reads the cached tensor:
//! no round trip to the queue, no copy. Outputs are still recorded in the queue as
//! usual, so a cache that misses (another worker, an eviction, a restart) only costs a
//! read. Only outputs of graph jobs (ids with a `{tag}`) are kept: no other job can
//! name them as an input.

use crate::model::graph::{graph_tag, output_tensors};
use crate::model::id::JobId;
use crate::model::tensor::{Blobs, OutputRef, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many cached jobs a heartbeat names at most (the most recently used).
pub const ADVERTISED_JOBS: usize = 64;

/// Host-memory cache of output tensors, by job and output path.
#[derive(Debug)]
pub struct OutputCache {
    capacity: u64,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
    reruns: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<OutputRef, (Tensor, u64)>,
    /// Use order: tick → key; the smallest tick is evicted first.
    order: BTreeMap<u64, OutputRef>,
    bytes: u64,
    tick: u64,
}

impl Inner {
    fn touch(&mut self, key: &OutputRef) {
        self.tick += 1;
        let tick = self.tick;
        if let Some((_, t)) = self.entries.get_mut(key) {
            self.order.remove(t);
            *t = tick;
            self.order.insert(tick, key.clone());
        }
    }
}

fn size_of(t: &Tensor) -> u64 {
    t.stored().map_or(0, |v| v.len() as u64 * 4)
}

impl OutputCache {
    /// A cache holding at most `capacity` bytes of tensor data (0 turns it off).
    pub fn new(capacity: u64) -> Self {
        OutputCache {
            capacity,
            inner: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            reruns: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached tensor, if held (counted as a hit or a miss).
    pub fn get(&self, key: &OutputRef) -> Option<Tensor> {
        let mut inner = self.lock();
        let found = inner.entries.get(key).map(|(t, _)| t.clone());
        if found.is_some() {
            inner.touch(key);
            self.hits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Keeps the output tensors of job `job` (its output JSON and blobs), evicting the
    /// least recently used to make room; `true` when every tensor was kept. Outputs of
    /// jobs outside graphs, and tensors larger than the whole cache, are not kept.
    pub fn insert(&self, job: &JobId, output: &serde_json::Value, blobs: &Blobs) -> bool {
        if self.capacity == 0 || graph_tag(job.as_str()).is_none() {
            return false;
        }
        let mut inner = self.lock();
        let mut all = true;
        for (path, tensor) in output_tensors(output, blobs) {
            let size = size_of(&tensor);
            if size > self.capacity {
                all = false;
                continue;
            }
            let key = OutputRef {
                job: job.clone(),
                output: path,
            };
            if let Some((old, t)) = inner.entries.remove(&key) {
                inner.order.remove(&t);
                inner.bytes -= size_of(&old);
            }
            while inner.bytes + size > self.capacity {
                let Some((_, victim)) = inner.order.pop_first() else {
                    break;
                };
                if let Some((old, _)) = inner.entries.remove(&victim) {
                    inner.bytes -= size_of(&old);
                }
            }
            inner.tick += 1;
            let tick = inner.tick;
            inner.order.insert(tick, key.clone());
            inner.entries.insert(key, (tensor, tick));
            inner.bytes += size;
        }
        all
    }

    /// Bytes held now.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// The configured bound in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Reads answered from the cache, and reads it could not answer.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Counts one ephemeral producer this worker re-ran because it did not hold its
    /// output.
    pub fn count_rerun(&self) {
        self.reruns.fetch_add(1, Ordering::Relaxed);
    }

    /// Ephemeral producers re-run so far (see [`OutputCache::count_rerun`]).
    pub fn reruns(&self) -> u64 {
        self.reruns.load(Ordering::Relaxed)
    }

    /// The jobs whose outputs are held, most recently used first, at most
    /// [`ADVERTISED_JOBS`]: what a heartbeat tells the scheduler.
    pub fn jobs(&self) -> Vec<JobId> {
        let inner = self.lock();
        let mut out: Vec<JobId> = Vec::new();
        for key in inner.order.values().rev() {
            if !out.contains(&key.job) {
                out.push(key.job.clone());
                if out.len() == ADVERTISED_JOBS {
                    break;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(n: usize) -> (serde_json::Value, Blobs) {
        let mut blobs = Blobs::new();
        blobs.insert("t0".into(), vec![1.0f32; n].into());
        (
            serde_json::json!({"image": {"shape": [n], "blob": "t0"}}),
            blobs,
        )
    }

    fn key(job: &JobId) -> OutputRef {
        OutputRef {
            job: job.clone(),
            output: "image".into(),
        }
    }

    #[test]
    fn evicts_the_least_recently_used_within_its_bound() {
        let cache = OutputCache::new(3 * 400);
        let ids: Vec<JobId> = (0..4)
            .map(|i| JobId::parse(&format!("{{g}}j{i}")).unwrap())
            .collect();
        let (out, blobs) = output(100);
        for id in &ids[..3] {
            cache.insert(id, &out, &blobs);
        }
        assert_eq!(cache.bytes(), 1200);
        // j0 used again, so j1 is the oldest when j3 arrives.
        assert!(cache.get(&key(&ids[0])).is_some());
        cache.insert(&ids[3], &out, &blobs);
        assert_eq!(cache.bytes(), 1200);
        assert!(cache.get(&key(&ids[1])).is_none());
        assert!(cache.get(&key(&ids[0])).is_some());
        assert_eq!(cache.jobs()[0], ids[0]);
        assert_eq!(cache.hits_and_misses(), (2, 1));
        // Too big for the whole cache, and not a graph job: neither is kept.
        let (big, big_blobs) = output(1000);
        cache.insert(&JobId::parse("{g}big").unwrap(), &big, &big_blobs);
        cache.insert(&JobId::parse("plain").unwrap(), &out, &blobs);
        assert_eq!(cache.jobs().len(), 3);
        assert_eq!(cache.bytes(), 1200);
    }
}
