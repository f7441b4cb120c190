//! Freshly allocated output vectors, for the plain functions of [`crate::ops`] (the
//! executors take theirs from a [`gpujobs_core::BufferPool`] instead).
//!
//! A large output written once is dominated by page faults: 200 MB in 4 KiB pages is
//! some 50 000 faults, each zeroing a page. On Linux with transparent huge pages in
//! `madvise` mode (the common default), asking for huge pages cuts that to about a
//! hundred 2 MiB faults. numpy does the same for its arrays of 4 MiB and more, so our
//! outputs get it too; elsewhere the advice is simply not given.

/// Buffers from this size up are advised to use huge pages.
const HUGE_FROM_BYTES: usize = 4 << 20;

/// A zero-filled buffer of `n` values whose pages have not been touched yet (the
/// allocator maps fresh zero pages), so the kernel that writes it decides where its
/// pages fault in, in parallel.
pub fn zeroed(n: usize) -> Vec<f32> {
    let v = vec![0f32; n];
    if n.saturating_mul(4) >= HUGE_FROM_BYTES {
        advise_huge_pages(&v);
    }
    v
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn advise_huge_pages(v: &[f32]) {
    const PAGE: usize = 4096;
    let start = v.as_ptr() as usize;
    let end = start + std::mem::size_of_val(v);
    let (from, to) = (start.div_ceil(PAGE) * PAGE, end / PAGE * PAGE);
    if to > from {
        // SAFETY: the page-aligned range lies inside the live allocation behind `v`.
        // MADV_HUGEPAGE only changes how future faults are served, never the contents,
        // and a failure (THP disabled) leaves everything as it was.
        unsafe {
            libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_: &[f32]) {}

#[cfg(test)]
mod tests {
    #[test]
    fn zeroed_is_zero_at_every_size() {
        for n in [0, 1, 1000, (4 << 20) / 4 + 3] {
            let v = super::zeroed(n);
            assert_eq!(v.len(), n);
            assert!(v.iter().all(|&x| x == 0.0));
        }
    }
}
