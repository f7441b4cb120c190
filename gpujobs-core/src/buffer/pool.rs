//! [`BufferPool`]: recycled, pre-faulted, page-aligned host buffers under a byte budget.
//!
//! A job's output written into fresh memory pays a page fault per 4 KiB page (some
//! 50 000 for a 200 MB vector, several µs each), which costs more than the arithmetic
//! of a memory-bound job. A worker runs jobs of the same shapes over and over, so it
//! keeps the memory of finished outputs and inputs and hands it to the next job: a
//! worker in its steady state pays no page faults at all.
//!
//! The budget bounds the memory kept **idle** in the pool. Buffers in use belong to
//! their holders and are not counted against it: a library user who keeps a result
//! keeps exactly that memory and no more, and the pool never waits for it. When a
//! buffer is dropped and the pool is over budget, the least recently returned idle
//! memory goes back to the OS.

use super::host_buf::{HostBuf, OutOfHostMemory};
use super::region::{self, Region};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// The environment variable that sets the default pool's budget (`4G`, `512M`, bytes).
pub const BUDGET_ENV: &str = "GPUJOBS_BUFFER_POOL_BYTES";

/// A recycled buffer serves a request of `n` bytes when it holds at most this fraction
/// more, so a pool of large buffers never hands a small job a huge one.
const SLACK_DIVISOR: usize = 8;

/// Counters of a pool, for metrics and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct PoolStats {
    /// Most bytes kept idle.
    pub budget_bytes: u64,
    /// Bytes idle in the pool now.
    pub idle_bytes: u64,
    /// Buffers idle in the pool now.
    pub idle_buffers: u64,
    /// Bytes handed out and not yet returned.
    pub out_bytes: u64,
    /// Requests served from idle memory.
    pub hits: u64,
    /// Requests that needed new memory.
    pub misses: u64,
    /// Bytes of new memory allocated since the pool was made.
    pub allocated_bytes: u64,
    /// Bytes given back to the OS because the pool was over budget.
    pub released_bytes: u64,
}

/// The idle regions, indexed both ways a pool looks them up, so that taking and
/// evicting cost O(log n) however many small buffers a burst of tiny jobs left idle (a
/// linear scan made a burst of 20,000 one-element jobs quadratic).
#[derive(Default)]
struct State {
    /// By size in bytes; within a size, oldest first (a take pops the newest, whose
    /// pages are most likely still in cache).
    by_size: BTreeMap<usize, VecDeque<(u64, Region)>>,
    /// By return stamp: the size each idle region is filed under (eviction takes the
    /// oldest, which is the front of its size's queue).
    by_age: BTreeMap<u64, usize>,
    idle_bytes: usize,
    clock: u64,
}

impl State {
    fn put(&mut self, region: Region) {
        self.clock += 1;
        let bytes = region.bytes();
        self.by_age.insert(self.clock, bytes);
        self.by_size
            .entry(bytes)
            .or_default()
            .push_back((self.clock, region));
        self.idle_bytes += bytes;
    }

    /// The smallest idle region of `size..=max` bytes, the most recently returned of
    /// that size.
    fn take_fitting(&mut self, size: usize, max: usize) -> Option<Region> {
        let (&bytes, queue) = self.by_size.range_mut(size..=max).next()?;
        let (stamp, region) = queue.pop_back()?;
        if queue.is_empty() {
            self.by_size.remove(&bytes);
        }
        self.by_age.remove(&stamp);
        self.idle_bytes -= bytes;
        Some(region)
    }

    /// The least recently returned idle region.
    fn take_oldest(&mut self) -> Option<Region> {
        let (_, bytes) = self.by_age.pop_first()?;
        let queue = self.by_size.get_mut(&bytes)?;
        let (_, region) = queue.pop_front()?;
        if queue.is_empty() {
            self.by_size.remove(&bytes);
        }
        self.idle_bytes -= bytes;
        Some(region)
    }

    fn idle_buffers(&self) -> usize {
        self.by_age.len()
    }
}

pub(crate) struct Shared {
    budget: AtomicUsize,
    state: Mutex<State>,
    out_bytes: AtomicUsize,
    hits: AtomicU64,
    misses: AtomicU64,
    allocated: AtomicU64,
    released: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code that can panic runs between the updates of one State method, so a
        // poisoned lock is still consistent and usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes back a buffer's memory, keeping it if the budget allows. Memory released
    /// to the OS is dropped after the lock is let go.
    pub(crate) fn give_back(&self, region: Region) {
        let bytes = region.bytes();
        self.out_bytes.fetch_sub(bytes, Ordering::Relaxed);
        let budget = self.budget.load(Ordering::Relaxed);
        if bytes > budget {
            self.released.fetch_add(bytes as u64, Ordering::Relaxed);
            return;
        }
        let evicted = {
            let mut st = self.lock();
            st.put(region);
            evict_to(&mut st, budget)
        };
        self.note_released(&evicted);
    }

    fn note_released(&self, evicted: &[Region]) {
        let bytes: usize = evicted.iter().map(Region::bytes).sum();
        self.released.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// Removes the least recently returned idle regions until `budget` holds.
fn evict_to(st: &mut State, budget: usize) -> Vec<Region> {
    let mut out = Vec::new();
    while st.idle_bytes > budget {
        let Some(oldest) = st.take_oldest() else {
            break;
        };
        out.push(oldest);
    }
    out
}

/// A bounded pool of page-aligned host buffers (see the module docs). Cheap to clone:
/// clones share the pool.
#[derive(Clone)]
pub struct BufferPool {
    shared: Arc<Shared>,
}

impl BufferPool {
    /// A pool that keeps at most `budget_bytes` idle.
    pub fn new(budget_bytes: u64) -> Self {
        BufferPool {
            shared: Arc::new(Shared {
                budget: AtomicUsize::new(usize::try_from(budget_bytes).unwrap_or(usize::MAX)),
                state: Mutex::new(State::default()),
                out_bytes: AtomicUsize::new(0),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                allocated: AtomicU64::new(0),
                released: AtomicU64::new(0),
            }),
        }
    }

    /// The process's default pool, shared by every backend that is not given one: its
    /// budget comes from `GPUJOBS_BUFFER_POOL_BYTES`, or is an eighth of physical
    /// memory up to 4 GiB.
    pub fn global() -> &'static BufferPool {
        static POOL: OnceLock<BufferPool> = OnceLock::new();
        POOL.get_or_init(|| BufferPool::new(default_budget()))
    }

    /// Changes the budget, releasing idle memory above it now.
    pub fn set_budget(&self, budget_bytes: u64) {
        let budget = usize::try_from(budget_bytes).unwrap_or(usize::MAX);
        self.shared.budget.store(budget, Ordering::Relaxed);
        let evicted = evict_to(&mut self.shared.lock(), budget);
        self.shared.note_released(&evicted);
    }

    /// A buffer of `len` values whose contents are unspecified (zeros, or what an
    /// earlier job left there): for outputs a kernel overwrites entirely.
    pub fn take(&self, len: usize) -> Result<HostBuf, OutOfHostMemory> {
        self.take_inner(len).map(|(buf, _)| buf)
    }

    /// A buffer of `len` zeros.
    pub fn take_zeroed(&self, len: usize) -> Result<HostBuf, OutOfHostMemory> {
        let (mut buf, recycled) = self.take_inner(len)?;
        if recycled {
            buf.as_mut_slice().fill(0.0);
        }
        Ok(buf)
    }

    /// A buffer holding a copy of `values`.
    pub fn copy_of(&self, values: &[f32]) -> Result<HostBuf, OutOfHostMemory> {
        let mut buf = self.take(values.len())?;
        buf.as_mut_slice().copy_from_slice(values);
        Ok(buf)
    }

    fn take_inner(&self, len: usize) -> Result<(HostBuf, bool), OutOfHostMemory> {
        let want = len.saturating_mul(4);
        let size = region::rounded(want);
        let max = size.saturating_add(size / SLACK_DIVISOR);
        let recycled = self.shared.lock().take_fitting(size, max);
        let (region, hit) = match recycled {
            Some(r) => {
                self.shared.hits.fetch_add(1, Ordering::Relaxed);
                (r, true)
            }
            None => {
                self.shared.misses.fetch_add(1, Ordering::Relaxed);
                let r = Region::new(want).ok_or(OutOfHostMemory { bytes: want })?;
                self.shared
                    .allocated
                    .fetch_add(r.bytes() as u64, Ordering::Relaxed);
                (r, false)
            }
        };
        self.shared
            .out_bytes
            .fetch_add(region.bytes(), Ordering::Relaxed);
        Ok((HostBuf::pooled(region, len, self.shared.clone()), hit))
    }

    /// Releases every idle buffer to the OS.
    pub fn clear(&self) {
        let idle = std::mem::take(&mut *self.shared.lock());
        let regions: Vec<Region> = idle
            .by_size
            .into_values()
            .flatten()
            .map(|(_, r)| r)
            .collect();
        self.shared.note_released(&regions);
    }

    /// The pool's counters now.
    pub fn stats(&self) -> PoolStats {
        let (idle_bytes, idle_buffers) = {
            let st = self.shared.lock();
            (st.idle_bytes as u64, st.idle_buffers() as u64)
        };
        let s = &self.shared;
        PoolStats {
            budget_bytes: s.budget.load(Ordering::Relaxed) as u64,
            idle_bytes,
            idle_buffers,
            out_bytes: s.out_bytes.load(Ordering::Relaxed) as u64,
            hits: s.hits.load(Ordering::Relaxed),
            misses: s.misses.load(Ordering::Relaxed),
            allocated_bytes: s.allocated.load(Ordering::Relaxed),
            released_bytes: s.released.load(Ordering::Relaxed),
        }
    }
}

impl std::fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferPool")
            .field("stats", &self.stats())
            .finish()
    }
}

/// The default budget: `GPUJOBS_BUFFER_POOL_BYTES` if set and valid, else an eighth
/// of physical memory, at most 4 GiB.
pub fn default_budget() -> u64 {
    if let Ok(text) = std::env::var(BUDGET_ENV) {
        match parse_bytes(&text) {
            Ok(b) => return b,
            Err(e) => tracing::warn!("ignoring {BUDGET_ENV}: {e}"),
        }
    }
    let ram = super::ram::physical_memory_bytes().unwrap_or(8 << 30);
    (ram / 8).min(4 << 30)
}

/// Parses a byte count: `1048576`, `512K`, `64M`, `4G`, `1T` (powers of 1024; a
/// trailing `B` or `iB` is accepted: `256MiB`, `2GB`).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let not_a_count = || format!("`{text}` is not a byte count (say 4G, 256MiB or 1048576)");
    if digits.is_empty() {
        return Err(not_a_count());
    }
    let n: u64 = digits.parse().map_err(|_| not_a_count())?;
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit
        .strip_suffix("IB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (use K, M, G or T, optionally with B or iB)"
            ));
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{text}` overflows"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: usize = 1 << 20;

    #[test]
    fn a_dropped_buffer_is_handed_to_the_next_job() {
        let pool = BufferPool::new(64 << 20);
        let mut a = pool.take(MB).unwrap();
        a[0] = 7.0;
        let ptr = a.as_ptr();
        drop(a);
        let b = pool.take(MB).unwrap();
        assert_eq!(b.as_ptr(), ptr, "same memory");
        assert_eq!(b[0], 7.0, "contents are whatever was left");
        drop(b);
        let z = pool.take_zeroed(MB).unwrap();
        assert!(z.iter().all(|&v| v == 0.0));
        let s = pool.stats();
        assert_eq!((s.hits, s.misses), (2, 1));
        assert_eq!(s.out_bytes, 4 * MB as u64);
    }

    #[test]
    fn sizes_must_be_close_to_be_reused() {
        let pool = BufferPool::new(256 << 20);
        drop(pool.take(16 * MB).unwrap());
        let small = pool.take(MB).unwrap();
        assert_eq!(
            pool.stats().hits,
            0,
            "a 64 MB buffer is not given to a 4 MB job"
        );
        drop(small);
        let close = pool.take(16 * MB - 1000).unwrap();
        assert_eq!(pool.stats().hits, 1);
        assert!(close.capacity_bytes() >= 4 * (16 * MB - 1000));
    }

    #[test]
    fn idle_memory_stays_under_budget_oldest_released_first() {
        const QUARTER: usize = MB / 4; // 1 MiB of values
        let pool = BufferPool::new(3 << 20);
        let bufs: Vec<HostBuf> = (0..4).map(|_| pool.take(QUARTER).unwrap()).collect();
        let first = bufs[0].as_ptr();
        drop(bufs);
        let s = pool.stats();
        assert_eq!(s.idle_bytes, 3 << 20, "{s:?}");
        assert_eq!(s.idle_buffers, 3);
        assert_eq!(s.released_bytes, 1 << 20);
        assert_eq!(s.out_bytes, 0);
        // The first returned was the first released.
        let again = pool.take(QUARTER).unwrap();
        assert_ne!(again.as_ptr(), first);
        assert_eq!(pool.stats().hits, 1);
        pool.set_budget(0);
        assert_eq!(pool.stats().idle_bytes, 0);
    }

    #[test]
    fn the_smallest_fitting_size_is_taken_newest_first_and_the_oldest_evicted() {
        let pool = BufferPool::new(1 << 30);
        let page = 1024; // one 4 KiB page of values
        // Idle, oldest first: 2 pages, 1 page (a), 1 page (b), 3 pages.
        let two = pool.take(2 * page).unwrap();
        let a = pool.take(page).unwrap();
        let b = pool.take(page).unwrap();
        let three = pool.take(3 * page).unwrap();
        let (pa, pb, ptwo, pthree) = (a.as_ptr(), b.as_ptr(), two.as_ptr(), three.as_ptr());
        drop(two);
        drop(a);
        drop(b);
        drop(three);
        assert_eq!(pool.stats().idle_buffers, 4);
        // One page: of the two of that size, the one returned last.
        let got = pool.take(page).unwrap();
        assert_eq!(got.as_ptr(), pb);
        // Eviction follows return order across sizes: the 2-page buffer, then `a`.
        pool.set_budget((4 + 3 * 4096) as u64);
        let s = pool.stats();
        assert_eq!((s.idle_buffers, s.idle_bytes), (1, 3 * 4096), "{s:?}");
        let last = pool.take(3 * page - 10).unwrap();
        assert_eq!(last.as_ptr(), pthree);
        assert_ne!(pa, ptwo);
        drop((got, last));
    }

    #[test]
    fn many_idle_buffers_are_each_found() {
        let pool = BufferPool::new(1 << 30);
        let held: Vec<HostBuf> = (0..20_000)
            .map(|i| pool.take(1 + i % 3000).unwrap())
            .collect();
        drop(held);
        let idle = pool.stats().idle_buffers;
        assert_eq!(idle, 20_000);
        let again: Vec<HostBuf> = (0..20_000)
            .map(|i| pool.take(1 + i % 3000).unwrap())
            .collect();
        let s = pool.stats();
        assert_eq!((s.hits, s.idle_buffers), (20_000, 0), "{s:?}");
        drop(again);
    }

    #[test]
    fn a_buffer_larger_than_the_budget_is_never_kept() {
        let pool = BufferPool::new(MB as u64);
        drop(pool.take(MB).unwrap());
        assert_eq!(pool.stats().idle_buffers, 0);
    }

    #[test]
    fn buffers_outliving_the_pool_handle_are_freed_safely() {
        let pool = BufferPool::new(64 << 20);
        let b = pool.take(1000).unwrap();
        drop(pool);
        assert_eq!(b.len(), 1000);
        drop(b);
    }

    #[test]
    fn byte_counts_parse() {
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("512K"), Ok(512 << 10));
        assert_eq!(parse_bytes("64M"), Ok(64 << 20));
        assert_eq!(parse_bytes("4G"), Ok(4 << 30));
        assert_eq!(parse_bytes("4GiB"), Ok(4 << 30));
        assert_eq!(parse_bytes("2gb"), Ok(2 << 30));
        assert!(parse_bytes("lots").is_err_and(|e| e.contains("not a byte count")));
        assert_eq!(parse_bytes("256MiB"), Ok(256 << 20));
        assert_eq!(parse_bytes("1 k"), Ok(1 << 10));
        assert!(parse_bytes("4X").is_err());
        assert!(parse_bytes("99999999999T").is_err());
    }
}
