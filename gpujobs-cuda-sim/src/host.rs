//! Host memory the driver knows about: pinned allocations (`cuMemAllocHost`,
//! `cuMemHostAlloc`) and registered ranges (`cuMemHostRegister`). Asynchronous copies
//! from or to these are deferred to when the stream runs them, so a buffer reused or
//! read before its copy ran shows it; copies from pageable memory are staged at the
//! call, as the real driver does.

use crate::abi::{
    CuResult, HOST_MEMORY_ALREADY_REGISTERED, HOST_MEMORY_NOT_REGISTERED, INVALID_VALUE,
    OUT_OF_MEMORY,
};
use std::alloc::Layout;
use std::collections::BTreeMap;

/// How a range came to be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Allocated by the driver; freed by `cuMemFreeHost`.
    Allocated,
    /// The caller's memory, registered in place.
    Registered,
}

/// Known host ranges, by start address.
#[derive(Debug, Default)]
pub struct HostMemory {
    ranges: BTreeMap<usize, (usize, Kind)>,
}

impl HostMemory {
    /// Allocates `bytes` of page-aligned pinned memory.
    pub fn alloc(&mut self, bytes: usize) -> Result<usize, CuResult> {
        let layout = Layout::from_size_align(bytes.max(1), 4096).map_err(|_| INVALID_VALUE)?;
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { std::alloc::alloc(layout) } as usize;
        if p == 0 {
            return Err(OUT_OF_MEMORY);
        }
        self.ranges.insert(p, (bytes.max(1), Kind::Allocated));
        Ok(p)
    }

    /// Frees pinned memory allocated by [`HostMemory::alloc`].
    pub fn free(&mut self, p: usize) -> Result<(), CuResult> {
        match self.ranges.get(&p) {
            Some(&(len, Kind::Allocated)) => {
                self.ranges.remove(&p);
                let layout = Layout::from_size_align(len, 4096).map_err(|_| INVALID_VALUE)?;
                // SAFETY: allocated by `alloc` with this layout, and removed from the map.
                unsafe { std::alloc::dealloc(p as *mut u8, layout) };
                Ok(())
            }
            _ => Err(INVALID_VALUE),
        }
    }

    /// Registers the caller's `[p, p + bytes)`.
    pub fn register(&mut self, p: usize, bytes: usize) -> Result<(), CuResult> {
        if p == 0 || bytes == 0 {
            return Err(INVALID_VALUE);
        }
        if self.find(p, bytes).is_some() || self.find(p + bytes - 1, 1).is_some() {
            return Err(HOST_MEMORY_ALREADY_REGISTERED);
        }
        self.ranges.insert(p, (bytes, Kind::Registered));
        Ok(())
    }

    /// Drops every registration (a context reset ends them).
    pub fn clear_registered(&mut self) {
        self.ranges.retain(|_, (_, k)| *k != Kind::Registered);
    }

    /// Unregisters the range that starts at `p`.
    pub fn unregister(&mut self, p: usize) -> Result<(), CuResult> {
        match self.ranges.get(&p) {
            Some(&(_, Kind::Registered)) => {
                self.ranges.remove(&p);
                Ok(())
            }
            _ => Err(HOST_MEMORY_NOT_REGISTERED),
        }
    }

    /// The known range holding all of `[p, p + len)`: its start and kind.
    pub fn find(&self, p: usize, len: usize) -> Option<(usize, Kind)> {
        let (&start, &(size, kind)) = self.ranges.range(..=p).next_back()?;
        (p + len <= start + size).then_some((start, kind))
    }

    /// The length of the known range starting at `start` (0 if none).
    pub fn len_of(&self, start: usize) -> usize {
        self.ranges.get(&start).map_or(0, |&(len, _)| len)
    }
}
