//! Host memory for tensors: page-aligned buffers ([`HostBuf`]) recycled through a
//! bounded pool ([`BufferPool`]).
//!
//! Every backend takes its outputs from a pool, and the readers of `.npy` files, images
//! and Redis blobs read straight into pooled buffers, so that
//! - a worker running job after job pays no page faults for its outputs (the memory of
//!   the previous job's output is reused, already faulted in, on huge pages where the
//!   OS allows), and
//! - every buffer a device sees is page-aligned, so it can be registered for DMA in
//!   place instead of being copied through a staging buffer.
//!
//! Ownership: a buffer taken from a pool belongs to whoever holds it (a tensor, a
//! result handed to a library user). The pool does not count it against its budget and
//! never waits for it; when the last holder drops it, the memory returns to the pool if
//! the pool has room under its budget, and to the OS otherwise. To keep values beyond a
//! result without holding pool memory, use [`HostBuf::into_vec`].

mod faults;
mod host_buf;
mod pool;
mod ram;
mod region;

pub use faults::minor_faults;
pub use host_buf::{HostBuf, OutOfHostMemory, le_bytes};
pub use pool::{BUDGET_ENV, BufferPool, PoolStats, default_budget, parse_bytes};
pub use ram::physical_memory_bytes;
pub use region::{HUGE_PAGE, PAGE, set_release_hook};
