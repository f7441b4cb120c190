//! Fingerprints of job outputs, so results from different devices can be compared
//! without shipping the data.

#[cfg(target_arch = "x86_64")]
mod avx512;

use serde::{Deserialize, Serialize};

/// A summary of an output's numbers.
///
/// `hash` is exact (FNV-1a style over the values' bits, in blocks of 65 536 values with
/// sixteen interleaved lanes, so it is computed at memory speed on several threads) and
/// tells two runs on the same backend apart;
/// the statistics tolerate the rounding differences between a GPU and a CPU, and
/// [`Fingerprint::close_to`] compares them with a tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Number of values.
    pub len: u64,
    /// Sum of the values (f64 accumulation).
    pub sum: f64,
    /// Euclidean norm of the values.
    pub l2: f64,
    /// Smallest value.
    pub min: f32,
    /// Largest value.
    pub max: f32,
    /// Number of NaN or infinite values.
    pub non_finite: u64,
    /// A 64-bit hash of the values' bits (see the type's docs).
    pub hash: u64,
}

/// Values per block: the unit the statistics and the hash are computed over, at fixed
/// positions of the whole sequence, so the result never depends on how the values were
/// split into slices or how many threads summed them.
const BLOCK: usize = 1 << 16;
/// Independent accumulators inside a block, so the loop vectorizes (one AVX-512
/// register of `f32`s).
const LANES: usize = 16;
/// From this many values up, blocks are digested on several threads.
const PARALLEL_FROM: usize = 1 << 22;
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;
const FNV32_OFFSET: u32 = 0x811c_9dc5;
const FNV32_PRIME: u32 = 0x0100_0193;

/// The digest of one block.
#[derive(Clone, Copy)]
struct Digest {
    len: u64,
    sum: f64,
    sq: f64,
    min: f32,
    max: f32,
    non_finite: u64,
    hash: u64,
}

/// Per-lane accumulators. Every step is branch-free, so the compiler turns a step over
/// `LANES` values into a few vector instructions.
struct Lanes {
    sum: [f64; LANES],
    sq: [f64; LANES],
    min: [f32; LANES],
    max: [f32; LANES],
    nf: [u32; LANES],
    hash: [u32; LANES],
}

#[inline(always)]
fn digest_impl(values: &[f32]) -> Digest {
    let mut a = Lanes {
        sum: [0.0; LANES],
        sq: [0.0; LANES],
        min: [f32::INFINITY; LANES],
        max: [f32::NEG_INFINITY; LANES],
        nf: [0; LANES],
        hash: [FNV32_OFFSET; LANES],
    };
    #[inline(always)]
    fn step(a: &mut Lanes, l: usize, v: f32) {
        let fin = v.is_finite();
        let x = if fin { v } else { 0.0 };
        a.sum[l] += f64::from(x);
        a.sq[l] += f64::from(x) * f64::from(x);
        a.min[l] = a.min[l].min(if fin { v } else { f32::INFINITY });
        a.max[l] = a.max[l].max(if fin { v } else { f32::NEG_INFINITY });
        a.nf[l] += u32::from(!fin);
        a.hash[l] = (a.hash[l] ^ v.to_bits()).wrapping_mul(FNV32_PRIME);
    }
    let (chunks, rest) = values.as_chunks::<LANES>();
    for c in chunks {
        for (l, &v) in c.iter().enumerate() {
            step(&mut a, l, v);
        }
    }
    for (l, &v) in rest.iter().enumerate() {
        step(&mut a, l, v);
    }
    reduce(&a, values.len())
}

/// Folds a block's lanes into its digest, lane 0 first (every vector path ends here,
/// so the order of the additions, and so the bits, are the same on all of them).
#[inline(always)]
fn reduce(a: &Lanes, len: usize) -> Digest {
    let mut d = Digest {
        len: len as u64,
        sum: 0.0,
        sq: 0.0,
        min: f32::INFINITY,
        max: f32::NEG_INFINITY,
        non_finite: 0,
        hash: FNV_OFFSET,
    };
    for l in 0..LANES {
        d.sum += a.sum[l];
        d.sq += a.sq[l];
        d.min = d.min.min(a.min[l]);
        d.max = d.max.max(a.max[l]);
        d.non_finite += u64::from(a.nf[l]);
        d.hash = (d.hash ^ u64::from(a.hash[l])).wrapping_mul(FNV_PRIME);
    }
    d
}

/// The vector unit the digest uses: 2 for AVX-512 (F, DQ, VL), 1 for AVX2 with FMA,
/// 0 for the baseline; detected once. `GPUJOBS_NO_AVX512` (set to anything) stops at
/// AVX2, as it does for the CPU kernels, to measure the narrower path on a wider CPU.
fn level() -> u8 {
    #[cfg(target_arch = "x86_64")]
    {
        static LEVEL: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
        *LEVEL.get_or_init(|| {
            if std::env::var_os("GPUJOBS_NO_AVX512").is_none()
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                2
            } else if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                1
            } else {
                0
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    0
}

/// [`digest_impl`] compiled for the widest vector unit this CPU has. The results are
/// identical on every path (the same operations in the same order per lane).
fn digest(values: &[f32]) -> Digest {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
        fn with_avx512(values: &[f32]) -> Digest {
            digest_impl(values)
        }
        #[target_feature(enable = "avx2,fma")]
        fn with_avx2(values: &[f32]) -> Digest {
            digest_impl(values)
        }
        // SAFETY: each function is called only when `level` detected the features it
        // is compiled for.
        #[allow(unsafe_code)]
        let fast = match level() {
            2 => Some(unsafe { with_avx512(values) }),
            1 => Some(unsafe { with_avx2(values) }),
            _ => None,
        };
        if let Some(d) = fast {
            return d;
        }
    }
    digest_impl(values)
}

/// Digests whole blocks, on several threads when there are many, in order.
fn digest_blocks(values: &[f32]) -> Vec<Digest> {
    if values.len() < PARALLEL_FROM {
        return digest_seq(values);
    }
    // Asked once: the answer reads cgroup files, which costs more than a small digest.
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let threads =
        *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 1 {
        return digest_seq(values);
    }
    let per = values.len().div_ceil(BLOCK).div_ceil(threads) * BLOCK;
    std::thread::scope(|s| {
        let parts: Vec<_> = values
            .chunks(per)
            .map(|part| s.spawn(move || digest_seq(part)))
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// Digests of `values` cut into blocks from its start, in order, on this thread. With
/// AVX-512, whole blocks go two at a time through [`avx512::digest_pair`], which keeps
/// two independent hash chains in flight (a lone chain waits on each multiply).
fn digest_seq(values: &[f32]) -> Vec<Digest> {
    let mut out = Vec::with_capacity(values.len().div_ceil(BLOCK));
    #[cfg(target_arch = "x86_64")]
    let values = if level() == 2 {
        let pairs = values.len() / (2 * BLOCK);
        for pair in values[..pairs * 2 * BLOCK].chunks_exact(2 * BLOCK) {
            let (a, b) = pair.split_at(BLOCK);
            // SAFETY: level 2 means the CPU has AVX-512 F (checked by `level`).
            #[allow(unsafe_code)]
            let (da, db) = unsafe { avx512::digest_pair(a, b) };
            out.push(da);
            out.push(db);
        }
        &values[pairs * 2 * BLOCK..]
    } else {
        values
    };
    out.extend(values.chunks(BLOCK).map(digest));
    out
}

/// The digests of an output's blocks, made by whoever writes the output while each block
/// is still in cache, then folded into its fingerprint.
///
/// A kernel that writes its output part by part (rows of an image, chunks of a vector)
/// calls [`BlockDigests::written`] after each part, on any thread; [`BlockDigests::finish`]
/// digests the blocks nobody did (those that straddle two parts) from the finished
/// output and folds every block in order. The result is exactly [`Fingerprint::of`] of
/// the output: the same blocks, digested by the same code, folded in the same order.
/// Digesting a block just written costs a read from cache instead of one from memory,
/// which for a memory-bound kernel is about the cost of the kernel itself.
#[derive(Debug)]
pub struct BlockDigests {
    len: usize,
    slots: Vec<std::sync::OnceLock<Digest>>,
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Digest")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl BlockDigests {
    /// Slots for an output of `len` values.
    pub fn new(len: usize) -> Self {
        BlockDigests {
            len,
            slots: (0..len.div_ceil(BLOCK))
                .map(|_| std::sync::OnceLock::new())
                .collect(),
        }
    }

    /// `part` holds the output's values `start..start + part.len()`, all final: digests
    /// every block lying wholly inside it that is not digested yet. Parts may overlap
    /// and come in any order, from any thread.
    pub fn written(&self, start: usize, part: &[f32]) {
        let end = (start + part.len()).min(self.len);
        let mut b = start.div_ceil(BLOCK);
        while b < self.slots.len() {
            let (from, to) = (b * BLOCK, ((b + 1) * BLOCK).min(self.len));
            if to > end {
                break;
            }
            if self.slots[b].get().is_none() {
                let _ = self.slots[b].set(digest(&part[from - start..to - start]));
            }
            b += 1;
        }
    }

    /// The fingerprint of `values`, the whole output the parts were written into.
    /// Panics if `values` is not as long as the output given to [`BlockDigests::new`].
    pub fn finish(self, values: &[f32]) -> Fingerprint {
        assert_eq!(values.len(), self.len, "output length");
        let mut acc = Accumulator::new();
        for (b, slot) in self.slots.into_iter().enumerate() {
            let d = slot
                .into_inner()
                .unwrap_or_else(|| digest(&values[b * BLOCK..((b + 1) * BLOCK).min(values.len())]));
            acc.fold(d);
        }
        acc.finish()
    }
}

/// Accumulates a fingerprint over values fed in slices of any length.
struct Accumulator {
    f: Fingerprint,
    sq: f64,
    pending: Vec<f32>,
}

impl Accumulator {
    fn new() -> Self {
        Accumulator {
            f: Fingerprint {
                min: f32::INFINITY,
                max: f32::NEG_INFINITY,
                hash: FNV_OFFSET,
                ..Default::default()
            },
            sq: 0.0,
            pending: Vec::new(),
        }
    }

    fn fold(&mut self, d: Digest) {
        self.f.len += d.len;
        self.f.sum += d.sum;
        self.sq += d.sq;
        self.f.min = self.f.min.min(d.min);
        self.f.max = self.f.max.max(d.max);
        self.f.non_finite += d.non_finite;
        self.f.hash = (self.f.hash ^ d.hash).wrapping_mul(FNV_PRIME);
    }

    fn feed(&mut self, mut values: &[f32]) {
        if !self.pending.is_empty() {
            let k = (BLOCK - self.pending.len()).min(values.len());
            self.pending.extend_from_slice(&values[..k]);
            values = &values[k..];
            if self.pending.len() == BLOCK {
                let d = digest(&self.pending);
                self.fold(d);
                self.pending.clear();
            }
        }
        let whole = values.len() / BLOCK * BLOCK;
        for d in digest_blocks(&values[..whole]) {
            self.fold(d);
        }
        self.pending.extend_from_slice(&values[whole..]);
    }

    fn finish(mut self) -> Fingerprint {
        if !self.pending.is_empty() {
            let d = digest(&self.pending);
            self.fold(d);
        }
        let mut f = self.f;
        f.l2 = self.sq.sqrt();
        if f.len == f.non_finite {
            f.min = 0.0;
            f.max = 0.0;
        }
        f
    }
}

impl Fingerprint {
    /// The fingerprint of a sequence of slices, as if they were one.
    pub fn of_slices<'a>(parts: impl IntoIterator<Item = &'a [f32]>) -> Self {
        let mut acc = Accumulator::new();
        for part in parts {
            acc.feed(part);
        }
        acc.finish()
    }

    /// The fingerprint of tensors' values, as if they were one sequence (tensors that
    /// hold no values, such as unresolved blob references, are left out).
    pub fn of_tensors(tensors: &[&crate::model::tensor::Tensor]) -> Self {
        // One tensor whose fingerprint was made while it was written.
        if let [t] = tensors
            && let Some(f) = t.stored().and_then(|v| v.fingerprint())
        {
            return f;
        }
        let values: Vec<_> = tensors.iter().filter_map(|t| t.values().ok()).collect();
        Self::of_slices(values.iter().map(|v| &v[..]))
    }

    /// The fingerprint of one slice.
    pub fn of(values: &[f32]) -> Self {
        Self::of_slices([values])
    }

    /// Whether two fingerprints describe the same numbers up to a relative tolerance
    /// (scaled by the norm, the way GPU/CPU results are compared).
    pub fn close_to(&self, other: &Fingerprint, rtol: f64) -> bool {
        let scale = self.l2.max(other.l2).max(f64::MIN_POSITIVE);
        let n = (self.len as f64).sqrt().max(1.0);
        self.len == other.len
            && self.non_finite == other.non_finite
            && (self.l2 - other.l2).abs() <= rtol * scale
            && (self.sum - other.sum).abs() <= rtol * scale * n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_but_not_identical() {
        let a: Vec<f32> = (0..1000).map(|i| i as f32 * 0.001).collect();
        let b: Vec<f32> = a.iter().map(|v| v * (1.0 + 1e-7)).collect();
        let (fa, fb) = (Fingerprint::of(&a), Fingerprint::of(&b));
        assert_ne!(fa.hash, fb.hash);
        assert!(fa.close_to(&fb, 1e-5));
        let c: Vec<f32> = a.iter().map(|v| v * 1.01).collect();
        assert!(!fa.close_to(&Fingerprint::of(&c), 1e-5));
    }

    #[test]
    fn split_equals_whole() {
        let a: Vec<f32> = (0..100).map(|i| i as f32).collect();
        assert_eq!(
            Fingerprint::of(&a),
            Fingerprint::of_slices([&a[..40], &a[40..]])
        );
        // Across block boundaries and the parallel path, split anywhere.
        let big: Vec<f32> = (0..PARALLEL_FROM + 3 * BLOCK + 17)
            .map(|i| (i % 1013) as f32 - 500.0)
            .collect();
        let whole = Fingerprint::of(&big);
        for cut in [1, BLOCK - 1, BLOCK, 5 * BLOCK + 3, big.len() - 2] {
            assert_eq!(whole, Fingerprint::of_slices([&big[..cut], &big[cut..]]));
        }
        let thirds = big.len() / 3;
        assert_eq!(
            whole,
            Fingerprint::of_slices([&big[..thirds], &big[thirds..2 * thirds], &big[2 * thirds..]])
        );
        assert_eq!(whole.len, big.len() as u64);
    }

    #[test]
    fn vector_paths_equal_the_plain_one() {
        let v: Vec<f32> = (0..BLOCK - 5)
            .map(|i| ((i * 7919) % 1000) as f32 * 0.37 - 170.0)
            .chain([f32::NAN, f32::INFINITY, -0.0])
            .collect();
        let (fast, plain) = (digest(&v), digest_impl(&v));
        assert_eq!(fast.hash, plain.hash);
        assert_eq!(fast.sum.to_bits(), plain.sum.to_bits());
        assert_eq!(fast.sq.to_bits(), plain.sq.to_bits());
        assert_eq!(
            (fast.min, fast.max, fast.non_finite),
            (plain.min, plain.max, plain.non_finite)
        );
    }

    /// Values of every class at pseudo-random positions: ordinary numbers of both signs
    /// and many magnitudes, NaNs (quiet, signalling, negative), infinities, signed
    /// zeros, subnormals and ties of equal values.
    fn mixed_values(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let r = (x >> 33) as u32;
                match r % 64 {
                    0 => f32::NAN,
                    1 => f32::from_bits(0xff80_0001),
                    2 => f32::INFINITY,
                    3 => f32::NEG_INFINITY,
                    4 => 0.0,
                    5 => -0.0,
                    6 => f32::from_bits(r % 0x0080_0000),
                    7 => 1.5,
                    _ => f32::from_bits(r & 0xbfff_ffff) * if r & 1 == 0 { 1.0 } else { -1.0 },
                }
            })
            .collect()
    }

    fn same_bits(a: &Digest, b: &Digest) -> bool {
        (a.len, a.hash, a.non_finite) == (b.len, b.hash, b.non_finite)
            && a.sum.to_bits() == b.sum.to_bits()
            && a.sq.to_bits() == b.sq.to_bits()
            && a.min.to_bits() == b.min.to_bits()
            && a.max.to_bits() == b.max.to_bits()
    }

    #[test]
    fn paired_blocks_equal_the_plain_digest_bit_for_bit() {
        // Five whole blocks (two pairs and a lone one) and a partial block: with
        // specials everywhere, and with ties of signed zeros at the minimum (then at the
        // maximum), where the order of a comparison decides the sign kept.
        let n = 5 * BLOCK + 999;
        let ties =
            |third: f32| -> Vec<f32> { (0..n).map(|i| [0.0, -0.0, third][(i / 7) % 3]).collect() };
        for values in [mixed_values(n, 7), ties(1.0), ties(-1.0)] {
            let fast = digest_seq(&values);
            let plain: Vec<Digest> = values.chunks(BLOCK).map(digest_impl).collect();
            assert_eq!(fast.len(), plain.len());
            for (i, (f, p)) in fast.iter().zip(&plain).enumerate() {
                assert!(same_bits(f, p), "block {i} differs");
            }
        }
    }

    #[test]
    fn block_digests_equal_the_whole_fingerprint_however_the_parts_come() {
        let n = 7 * BLOCK + 4321;
        let v = mixed_values(n, 11);
        let whole = Fingerprint::of(&v);
        // Nothing digested while writing: all from the finished output.
        assert_eq!(BlockDigests::new(n).finish(&v), whole);
        // Parts of awkward sizes, out of order, overlapping, the last block partial.
        let d = BlockDigests::new(n);
        let cuts = [0, 1000, BLOCK + 17, 3 * BLOCK, 5 * BLOCK - 1, n];
        for w in cuts.windows(2).rev() {
            d.written(w[0], &v[w[0]..w[1]]);
        }
        d.written(2 * BLOCK, &v[2 * BLOCK..6 * BLOCK]);
        assert_eq!(d.finish(&v), whole);
        // Row by row, as a kernel writes a strip.
        let d = BlockDigests::new(n);
        let w = 777;
        for end in (w..=n).step_by(w).chain([n]) {
            d.written(0, &v[..end]);
        }
        assert_eq!(d.finish(&v), whole);
        assert_eq!(BlockDigests::new(0).finish(&[]), Fingerprint::of(&[]));
    }

    #[test]
    fn statistics_and_non_finite_values() {
        let f = Fingerprint::of(&[1.0, -2.0, f32::NAN, 4.0, f32::INFINITY]);
        assert_eq!((f.len, f.non_finite), (5, 2));
        assert_eq!((f.min, f.max, f.sum), (-2.0, 4.0, 3.0));
        assert!((f.l2 - 21f64.sqrt()).abs() < 1e-12);
        let all_bad = Fingerprint::of(&[f32::NAN]);
        assert_eq!((all_bad.min, all_bad.max), (0.0, 0.0));
        // Every value and its position count in the hash.
        assert_ne!(
            Fingerprint::of(&[1.0, 2.0]).hash,
            Fingerprint::of(&[2.0, 1.0]).hash
        );
        assert_ne!(Fingerprint::of(&[0.0]).hash, Fingerprint::of(&[-0.0]).hash);
    }
}
