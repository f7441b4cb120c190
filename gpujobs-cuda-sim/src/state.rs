//! The simulated device: one process-wide state behind a lock, and the scheduler that
//! runs queued work — at synchronisation points, and from a background thread in a
//! seeded random order that respects each stream's order and its event waits.

use crate::abi::{
    self, CuResult, ILLEGAL_ADDRESS, INVALID_HANDLE, INVALID_VALUE, LAUNCH_TIMEOUT, SUCCESS,
};
use crate::counters::Counters;
use crate::faults::{Fault, Faults};
use crate::host::HostMemory;
use crate::memory::Memory;
use crate::ptx::Entry;
use crate::stream::{EventRec, HostSource, Launch, Op, Queue, TwinKind};
use crate::twins::{Args, foreign, foreign::ForeignFn};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The name every simulated device reports, so no figure from it passes for a GPU's.
pub const DEVICE_NAME: &str = "gpujobs-cuda-sim (simulated, not a GPU)";
/// Default device memory: 4 GiB (`GPUJOBS_CUDA_SIM_MEMORY`, bytes, or with a K/M/G suffix).
const DEFAULT_MEMORY: u64 = 4 << 30;

/// A loaded kernel entry.
#[derive(Debug)]
pub struct Function {
    /// Its module's index.
    pub module: usize,
    /// The entry.
    pub entry: Entry,
}

/// Everything the simulated driver holds.
#[derive(Debug)]
pub struct Sim {
    /// `cuInit` was called.
    pub initialised: bool,
    /// Device memory.
    pub memory: Memory,
    /// Known host memory.
    pub host: HostMemory,
    /// Loaded modules' entries (handle = index + 1).
    pub modules: Vec<Option<Vec<Entry>>>,
    /// Functions looked up (handle = index + 1).
    pub functions: Vec<Function>,
    /// Stream queues; index 0 is the legacy default stream (handle 0).
    pub streams: Vec<Option<Queue>>,
    /// Events (handle = index + 1).
    pub events: Vec<Option<EventRec>>,
    /// Counters for tests.
    pub counters: Counters,
    /// Armed faults.
    pub faults: Faults,
    /// A sticky error: every call fails with it until the primary context is reset.
    pub sticky: Option<CuResult>,
    /// A non-sticky error from queued work, reported by the next synchronisation.
    pub deferred: Option<CuResult>,
    /// Twins registered by the program, with their user pointers.
    pub foreign: HashMap<String, (ForeignFn, usize)>,
    /// The background thread runs work only when this is false.
    pub paused: bool,
    rng: u64,
}

static SIM: OnceLock<Mutex<Sim>> = OnceLock::new();

/// The simulator, locked. A panic while locked (a bug in a twin) does not poison it
/// for the rest of the process.
pub fn sim() -> MutexGuard<'static, Sim> {
    SIM.get_or_init(|| Mutex::new(Sim::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

fn env_bytes(name: &str, default: u64) -> u64 {
    let Ok(v) = std::env::var(name) else {
        return default;
    };
    let v = v.trim();
    let (num, mul) = match v.chars().last() {
        Some('K' | 'k') => (&v[..v.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&v[..v.len() - 1], 1 << 20),
        Some('G' | 'g') => (&v[..v.len() - 1], 1 << 30),
        _ => (v, 1),
    };
    num.parse::<u64>().map(|n| n * mul).unwrap_or_else(|_| {
        eprintln!("gpujobs-cuda-sim: {name}={v} is not a size; using {default}");
        default
    })
}

impl Sim {
    fn new() -> Sim {
        let seed = std::env::var("GPUJOBS_CUDA_SIM_SEED")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0x005E_ED0F_C0DA);
        Sim {
            initialised: false,
            memory: Memory::new(env_bytes("GPUJOBS_CUDA_SIM_MEMORY", DEFAULT_MEMORY)),
            host: HostMemory::default(),
            modules: Vec::new(),
            functions: Vec::new(),
            streams: vec![Some(Queue::new())],
            events: Vec::new(),
            counters: Counters::default(),
            faults: Faults::from_env(),
            sticky: None,
            deferred: None,
            foreign: HashMap::new(),
            paused: false,
            rng: seed | 1,
        }
    }

    /// A pseudo-random number (xorshift64*), from the seed.
    pub fn random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Fails with the sticky error, if any.
    pub fn check(&self) -> Result<(), CuResult> {
        match self.sticky {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A stream's index from its handle (0 is the legacy default stream).
    pub fn stream_index(&self, handle: usize) -> Result<usize, CuResult> {
        match self.streams.get(handle) {
            Some(Some(_)) => Ok(handle),
            _ => Err(INVALID_HANDLE),
        }
    }

    /// An event's index from its handle.
    pub fn event_index(&self, handle: usize) -> Result<usize, CuResult> {
        match handle.checked_sub(1).and_then(|i| self.events.get(i)) {
            Some(Some(e)) if !e.destroyed => Ok(handle - 1),
            _ => Err(INVALID_HANDLE),
        }
    }

    /// Queues `op` on stream `s`. Legacy default stream semantics: work on stream 0
    /// waits for every stream, and every stream waits for stream 0's queued work.
    pub fn enqueue(&mut self, s: usize, op: Op) -> Result<(), CuResult> {
        if s == 0 {
            self.drain_all()?;
        } else if self.streams[0].as_ref().is_some_and(|q| !q.is_empty()) {
            self.drain(0)?;
        }
        self.streams[s]
            .as_mut()
            .ok_or(INVALID_HANDLE)?
            .push_back(op);
        Ok(())
    }

    fn pending(&self) -> bool {
        self.streams.iter().flatten().any(|q| !q.is_empty())
    }

    fn ready(&self, op: &Op) -> bool {
        match op {
            Op::Wait { event, generation } => self
                .events
                .get(*event)
                .and_then(Option::as_ref)
                .is_none_or(|e| e.done >= *generation),
            _ => true,
        }
    }

    /// Runs one ready operation, chosen at random among the streams' heads. Returns
    /// whether one ran.
    pub fn run_one(&mut self) -> Result<bool, CuResult> {
        let ready: Vec<usize> = self
            .streams
            .iter()
            .enumerate()
            .filter_map(|(i, q)| {
                q.as_ref()
                    .and_then(|q| q.front())
                    .filter(|op| self.ready(op))
                    .map(|_| i)
            })
            .collect();
        if ready.is_empty() {
            return Ok(false);
        }
        let pick = ready[(self.random() % ready.len() as u64) as usize];
        let busy = self
            .streams
            .iter()
            .flatten()
            .filter(|q| !q.is_empty())
            .count() as u64;
        self.counters.max_busy_streams = self.counters.max_busy_streams.max(busy);
        let Some(op) = self.streams[pick].as_mut().and_then(|q| q.pop_front()) else {
            return Ok(false);
        };
        self.counters.streams_used.insert(pick);
        if matches!(op, Op::Launch(_))
            && self
                .streams
                .iter()
                .enumerate()
                .any(|(i, q)| i != pick && q.as_ref().is_some_and(|q| q.iter().any(Op::is_copy)))
        {
            self.counters.kernel_copy_overlap += 1;
        }
        if let Err(e) = self.execute(op) {
            self.fail(e);
        }
        Ok(true)
    }

    /// Records an error from queued work: a sticky one loses all queued work.
    fn fail(&mut self, e: CuResult) {
        if abi::is_sticky(e) {
            self.sticky = Some(e);
            for q in self.streams.iter_mut().flatten() {
                q.clear();
            }
        } else if self.deferred.is_none() {
            self.deferred = Some(e);
        }
    }

    /// Runs stream `s` until it is empty.
    pub fn drain(&mut self, s: usize) -> Result<(), CuResult> {
        while self
            .streams
            .get(s)
            .and_then(Option::as_ref)
            .is_some_and(|q| !q.is_empty())
        {
            if !self.run_one()? {
                return Err(INVALID_VALUE);
            }
        }
        self.settle()
    }

    /// Runs everything queued.
    pub fn drain_all(&mut self) -> Result<(), CuResult> {
        while self.pending() {
            if !self.run_one()? {
                return Err(INVALID_VALUE);
            }
        }
        self.settle()
    }

    /// Runs until every record of event `e` has completed.
    pub fn drain_event(&mut self, e: usize) -> Result<(), CuResult> {
        while self
            .events
            .get(e)
            .and_then(Option::as_ref)
            .is_some_and(|ev| ev.done < ev.pending)
        {
            if !self.run_one()? {
                return Err(INVALID_VALUE);
            }
        }
        self.settle()
    }

    /// After running work: the sticky error, or a deferred one (reported once).
    fn settle(&mut self) -> Result<(), CuResult> {
        self.check()?;
        match self.deferred.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn count_copy(&mut self, h2d: bool, buffer: usize, pinned: bool, len: usize) {
        let c = &mut self.counters;
        if h2d {
            c.h2d_bytes += len as u64;
            c.h2d_copies += 1;
        } else {
            c.d2h_bytes += len as u64;
            c.d2h_copies += 1;
        }
        if pinned {
            c.pinned_copies += 1;
        } else {
            c.pageable_copies += 1;
        }
        *c.copies_per_host_buffer.entry(buffer).or_default() += 1;
    }

    fn execute(&mut self, op: Op) -> Result<(), CuResult> {
        match op {
            Op::H2D {
                dst,
                src,
                buffer,
                len,
            } => {
                let pinned = matches!(src, HostSource::Pinned(_));
                let dev = self.memory.bytes_mut(dst, len)?;
                match src {
                    // SAFETY: pinned/registered memory stays valid while copies into or
                    // out of it are queued: freeing or unregistering it runs them first.
                    HostSource::Pinned(p) => unsafe {
                        std::ptr::copy_nonoverlapping(p as *const u8, dev.as_mut_ptr(), len)
                    },
                    HostSource::Staged(v) => dev.copy_from_slice(&v),
                }
                self.count_copy(true, buffer, pinned, len);
            }
            Op::D2H {
                dst,
                buffer,
                src,
                len,
            } => {
                let dev = self.memory.bytes(src, len)?;
                // SAFETY: as above.
                unsafe { std::ptr::copy_nonoverlapping(dev.as_ptr(), dst as *mut u8, len) };
                let pinned = self.host.find(dst, len).is_some();
                self.count_copy(false, buffer, pinned, len);
            }
            Op::D2D { dst, src, len } => {
                self.memory.copy_within(dst, src, len)?;
                self.counters.d2d_bytes += len as u64;
            }
            Op::Memset { dst, value, count } => {
                let bytes = self.memory.bytes_mut(dst, value.len() * count)?;
                for chunk in bytes.chunks_exact_mut(value.len()) {
                    chunk.copy_from_slice(&value);
                }
            }
            Op::Launch(l) => self.launch(&l)?,
            Op::Record { event, generation } => {
                if let Some(slot @ Some(_)) = self.events.get_mut(event) {
                    if let Some(e) = slot.as_mut() {
                        e.done = e.done.max(generation);
                        e.at = Some(Instant::now());
                    }
                    if slot
                        .as_ref()
                        .is_some_and(|e| e.destroyed && e.done >= e.pending)
                    {
                        *slot = None;
                    }
                }
            }
            Op::Wait { .. } => {}
        }
        Ok(())
    }

    fn launch(&mut self, l: &Launch) -> Result<(), CuResult> {
        if self.faults.fires(Fault::IllegalAddress) {
            self.counters.faults_fired += 1;
            return Err(ILLEGAL_ADDRESS);
        }
        if self.faults.fires(Fault::LaunchTimeout) {
            self.counters.faults_fired += 1;
            return Err(LAUNCH_TIMEOUT);
        }
        let args = Args {
            name: &l.name,
            grid: l.grid,
            block: l.block,
            shared: l.shared,
            params: &l.params,
        };
        let result = match l.twin {
            TwinKind::Builtin(t) => (t.run)(&args, &mut self.memory),
            TwinKind::Foreign(f, user) => foreign::run(f, user, &args, &mut self.memory),
        };
        *self.counters.launches.entry(l.name.clone()).or_default() += 1;
        if let Err(e) = result {
            let what = format!(
                "kernel {} (grid {:?}, block {:?}, {} B shared) failed: {}",
                l.name,
                l.grid,
                l.block,
                l.shared,
                abi::name(e)
            );
            eprintln!("gpujobs-cuda-sim: {what}");
            self.counters.violations.push(what);
            return Err(e);
        }
        Ok(())
    }

    /// Runs queued copies that touch host memory `[p, p + len)` before it goes away,
    /// and reports the program's mistake.
    pub fn before_host_release(&mut self, p: usize, len: usize, doing: &str) {
        let queued = self
            .streams
            .iter()
            .flatten()
            .any(|q| q.iter().any(|op| op.touches_host(p, len)));
        if queued {
            self.counters.violations.push(format!(
                "{doing} {p:#x} while a copy into or out of it was still queued"
            ));
            let _ = self.drain_all();
        }
    }

    /// Drops every object of the context (a primary-context reset).
    pub fn reset(&mut self) {
        self.memory.clear();
        self.modules.clear();
        self.functions.clear();
        self.streams = vec![Some(Queue::new())];
        self.events.clear();
        self.host.clear_registered();
        self.sticky = None;
        self.deferred = None;
    }

    /// Starts the background thread once, unless `GPUJOBS_CUDA_SIM_BACKGROUND=0`.
    pub fn start_background() {
        static STARTED: OnceLock<()> = OnceLock::new();
        if std::env::var("GPUJOBS_CUDA_SIM_BACKGROUND").is_ok_and(|v| v == "0") {
            return;
        }
        STARTED.get_or_init(|| {
            let _ = std::thread::Builder::new()
                .name("cuda-sim-device".into())
                .spawn(background);
        });
    }
}

/// The device working on its own: now and then, one ready operation of any stream.
fn background() {
    loop {
        let pause = {
            let mut s = sim();
            if !s.paused && s.sticky.is_none() {
                let _ = s.run_one();
            }
            20 + s.random() % 300
        };
        std::thread::sleep(Duration::from_micros(pause));
    }
}

/// Turns a result into the driver's return code.
pub fn code(r: Result<(), CuResult>) -> CuResult {
    match r {
        Ok(()) => SUCCESS,
        Err(e) => e,
    }
}
