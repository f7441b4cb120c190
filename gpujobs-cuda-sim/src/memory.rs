//! Device memory: a bounded arena of allocations behind opaque handles.
//!
//! Device pointers start at [`BASE`], a non-canonical x86-64 address, so code that
//! dereferences one on the host faults at once instead of reading host memory by luck.
//! Allocations are spaced with a gap, so an access past the end of one is an illegal
//! address rather than the start of the next. Fresh memory is filled with `0xFF` bytes
//! (a NaN as `f32`), so reading what no copy or kernel wrote shows up in results.

use crate::abi::{CuResult, ILLEGAL_ADDRESS, INVALID_VALUE, OUT_OF_MEMORY};
use std::collections::BTreeMap;

/// The first device address handed out.
pub const BASE: u64 = 0xdead_0000_0000_0000;
/// Allocation granularity and alignment (as cuMemAlloc's 256 bytes).
const ALIGN: u64 = 256;
/// Unmapped bytes between two allocations.
const GAP: u64 = 4096;

/// The arena.
#[derive(Debug)]
pub struct Memory {
    allocs: BTreeMap<u64, Vec<u8>>,
    next: u64,
    used: u64,
    capacity: u64,
    peak: u64,
}

impl Memory {
    /// An empty arena of `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        Memory {
            allocs: BTreeMap::new(),
            next: BASE,
            used: 0,
            capacity,
            peak: 0,
        }
    }

    /// Capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes allocated now.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// The most bytes allocated at once.
    pub fn peak(&self) -> u64 {
        self.peak
    }

    /// Number of live allocations.
    pub fn live(&self) -> usize {
        self.allocs.len()
    }

    /// Allocates `bytes` (at least one), or fails with out-of-memory past the capacity.
    pub fn alloc(&mut self, bytes: u64) -> Result<u64, CuResult> {
        let size = bytes.max(1).div_ceil(ALIGN) * ALIGN;
        if self.used.saturating_add(size) > self.capacity {
            return Err(OUT_OF_MEMORY);
        }
        let len = usize::try_from(bytes.max(1)).map_err(|_| OUT_OF_MEMORY)?;
        let mut data = Vec::new();
        data.try_reserve_exact(len).map_err(|_| OUT_OF_MEMORY)?;
        data.resize(len, 0xFF);
        let ptr = self.next;
        self.next += size + GAP;
        self.used += size;
        self.peak = self.peak.max(self.used);
        self.allocs.insert(ptr, data);
        Ok(ptr)
    }

    /// Frees the allocation that starts at `ptr`.
    pub fn free(&mut self, ptr: u64) -> Result<(), CuResult> {
        let data = self.allocs.remove(&ptr).ok_or(INVALID_VALUE)?;
        self.used -= (data.len() as u64).div_ceil(ALIGN) * ALIGN;
        Ok(())
    }

    /// Frees everything (a context reset).
    pub fn clear(&mut self) {
        self.allocs.clear();
        self.used = 0;
    }

    /// The allocation holding `[ptr, ptr + len)` and the offset of `ptr` in it.
    fn locate(&self, ptr: u64, len: u64) -> Result<(u64, usize), CuResult> {
        let (&base, data) = self
            .allocs
            .range(..=ptr)
            .next_back()
            .ok_or(ILLEGAL_ADDRESS)?;
        let offset = ptr - base;
        if offset.saturating_add(len) > data.len() as u64 {
            return Err(ILLEGAL_ADDRESS);
        }
        Ok((base, offset as usize))
    }

    /// The bytes at `[ptr, ptr + len)`.
    pub fn bytes(&self, ptr: u64, len: usize) -> Result<&[u8], CuResult> {
        let (base, off) = self.locate(ptr, len as u64)?;
        Ok(&self.allocs[&base][off..off + len])
    }

    /// The bytes at `[ptr, ptr + len)`, writable.
    pub fn bytes_mut(&mut self, ptr: u64, len: usize) -> Result<&mut [u8], CuResult> {
        let (base, off) = self.locate(ptr, len as u64)?;
        let data = self.allocs.get_mut(&base).ok_or(ILLEGAL_ADDRESS)?;
        Ok(&mut data[off..off + len])
    }

    /// Copies `len` bytes from device `src` to device `dst` (ranges may be in one
    /// allocation).
    pub fn copy_within(&mut self, dst: u64, src: u64, len: usize) -> Result<(), CuResult> {
        let tmp = self.bytes(src, len)?.to_vec();
        self.bytes_mut(dst, len)?.copy_from_slice(&tmp);
        Ok(())
    }

    /// `n` values of a 4- or 8-byte plain type at `ptr`, copied out.
    pub fn read<T: Pod>(&self, ptr: u64, n: usize) -> Result<Vec<T>, CuResult> {
        let bytes = self.bytes(ptr, n * T::SIZE)?;
        Ok(bytes.chunks_exact(T::SIZE).map(T::from_le).collect())
    }

    /// Writes `values` at `ptr`.
    pub fn write<T: Pod>(&mut self, ptr: u64, values: &[T]) -> Result<(), CuResult> {
        let bytes = self.bytes_mut(ptr, values.len() * T::SIZE)?;
        for (chunk, v) in bytes.chunks_exact_mut(T::SIZE).zip(values) {
            v.to_le(chunk);
        }
        Ok(())
    }

    /// Writes one value at element `index` of the array at `ptr`.
    pub fn write_at<T: Pod>(&mut self, ptr: u64, index: usize, value: T) -> Result<(), CuResult> {
        let at = ptr
            .checked_add((index * T::SIZE) as u64)
            .ok_or(ILLEGAL_ADDRESS)?;
        value.to_le(self.bytes_mut(at, T::SIZE)?);
        Ok(())
    }

    /// Reads one value at element `index` of the array at `ptr`.
    pub fn read_at<T: Pod>(&self, ptr: u64, index: usize) -> Result<T, CuResult> {
        let at = ptr
            .checked_add((index * T::SIZE) as u64)
            .ok_or(ILLEGAL_ADDRESS)?;
        Ok(T::from_le(self.bytes(at, T::SIZE)?))
    }
}

/// Plain values kernels read and write.
pub trait Pod: Copy {
    /// Bytes per value.
    const SIZE: usize;
    /// From little-endian bytes (exactly `SIZE`).
    fn from_le(b: &[u8]) -> Self;
    /// Into little-endian bytes (exactly `SIZE`).
    fn to_le(self, out: &mut [u8]);
}

macro_rules! pod {
    ($($t:ty),*) => {$(
        impl Pod for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn from_le(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(b);
                <$t>::from_le_bytes(a)
            }
            fn to_le(self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
pod!(f32, f64, u32, i32, u64);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bounded_spaced_and_checked() {
        let mut m = Memory::new(4096);
        let a = m.alloc(1000).unwrap();
        assert!(a >= BASE);
        assert_eq!(m.alloc(4000), Err(OUT_OF_MEMORY));
        let b = m.alloc(100).unwrap();
        assert!(b > a + 1000, "allocations are spaced");
        assert_eq!(
            m.read::<f32>(a, 1).unwrap()[0].to_bits(),
            u32::MAX,
            "fresh memory is NaN"
        );
        m.write(a, &[1.5f32, 2.5]).unwrap();
        assert_eq!(m.read::<f32>(a, 2).unwrap(), vec![1.5, 2.5]);
        assert_eq!(
            m.bytes(a + 996, 8).err(),
            Some(ILLEGAL_ADDRESS),
            "past the end"
        );
        assert_eq!(m.free(a + 4), Err(INVALID_VALUE));
        m.free(a).unwrap();
        assert_eq!(m.bytes(a, 4).err(), Some(ILLEGAL_ADDRESS), "after free");
        assert_eq!(m.used(), 256);
    }
}
