//! Deterministic synthetic data, identical on every backend and machine.
//!
//! Element `i` of a synthetic tensor with seed `s` is a pure function of `(s, i)`: the
//! SplitMix64 finaliser of `s + (i + 1) * φ`, whose top 24 bits become an `f32` in
//! `[0, 1)` exactly (24 bits fit an `f32` mantissa), then scaled to `[lo, hi)`. Because it
//! is counter-based, any backend can generate any slice of a tensor in parallel and get
//! the very same bits, so GPU and CPU results of a synthetic job can be cross-checked.

/// The 64-bit golden-ratio increment of SplitMix64.
pub const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function (finaliser) applied to `z`.
#[inline]
pub fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform `f32` in `[0, 1)` for element `index` of the stream `seed`.
#[inline]
pub fn unit(seed: u64, index: u64) -> f32 {
    let bits = splitmix64(seed.wrapping_add(index.wrapping_add(1).wrapping_mul(GOLDEN)));
    (bits >> 40) as f32 * (1.0 / 16_777_216.0)
}

/// Uniform `f32` in `[lo, hi)` for element `index` of the stream `seed`.
#[inline]
pub fn uniform(seed: u64, index: u64, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * unit(seed, index)
}

/// Fills `out` with elements `start..start + out.len()` of the stream.
pub fn fill_uniform(out: &mut [f32], seed: u64, start: u64, lo: f32, hi: f32) {
    for (i, v) in out.iter_mut().enumerate() {
        *v = uniform(seed, start + i as u64, lo, hi);
    }
}

/// A new seed derived from `seed` and a label, so that the operands of one job (say the
/// `a` and `b` of a matmul) get independent streams from a single user-given seed.
pub fn derive_seed(seed: u64, label: &str) -> u64 {
    let mut h = seed ^ 0x51_7CC1_B727_220A;
    for b in label.bytes() {
        h = splitmix64(h ^ u64::from(b));
    }
    h
}

/// A deterministic permutation of `0..n` (Fisher–Yates driven by the stream `seed`).
/// Used for the MLP's per-epoch shuffle, so every backend visits samples in one order.
pub fn permutation(n: usize, seed: u64) -> Vec<u32> {
    let mut p: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        let r = splitmix64(seed.wrapping_add((i as u64).wrapping_mul(GOLDEN)));
        // Multiply-shift maps r to 0..=i without modulo bias worth caring about here.
        let j = ((u128::from(r) * (i as u128 + 1)) >> 64) as usize;
        p.swap(i, j);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_is_in_range_and_reproducible() {
        for i in 0..10_000 {
            let v = unit(42, i);
            assert!((0.0..1.0).contains(&v));
            assert_eq!(v.to_bits(), unit(42, i).to_bits());
        }
        assert_ne!(unit(1, 0), unit(2, 0));
    }

    #[test]
    fn known_values_pin_the_generator() {
        // Changing the generator silently would break cross-checks against data that
        // other backends (the CUDA kernels, other languages) generate: pin a few values.
        assert_eq!(splitmix64(0), 0);
        assert_eq!(splitmix64(GOLDEN), 0xE220_A839_7B1D_CDAF);
        assert_eq!(
            unit(0, 0),
            (0xE220_A839_7B1D_CDAFu64 >> 40) as f32 / 16_777_216.0
        );
    }

    #[test]
    fn mean_is_near_half() {
        let n = 100_000;
        let mean: f64 = (0..n).map(|i| f64::from(unit(7, i))).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
    }

    #[test]
    fn permutation_is_a_permutation() {
        let p = permutation(1000, 3);
        let mut s = p.clone();
        s.sort_unstable();
        assert!(s.iter().enumerate().all(|(i, &v)| v as usize == i));
        assert_ne!(p, permutation(1000, 4));
    }
}
