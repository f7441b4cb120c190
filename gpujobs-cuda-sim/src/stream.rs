//! Queued work: what an asynchronous call leaves on a stream until the simulated device
//! runs it, and the records of streams and events.

use crate::twins::{Twin, foreign::ForeignFn};
use std::collections::VecDeque;
use std::time::Instant;

/// Where a host-to-device copy reads from.
#[derive(Debug)]
pub enum HostSource {
    /// Pinned or registered memory, read when the copy runs.
    Pinned(usize),
    /// Pageable memory, staged by the driver at the call.
    Staged(Vec<u8>),
}

/// How a kernel runs on the CPU.
#[derive(Debug, Clone, Copy)]
pub enum TwinKind {
    /// One of the shipped kernels.
    Builtin(Twin),
    /// Registered by the program, with its user pointer.
    Foreign(ForeignFn, usize),
}

/// A kernel launch, its parameters copied at the call (as the driver does).
#[derive(Debug)]
pub struct Launch {
    /// The entry name.
    pub name: String,
    /// Blocks per grid.
    pub grid: [u32; 3],
    /// Threads per block.
    pub block: [u32; 3],
    /// Dynamic shared memory.
    pub shared: u32,
    /// Parameter bytes.
    pub params: Vec<Vec<u8>>,
    /// Its twin.
    pub twin: TwinKind,
}

/// One operation on a stream.
#[derive(Debug)]
pub enum Op {
    /// Host to device.
    H2D {
        /// Device destination.
        dst: u64,
        /// Host source.
        src: HostSource,
        /// Host buffer it counts against.
        buffer: usize,
        /// Bytes.
        len: usize,
    },
    /// Device to pinned/registered host memory (pageable downloads are synchronous).
    D2H {
        /// Host destination.
        dst: usize,
        /// Host buffer it counts against.
        buffer: usize,
        /// Device source.
        src: u64,
        /// Bytes.
        len: usize,
    },
    /// Device to device.
    D2D {
        /// Destination.
        dst: u64,
        /// Source.
        src: u64,
        /// Bytes.
        len: usize,
    },
    /// `cuMemsetD8/16/32`.
    Memset {
        /// Destination.
        dst: u64,
        /// The element's bytes.
        value: Vec<u8>,
        /// Elements.
        count: usize,
    },
    /// A kernel.
    Launch(Box<Launch>),
    /// `cuEventRecord`: the event's generation `generation` completes here.
    Record {
        /// Event index.
        event: usize,
        /// Generation.
        generation: u64,
    },
    /// `cuStreamWaitEvent`: wait until the event's generation `generation` has completed.
    Wait {
        /// Event index.
        event: usize,
        /// Generation.
        generation: u64,
    },
}

impl Op {
    /// Whether the operation copies between host and device.
    pub fn is_copy(&self) -> bool {
        matches!(self, Op::H2D { .. } | Op::D2H { .. })
    }

    /// Whether it reads or writes host memory in `[start, start + len)`.
    pub fn touches_host(&self, start: usize, len: usize) -> bool {
        let inside = |p: usize, n: usize| p < start + len && start < p + n;
        match self {
            Op::H2D {
                src: HostSource::Pinned(p),
                len: n,
                ..
            } => inside(*p, *n),
            Op::D2H { dst, len: n, .. } => inside(*dst, *n),
            _ => false,
        }
    }
}

/// An event: how many times it was recorded and how many of those completed.
#[derive(Debug, Default)]
pub struct EventRec {
    /// Records issued.
    pub pending: u64,
    /// Records completed.
    pub done: u64,
    /// When the last record completed.
    pub at: Option<Instant>,
    /// Destroyed by the program while records were still queued: the slot stays until
    /// they complete, so streams waiting on it still wait.
    pub destroyed: bool,
}

/// A stream's queue.
pub type Queue = VecDeque<Op>;
