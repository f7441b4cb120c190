//! Page-aligned memory regions: the one place in core that talks to the allocator and
//! the OS directly, and so the one place that needs `unsafe`.
//!
//! Small regions come from the global allocator with page alignment. Large ones are
//! mapped straight from the OS, aligned to 2 MiB, advised to use transparent huge pages
//! (`MADV_HUGEPAGE`, which numpy also asks for) and populated at once
//! (`MADV_POPULATE_WRITE`), so the first job that writes them pays one pass of page
//! clearing instead of tens of thousands of 4 KiB faults, and every later job none.
//!
//! Every region is zero-filled when created, so its bytes are always initialised and
//! may be viewed as `f32`s (any bit pattern is a valid `f32`).

#![allow(unsafe_code)]

use std::alloc::Layout;
use std::ptr::NonNull;

/// The base page size the alignment guarantees.
pub const PAGE: usize = 4096;
/// A transparent huge page on x86-64 and most aarch64 kernels.
pub const HUGE_PAGE: usize = 2 << 20;
/// From this size up a region is mapped from the OS, 2 MiB aligned and huge-page advised.
pub(crate) const MAP_FROM: usize = 4 << 20;

/// The size a request of `bytes` is rounded up to: whole pages, and whole huge pages for
/// mapped regions. Requests that round to the same size share pooled regions.
pub(crate) fn rounded(bytes: usize) -> usize {
    let bytes = bytes.max(1);
    if bytes >= MAP_FROM {
        bytes.div_ceil(HUGE_PAGE).saturating_mul(HUGE_PAGE)
    } else {
        bytes.div_ceil(PAGE).saturating_mul(PAGE)
    }
}

/// An owned, zero-initialised, page-aligned block of memory.
pub(crate) struct Region {
    ptr: NonNull<u8>,
    bytes: usize,
    mapped: bool,
}

// SAFETY: a region is plain memory owned by this value; nothing about it is tied to a
// thread.
unsafe impl Send for Region {}
// SAFETY: shared access only hands out `&[u8]`-like views; mutation needs `&mut`.
unsafe impl Sync for Region {}

impl Region {
    /// A zero-filled region of at least `bytes` bytes ([`rounded`]), or `None` when the
    /// memory cannot be had.
    pub(crate) fn new(bytes: usize) -> Option<Region> {
        let bytes = rounded(bytes);
        if bytes >= MAP_FROM
            && let Some(r) = Self::map(bytes)
        {
            return Some(r);
        }
        let layout = Layout::from_size_align(bytes, PAGE).ok()?;
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        Some(Region {
            ptr,
            bytes,
            mapped: false,
        })
    }

    #[cfg(target_os = "linux")]
    fn map(bytes: usize) -> Option<Region> {
        let span = bytes.checked_add(HUGE_PAGE)?;
        // SAFETY: an anonymous private mapping with no address hint has no
        // preconditions; failure is reported as MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                span,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        let base = base as usize;
        let start = base.div_ceil(HUGE_PAGE) * HUGE_PAGE;
        let (head, tail) = (start - base, base + span - (start + bytes));
        // SAFETY: both trimmed ranges are page-aligned parts of the mapping just made
        // and lie outside the region kept.
        unsafe {
            if head > 0 {
                libc::munmap(base as *mut libc::c_void, head);
            }
            if tail > 0 {
                libc::munmap((start + bytes) as *mut libc::c_void, tail);
            }
        }
        let ptr = NonNull::new(start as *mut u8)?;
        let region = Region {
            ptr,
            bytes,
            mapped: true,
        };
        // Out of memory while populating: give the mapping back rather than fault later.
        region.prefault().then_some(region)
    }

    #[cfg(not(target_os = "linux"))]
    fn map(_bytes: usize) -> Option<Region> {
        None
    }

    /// Asks for huge pages, then faults every page in now. False when the kernel could
    /// not supply the memory.
    #[cfg(target_os = "linux")]
    fn prefault(&self) -> bool {
        /// `MADV_POPULATE_WRITE` (Linux 5.14); older kernels answer EINVAL.
        const MADV_POPULATE_WRITE: libc::c_int = 23;
        let addr = self.ptr.as_ptr() as *mut libc::c_void;
        // SAFETY: the range is exactly this live mapping. Advice never changes the
        // contents; a refusal (THP disabled, old kernel) leaves everything as it was.
        let populated = unsafe {
            libc::madvise(addr, self.bytes, libc::MADV_HUGEPAGE);
            libc::madvise(addr, self.bytes, MADV_POPULATE_WRITE) == 0
        };
        if populated {
            return true;
        }
        let unsupported = std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL);
        if unsupported {
            // Touch one byte per page: writing the zero that is already there.
            let mut at = 0;
            while at < self.bytes {
                // SAFETY: `at` is inside the mapping, which this value owns exclusively.
                unsafe { self.ptr.as_ptr().add(at).write_volatile(0) };
                at += PAGE;
            }
        }
        unsupported
    }

    /// Size in bytes (a multiple of [`PAGE`]).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether the region came from the OS with huge-page advice.
    #[cfg(test)]
    pub(crate) fn is_mapped(&self) -> bool {
        self.mapped
    }

    /// The first `len` values as `f32`. Panics if they do not fit.
    pub(crate) fn f32s(&self, len: usize) -> &[f32] {
        assert!(len <= self.bytes / 4, "{len} values exceed the region");
        // SAFETY: the memory is initialised (zero-filled at creation, written only
        // through `&mut` views since), page-aligned (so aligned for f32), and lives as
        // long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<f32>(), len) }
    }

    /// The first `len` values as mutable `f32`. Panics if they do not fit.
    pub(crate) fn f32s_mut(&mut self, len: usize) -> &mut [f32] {
        assert!(len <= self.bytes / 4, "{len} values exceed the region");
        // SAFETY: as in `f32s`, and `&mut self` makes the view exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().cast::<f32>(), len) }
    }
}

/// The function told about memory about to go back to the OS (see [`set_release_hook`]).
static RELEASE_HOOK: std::sync::OnceLock<fn(usize, usize)> = std::sync::OnceLock::new();

/// Installs the function called with (start address, bytes) just before a region of
/// buffer memory ([`super::HostBuf::dma_range`]) is returned to the OS, on the thread
/// that drops it. A device backend that registered the region for DMA unregisters it
/// there, so no registration outlives its memory. One hook per process: returns
/// `false` (and changes nothing) when one is installed already.
pub fn set_release_hook(hook: fn(usize, usize)) -> bool {
    RELEASE_HOOK.set(hook).is_ok()
}

impl Drop for Region {
    fn drop(&mut self) {
        if let Some(hook) = RELEASE_HOOK.get() {
            hook(self.ptr.as_ptr() as usize, self.bytes);
        }
        if self.mapped {
            #[cfg(target_os = "linux")]
            // SAFETY: the range is exactly the mapping this value owns.
            unsafe {
                libc::munmap(self.ptr.as_ptr().cast(), self.bytes);
            }
        } else if let Ok(layout) = Layout::from_size_align(self.bytes, PAGE) {
            // SAFETY: allocated in `new` with this very layout.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout) }
        }
    }
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("bytes", &self.bytes)
            .field("mapped", &self.mapped)
            .finish()
    }
}

/// The bytes of `values` as a mutable byte slice, for reading data straight into them.
pub(crate) fn bytes_of_mut(values: &mut [f32]) -> &mut [u8] {
    let n = std::mem::size_of_val(values);
    // SAFETY: every byte pattern is a valid `f32` and a valid `u8`; the view covers
    // exactly the same memory and borrows it exclusively.
    unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), n) }
}

/// The bytes of `values` in memory order.
pub(crate) fn bytes_of(values: &[f32]) -> &[u8] {
    let n = std::mem::size_of_val(values);
    // SAFETY: as in `bytes_of_mut`, shared.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), n) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_zeroed_aligned_and_writable() {
        for bytes in [1, 4096, 10_000, MAP_FROM, MAP_FROM + 5] {
            let mut r = Region::new(bytes).expect("memory");
            assert!(r.bytes() >= bytes);
            assert_eq!(r.f32s(0).as_ptr() as usize % PAGE, 0);
            let n = r.bytes() / 4;
            assert!(r.f32s(n).iter().all(|&v| v == 0.0));
            r.f32s_mut(n)[n - 1] = 3.0;
            assert_eq!(r.f32s(n)[n - 1], 3.0);
        }
        let big = Region::new(MAP_FROM).expect("memory");
        if cfg!(target_os = "linux") {
            assert!(big.is_mapped());
            assert_eq!(big.f32s(0).as_ptr() as usize % HUGE_PAGE, 0);
        }
    }

    #[test]
    fn rounding() {
        assert_eq!(rounded(0), PAGE);
        assert_eq!(rounded(PAGE + 1), 2 * PAGE);
        assert_eq!(rounded(MAP_FROM + 1), MAP_FROM + HUGE_PAGE);
    }
}
