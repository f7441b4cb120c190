//! Summary statistics of repeated timings.

use serde::{Deserialize, Serialize};

/// Mean, median, extremes, spread and a 95% confidence interval of the mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Number of timings.
    pub n: usize,
    /// Arithmetic mean, seconds.
    pub mean: f64,
    /// Median, seconds.
    pub median: f64,
    /// Fastest, seconds.
    pub min: f64,
    /// Slowest, seconds.
    pub max: f64,
    /// Sample standard deviation, seconds.
    pub std: f64,
    /// Lower end of the 95% confidence interval of the mean (Student's t).
    pub ci95_low: f64,
    /// Upper end of the 95% confidence interval of the mean.
    pub ci95_high: f64,
}

/// The 97.5% quantile of Student's t with `df` degrees of freedom (the half-width of a
/// two-sided 95% interval, in standard errors).
fn t975(df: usize) -> f64 {
    super::student_t::quantile(0.975, df as f64)
}

impl Stats {
    /// Statistics of `samples` (seconds); `None` when empty.
    pub fn of(samples: &[f64]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        let n = samples.len();
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mean = sorted.iter().sum::<f64>() / n as f64;
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
        };
        let std = if n > 1 {
            (sorted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        let half = if n > 1 {
            t975(n - 1) * std / (n as f64).sqrt()
        } else {
            0.0
        };
        Some(Stats {
            n,
            mean,
            median,
            min: sorted[0],
            max: sorted[n - 1],
            std,
            ci95_low: mean - half,
            ci95_high: mean + half,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let s = Stats::of(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(
            (s.n, s.mean, s.median, s.min, s.max),
            (4, 2.5, 2.5, 1.0, 4.0)
        );
        assert!((s.std - 1.290_994).abs() < 1e-5);
        // t(3) = 3.182: half-width 3.182 * 1.291 / 2 = 2.054
        assert!((s.ci95_high - 4.554).abs() < 1e-3, "{s:?}");
        assert!(Stats::of(&[]).is_none());
        assert_eq!(Stats::of(&[5.0]).unwrap().ci95_low, 5.0);
    }
}
