//! Cost models fitted to measurements: `gpujobs calibrate` writes one, the scheduler
//! reads one, and the library ships a default for when no calibration exists.
//!
//! For each kind and device class the model is linear in the job's [`Cost`]:
//! `seconds = overhead + flops·per_flop + bytes·per_byte + transfer_bytes·per_transfer_byte`
//! (the last term only for GPUs: the PCIe copies). It is fitted by least squares on
//! relative error, so a 50 µs vector add and a 5 s matmul weigh the same, with every
//! coefficient kept non-negative. StarPU's history-based models and the HEFT rule work
//! the same way: measured time per implementation and device, earliest finish wins.

use crate::model::cost::Cost;
use crate::model::device::DeviceClass;
use crate::scheduler::placement::{CostModel, NominalCostModel};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the model file format.
pub const MODEL_VERSION: u32 = 1;

/// A fitted linear cost for one kind on one device class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinearCost {
    /// Fixed time per job (launch, allocation, scheduling), seconds.
    pub overhead_s: f64,
    /// Seconds per floating-point operation.
    pub per_flop_s: f64,
    /// Seconds per byte of memory traffic.
    pub per_byte_s: f64,
    /// Seconds per byte copied between host and device.
    pub per_transfer_byte_s: f64,
    /// Measurements it was fitted to.
    pub samples: u32,
    /// Root-mean-square relative error of the fit on those measurements.
    pub rel_rms_error: f64,
}

impl LinearCost {
    /// Predicted seconds for `c`.
    pub fn predict(&self, c: &Cost) -> f64 {
        self.overhead_s
            + c.flops * self.per_flop_s
            + c.bytes * self.per_byte_s
            + c.transfer_bytes * self.per_transfer_byte_s
    }
}

/// One measurement: a job's cost and how long it took, end to end (transfers included).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The job's cost.
    pub cost: Cost,
    /// Measured seconds.
    pub seconds: f64,
}

/// The JSON file `gpujobs calibrate` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostModelFile {
    /// Format version ([`MODEL_VERSION`]).
    pub version: u32,
    /// True when measured on the machines that will run the jobs; false for the
    /// library's default.
    pub calibrated: bool,
    /// Where the numbers come from (machines, date, command).
    pub source: String,
    /// Fitted costs per kind and device class.
    pub kinds: BTreeMap<String, BTreeMap<DeviceClass, LinearCost>>,
}

/// A cost model from a [`CostModelFile`], falling back to [`NominalCostModel`] for
/// kinds or devices it has no entry for.
#[derive(Debug, Clone)]
pub struct CalibratedCostModel {
    file: CostModelFile,
    fallback: NominalCostModel,
}

impl CalibratedCostModel {
    /// The model shipped with the library (see `default_cost_model.json`): measured on
    /// the development machines, not on yours. `gpujobs calibrate` makes a better one.
    pub fn default_model() -> Self {
        let file = serde_json::from_str(include_str!("default_cost_model.json")).unwrap_or(
            CostModelFile {
                version: MODEL_VERSION,
                calibrated: false,
                source: "nominal rates".into(),
                kinds: BTreeMap::new(),
            },
        );
        Self::new(file)
    }

    /// A model from a parsed file.
    pub fn new(file: CostModelFile) -> Self {
        CalibratedCostModel {
            file,
            fallback: NominalCostModel::default(),
        }
    }

    /// Reads a model file.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let file: CostModelFile =
            serde_json::from_str(text).map_err(|e| format!("not a cost model file: {e}"))?;
        if file.version > MODEL_VERSION {
            return Err(format!(
                "cost model version {} is newer than this gpujobs ({MODEL_VERSION})",
                file.version
            ));
        }
        Ok(Self::new(file))
    }

    /// The model in the file at `path` (as `gpujobs calibrate` writes it), or the
    /// built-in default without one. Errors name the file.
    pub fn load(path: Option<&std::path::Path>) -> Result<Self, String> {
        let Some(p) = path else {
            return Ok(Self::default_model());
        };
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        Self::from_json(&text).map_err(|e| format!("{}: {e}", p.display()))
    }

    /// The file behind the model.
    pub fn file(&self) -> &CostModelFile {
        &self.file
    }
}

impl CostModel for CalibratedCostModel {
    fn estimate(&self, kind: &str, cost: &Cost, class: DeviceClass) -> f64 {
        match self.file.kinds.get(kind).and_then(|m| m.get(&class)) {
            Some(linear) => linear.predict(cost),
            None => self.fallback.estimate(kind, cost, class),
        }
    }

    fn name(&self) -> String {
        if self.file.calibrated {
            "calibrated".into()
        } else {
            "default, not calibrated on this cluster".into()
        }
    }

    fn description(&self) -> String {
        format!("{} ({})", self.name(), self.file.source)
    }
}

/// Fits a [`LinearCost`] to measurements by non-negative least squares on relative
/// error. `with_transfer` adds the host-device copy term (GPUs).
pub fn fit(samples: &[Sample], with_transfer: bool) -> Option<LinearCost> {
    let good: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.seconds.is_finite() && s.seconds > 0.0)
        .collect();
    if good.is_empty() {
        return None;
    }
    let features = |c: &Cost| {
        [
            1.0,
            c.flops,
            c.bytes,
            if with_transfer { c.transfer_bytes } else { 0.0 },
        ]
    };
    // Columns that never vary or are absent are left out; a negative coefficient drops
    // its column and the fit is repeated (a small active-set NNLS).
    let mut active: Vec<usize> = (0..4)
        .filter(|&j| good.iter().any(|s| features(&s.cost)[j] != 0.0))
        .collect();
    loop {
        let coef = solve_weighted(&good, &active, &features)?;
        if let Some(pos) = coef.iter().position(|&c| c < 0.0) {
            active.remove(pos);
            if active.is_empty() {
                return None;
            }
            continue;
        }
        let mut full = [0.0; 4];
        for (&j, &c) in active.iter().zip(&coef) {
            full[j] = c;
        }
        let model = LinearCost {
            overhead_s: full[0],
            per_flop_s: full[1],
            per_byte_s: full[2],
            per_transfer_byte_s: full[3],
            samples: good.len() as u32,
            rel_rms_error: 0.0,
        };
        let rms = (good
            .iter()
            .map(|s| ((model.predict(&s.cost) - s.seconds) / s.seconds).powi(2))
            .sum::<f64>()
            / good.len() as f64)
            .sqrt();
        return Some(LinearCost {
            rel_rms_error: rms,
            ..model
        });
    }
}

/// Least squares of `features · coef ≈ seconds` weighted by `1/seconds` (relative
/// error), over the `active` columns; columns are scaled to unit size first.
fn solve_weighted(
    samples: &[&Sample],
    active: &[usize],
    features: &dyn Fn(&Cost) -> [f64; 4],
) -> Option<Vec<f64>> {
    let k = active.len();
    let scale: Vec<f64> = active
        .iter()
        .map(|&j| {
            samples
                .iter()
                .map(|s| (features(&s.cost)[j] / s.seconds).abs())
                .fold(0.0, f64::max)
                .max(f64::MIN_POSITIVE)
        })
        .collect();
    let mut ata = vec![vec![0.0; k]; k];
    let mut atb = vec![0.0; k];
    for s in samples {
        let f = features(&s.cost);
        let row: Vec<f64> = active
            .iter()
            .zip(&scale)
            .map(|(&j, &sc)| f[j] / s.seconds / sc)
            .collect();
        for a in 0..k {
            atb[a] += row[a];
            for b in 0..k {
                ata[a][b] += row[a] * row[b];
            }
        }
    }
    // A little ridge keeps near-collinear columns (flops and bytes of one kind) stable.
    for (a, row) in ata.iter_mut().enumerate() {
        row[a] += 1e-9 * (1.0 + row[a]);
    }
    let x = gauss(ata, atb)?;
    Some(x.iter().zip(&scale).map(|(v, sc)| v / sc).collect())
}

/// Solves `a · x = b` by Gaussian elimination with partial pivoting.
fn gauss(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (top, below) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (i, row) in below.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[col + 1 + i] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|c| a[row][c] * x[c]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(flops: f64, bytes: f64, transfer: f64) -> Cost {
        Cost {
            flops,
            bytes,
            transfer_bytes: transfer,
            memory_bytes: 0,
            launches: 1,
        }
    }

    #[test]
    fn recovers_a_known_linear_model() {
        let truth = LinearCost {
            overhead_s: 20e-6,
            per_flop_s: 1e-11,
            per_byte_s: 2e-10,
            per_transfer_byte_s: 5e-11,
            samples: 0,
            rel_rms_error: 0.0,
        };
        let samples: Vec<Sample> = [
            (1e3, 1e4, 1e4),
            (1e6, 5e5, 1e5),
            (1e9, 1e7, 4e6),
            (1e11, 3e8, 1e8),
            (5e8, 2e9, 8e8),
            (2e7, 1e6, 0.0),
        ]
        .iter()
        .map(|&(f, b, t)| {
            let c = cost(f, b, t);
            Sample {
                cost: c,
                seconds: truth.predict(&c),
            }
        })
        .collect();
        let fitted = fit(&samples, true).unwrap();
        for s in &samples {
            let rel = (fitted.predict(&s.cost) - s.seconds).abs() / s.seconds;
            assert!(rel < 1e-3, "{rel}: {fitted:?}");
        }
        assert!(fitted.rel_rms_error < 1e-3);
    }

    #[test]
    fn coefficients_stay_non_negative_and_degenerate_input_is_refused() {
        // Times that shrink with work would need a negative slope: it is dropped.
        let samples = vec![
            Sample {
                cost: cost(1e3, 1e3, 0.0),
                seconds: 2e-3,
            },
            Sample {
                cost: cost(1e6, 1e6, 0.0),
                seconds: 1e-3,
            },
        ];
        let f = fit(&samples, false).unwrap();
        assert!(f.overhead_s >= 0.0 && f.per_flop_s >= 0.0 && f.per_byte_s >= 0.0);
        assert!(fit(&[], false).is_none());
        assert!(
            fit(
                &[Sample {
                    cost: cost(1.0, 1.0, 0.0),
                    seconds: f64::NAN
                }],
                false
            )
            .is_none()
        );
    }

    #[test]
    fn the_default_model_parses_and_is_marked_uncalibrated() {
        let m = CalibratedCostModel::default_model();
        assert!(!m.file().calibrated);
        assert!(m.name().contains("not calibrated"));
        assert!(m.file().kinds.contains_key("matmul"));
        let text = serde_json::to_string(m.file()).unwrap();
        let back = CalibratedCostModel::from_json(&text).unwrap();
        // JSON keeps every number to within a unit in the last place.
        let probe = Cost {
            flops: 1e9,
            bytes: 1e8,
            transfer_bytes: 1e8,
            memory_bytes: 0,
            launches: 1,
        };
        for kind in m.file().kinds.keys() {
            for class in DeviceClass::ALL {
                let (a, b) = (
                    m.estimate(kind, &probe, class),
                    back.estimate(kind, &probe, class),
                );
                assert!(
                    (a - b).abs() <= 1e-12 * a.abs(),
                    "{kind} {class}: {a} vs {b}"
                );
            }
        }
        assert!(
            CalibratedCostModel::from_json(
                "{\"version\": 99, \"calibrated\": true, \"source\": \"\", \"kinds\": {}}"
            )
            .is_err()
        );
    }
}
