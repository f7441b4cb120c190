//! Reference vector add and matrix multiply.

use crate::model::synth;

/// `a + b`, element by element.
pub fn vector_add(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) + f64::from(y)) as f32)
        .collect()
}

/// `C = A · B` for row-major `A` (m×k) and `B` (k×n), accumulating in `f64`.
pub fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0f64; m * n];
    for i in 0..m {
        let row = &mut c[i * n..(i + 1) * n];
        for p in 0..k {
            let aip = f64::from(a[i * k + p]);
            for (cj, &bj) in row.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                *cj += aip * f64::from(bj);
            }
        }
    }
    c.into_iter().map(|v| v as f32).collect()
}

/// Freivalds' check of a claimed product `C` in `O(mk + kn + mn)` instead of `O(mkn)`:
/// for `probes` random vectors `x`, compares `C·x` with `A·(B·x)` in `f64` and returns
/// the largest `‖C·x − A·(B·x)‖ / ‖A·(B·x)‖`. A wrong product shows up with overwhelming
/// probability; rounding alone gives about `√k · ε_f32`.
pub fn matmul_probe(
    a: &[f32],
    b: &[f32],
    c: &[f32],
    dims: (usize, usize, usize),
    probes: u32,
    seed: u64,
) -> f64 {
    let (m, k, n) = dims;
    let mut worst = 0f64;
    for probe in 0..probes {
        let s = synth::derive_seed(seed, &format!("probe{probe}"));
        let x: Vec<f64> = (0..n as u64)
            .map(|j| f64::from(synth::uniform(s, j, -1.0, 1.0)))
            .collect();
        let bx: Vec<f64> = (0..k).map(|p| dot(&b[p * n..(p + 1) * n], &x)).collect();
        let (mut num, mut den) = (0f64, 0f64);
        for i in 0..m {
            let abx: f64 = a[i * k..(i + 1) * k]
                .iter()
                .zip(&bx)
                .map(|(&v, &w)| f64::from(v) * w)
                .sum();
            let cx = dot(&c[i * n..(i + 1) * n], &x);
            num += (cx - abx) * (cx - abx);
            den += abx * abx;
        }
        let r = num.sqrt() / den.sqrt().max(f64::MIN_POSITIVE);
        worst = if r.is_nan() {
            f64::INFINITY
        } else {
            worst.max(r)
        };
    }
    worst
}

fn dot(row: &[f32], x: &[f64]) -> f64 {
    row.iter().zip(x).map(|(&v, &w)| f64::from(v) * w).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_product_by_hand() {
        // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]
        assert_eq!(
            matmul(&[1., 2., 3., 4.], &[5., 6., 7., 8.], 2, 2, 2),
            vec![19., 22., 43., 50.]
        );
        // 1×3 · 3×1
        assert_eq!(matmul(&[1., 2., 3.], &[4., 5., 6.], 1, 3, 1), vec![32.]);
    }

    #[test]
    fn probe_accepts_right_and_rejects_wrong() {
        let (m, k, n) = (7, 5, 3);
        let a: Vec<f32> = (0..m * k)
            .map(|i| synth::uniform(1, i as u64, -1.0, 1.0))
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| synth::uniform(2, i as u64, -1.0, 1.0))
            .collect();
        let mut c = matmul(&a, &b, m, k, n);
        assert!(matmul_probe(&a, &b, &c, (m, k, n), 2, 9) < 1e-6);
        c[4] += 0.5;
        assert!(matmul_probe(&a, &b, &c, (m, k, n), 2, 9) > 1e-3);
    }
}
