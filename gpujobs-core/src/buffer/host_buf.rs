//! [`HostBuf`]: the host memory a tensor's values live in.

use super::pool::Shared;
use super::region::{self, Region};
use std::borrow::Cow;
use std::sync::Arc;

/// Host memory could not be had for a buffer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot allocate {bytes} bytes of host memory")]
pub struct OutOfHostMemory {
    /// The size asked for.
    pub bytes: usize,
}

impl From<OutOfHostMemory> for crate::JobError {
    fn from(e: OutOfHostMemory) -> Self {
        crate::JobError::temporary(e.to_string())
    }
}

impl From<OutOfHostMemory> for crate::ValidationError {
    fn from(e: OutOfHostMemory) -> Self {
        crate::ValidationError::TooLarge {
            needed: e.bytes as u128,
            limit: 0,
            what: "host memory available now".into(),
        }
    }
}

enum Storage {
    /// Page-aligned memory of our own, pooled or not.
    Region(Region),
    /// A vector handed over by a caller, adopted without copying.
    Vec(Vec<f32>),
}

/// `f32` values in host memory: page-aligned memory from a [`super::BufferPool`] (or of
/// its own), or a `Vec<f32>` adopted as it is.
///
/// Page-aligned buffers are what a device can register for DMA in place and what the
/// pool recycles: when a pooled buffer is dropped its memory goes back to the pool it
/// came from (or to the OS when the pool is full). A buffer belongs to whoever holds
/// it; holding one never blocks the pool, which simply allocates anew when it has
/// nothing idle of the right size.
pub struct HostBuf {
    storage: Storage,
    len: usize,
    home: Option<Arc<Shared>>,
}

impl HostBuf {
    pub(crate) fn pooled(region: Region, len: usize, home: Arc<Shared>) -> Self {
        HostBuf {
            storage: Storage::Region(region),
            len,
            home: Some(home),
        }
    }

    /// A zero-filled, page-aligned buffer of `len` values that belongs to no pool.
    pub fn zeroed(len: usize) -> Result<Self, OutOfHostMemory> {
        let bytes = len.saturating_mul(4);
        let region = Region::new(bytes).ok_or(OutOfHostMemory { bytes })?;
        Ok(HostBuf {
            storage: Storage::Region(region),
            len,
            home: None,
        })
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the values start on a page boundary (true for every buffer this crate
    /// allocates; an adopted `Vec` usually is not), so a device may register the memory
    /// in place instead of staging it.
    pub fn is_page_aligned(&self) -> bool {
        (self.as_slice().as_ptr() as usize).is_multiple_of(region::PAGE)
    }

    /// The whole page-aligned region holding the values, `(start address, bytes)`, when
    /// the memory is this crate's own: a device may register that range for DMA in
    /// place, and [`super::set_release_hook`] hears before it goes back to the OS.
    /// `None` for an adopted `Vec`.
    pub fn dma_range(&self) -> Option<(usize, usize)> {
        match &self.storage {
            Storage::Region(r) => Some((self.as_slice().as_ptr() as usize, r.bytes())),
            Storage::Vec(_) => None,
        }
    }

    /// Whether the memory returns to a pool when dropped.
    pub fn is_pooled(&self) -> bool {
        self.home.is_some()
    }

    /// Bytes of memory held (at least `4 * len`).
    pub fn capacity_bytes(&self) -> usize {
        match &self.storage {
            Storage::Region(r) => r.bytes(),
            Storage::Vec(v) => v.capacity() * 4,
        }
    }

    /// The values.
    pub fn as_slice(&self) -> &[f32] {
        match &self.storage {
            Storage::Region(r) => r.f32s(self.len),
            Storage::Vec(v) => v,
        }
    }

    /// The values, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        match &mut self.storage {
            Storage::Region(r) => r.f32s_mut(self.len),
            Storage::Vec(v) => v,
        }
    }

    /// The values' bytes, mutably: for reading little-endian `f32` data straight from a
    /// file or socket into place.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        region::bytes_of_mut(self.as_mut_slice())
    }

    /// The values as little-endian bytes: borrowed on little-endian machines (no copy),
    /// converted elsewhere.
    pub fn as_le_bytes(&self) -> Cow<'_, [u8]> {
        le_bytes(self.as_slice())
    }

    /// The values as a plain vector: the adopted vector itself, or a copy of pooled
    /// memory (which then goes back to its pool).
    pub fn into_vec(mut self) -> Vec<f32> {
        match std::mem::replace(&mut self.storage, Storage::Vec(Vec::new())) {
            Storage::Vec(v) => v,
            Storage::Region(r) => {
                let v = r.f32s(self.len).to_vec();
                self.storage = Storage::Region(r);
                v
            }
        }
    }
}

/// `values` as little-endian bytes, borrowed where the machine is little-endian.
pub fn le_bytes(values: &[f32]) -> Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        Cow::Borrowed(region::bytes_of(values))
    } else {
        Cow::Owned(values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
}

impl Drop for HostBuf {
    fn drop(&mut self) {
        if let Some(home) = self.home.take()
            && let Storage::Region(r) =
                std::mem::replace(&mut self.storage, Storage::Vec(Vec::new()))
        {
            home.give_back(r);
        }
    }
}

impl From<Vec<f32>> for HostBuf {
    /// Adopts the vector without copying.
    fn from(v: Vec<f32>) -> Self {
        HostBuf {
            len: v.len(),
            storage: Storage::Vec(v),
            home: None,
        }
    }
}

impl std::ops::Deref for HostBuf {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        self.as_slice()
    }
}

impl std::ops::DerefMut for HostBuf {
    fn deref_mut(&mut self) -> &mut [f32] {
        self.as_mut_slice()
    }
}

impl PartialEq for HostBuf {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<[f32]> for HostBuf {
    fn eq(&self, other: &[f32]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<Vec<f32>> for HostBuf {
    fn eq(&self, other: &Vec<f32>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl std::fmt::Debug for HostBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let head = &self.as_slice()[..self.len.min(8)];
        f.debug_struct("HostBuf")
            .field("len", &self.len)
            .field("head", &head)
            .field("page_aligned", &self.is_page_aligned())
            .field("pooled", &self.is_pooled())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adopted_vectors_are_not_copied() {
        let v = vec![1.0f32, 2.0, 3.0];
        let ptr = v.as_ptr();
        let b = HostBuf::from(v);
        assert_eq!(b.as_slice().as_ptr(), ptr);
        assert!(!b.is_pooled());
        let back = b.into_vec();
        assert_eq!(back.as_ptr(), ptr);
    }

    #[test]
    fn own_buffers_are_aligned_and_byte_addressable() {
        let mut b = HostBuf::zeroed(5).unwrap();
        assert!(b.is_page_aligned());
        b.as_bytes_mut()[..4].copy_from_slice(&2.5f32.to_le_bytes());
        assert_eq!(b[0], 2.5);
        assert_eq!(&b.as_le_bytes()[..4], &2.5f32.to_le_bytes());
        assert_eq!(b.into_vec(), vec![2.5, 0.0, 0.0, 0.0, 0.0]);
    }
}
