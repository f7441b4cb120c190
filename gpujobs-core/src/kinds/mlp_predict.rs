//! `mlp-predict`: a trained MLP ([`MlpModel`], what `mlp-train` produces) applied to
//! inputs: class probabilities (softmax of the last layer) and the predicted label of
//! every row (the first most probable class). Inference is the job most GPU clusters
//! run; the forward pass is the same dense layers and ReLUs `mlp-train` uses, in `f32`.

use super::check_tensor;
use super::mlp_model::MlpModel;
use crate::kinds::reference;
use crate::model::cost::Cost;
use crate::model::error::ValidationError;
use crate::model::job::{Check, Job, JobOutput};
use crate::model::limits::{Limits, f32_bytes};
use crate::model::synth::derive_seed;
use crate::model::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Rows the backends push through the layers at once: large enough for the GEMMs to
/// run at full speed, small enough that the activations of a wide model stay modest.
pub const PREDICT_BATCH: usize = 4096;
/// Largest forward work (multiply-adds) the check recomputes in `f64`.
const CHECK_MACS_LIMIT: f64 = 2e9;

/// Applies a model to inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpPredict {
    /// The trained model.
    pub model: MlpModel,
    /// Inputs, shape `[rows, features]` (features = the model's input width).
    pub x: Tensor,
}

/// Probabilities and labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpPredictOutput {
    /// Softmax probabilities, shape `[rows, classes]`.
    pub probs: Tensor,
    /// The predicted class of each row (the first most probable), shape `[rows]`,
    /// as `f32` integers.
    pub labels: Tensor,
}

impl JobOutput for MlpPredictOutput {
    fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        vec![&mut self.probs, &mut self.labels]
    }
    fn summary(&self) -> String {
        format!("probs: {:?}", self.probs.shape())
    }
}

impl MlpPredict {
    /// The kind's name.
    pub const KIND_NAME: &'static str = "mlp-predict";

    /// A synthetic model of widths `dims` applied to `rows` synthetic inputs.
    pub fn synthetic(rows: usize, dims: &[usize], seed: u64) -> Self {
        MlpPredict {
            model: MlpModel::synthetic(dims, derive_seed(seed, "model")),
            x: Tensor::synthetic(
                vec![rows, dims.first().copied().unwrap_or(1)],
                derive_seed(seed, "x"),
                -1.0,
                1.0,
            ),
        }
    }

    /// Number of input rows.
    pub fn rows(&self) -> usize {
        self.x.shape().first().copied().unwrap_or(0)
    }

    /// Multiply-adds of one row's forward pass.
    fn macs_per_row(&self) -> f64 {
        self.model
            .dims()
            .windows(2)
            .map(|d| (d[0] * d[1]) as f64)
            .sum()
    }
}

impl Job for MlpPredict {
    const KIND: &'static str = Self::KIND_NAME;
    type Output = MlpPredictOutput;

    fn validate(&self, limits: &Limits) -> Result<(), ValidationError> {
        let dims = self.model.validate(limits)?;
        check_tensor(&self.x, "x", 2)?;
        let (rows, features) = (self.x.shape()[0], self.x.shape()[1]);
        if features != dims[0] {
            return Err(ValidationError::ShapeMismatch(format!(
                "x has {features} features per row but the model takes {}",
                dims[0]
            )));
        }
        if let Some(values) = self.x.stored()
            && let Some(i) = values.iter().position(|v| !v.is_finite())
        {
            return Err(ValidationError::NonFinite {
                name: "x".into(),
                at: format!("row {}, column {}", i / features, i % features),
                value: values[i],
                why: "a NaN or inf input makes its row's probabilities NaN".into(),
            });
        }
        let classes = dims[dims.len() - 1] as u128;
        let widest = dims.iter().copied().max().unwrap_or(1) as u128;
        let batch = rows.min(PREDICT_BATCH) as u128;
        limits.check(
            f32_bytes(rows as u128 * (features as u128 + classes + 1) + 2 * batch * widest),
            "mlp-predict inputs, probabilities and activations",
        )
    }

    fn cost(&self) -> Cost {
        let rows = self.rows() as f64;
        let dims = self.model.dims();
        let classes = dims.last().copied().unwrap_or(0) as f64;
        let params: f64 = dims.windows(2).map(|d| (d[0] * d[1] + d[1]) as f64).sum();
        let out_bytes = 4.0 * rows * (classes + 1.0);
        let model_bytes: f64 = self
            .model
            .weights
            .iter()
            .chain(&self.model.biases)
            .map(Tensor::upload_bytes)
            .sum();
        let batches = (rows / PREDICT_BATCH as f64).ceil().max(1.0);
        Cost {
            flops: 2.0 * self.macs_per_row() * rows,
            bytes: 4.0 * rows * dims.iter().sum::<usize>() as f64 + 4.0 * params * batches,
            transfer_bytes: self.x.upload_bytes() + model_bytes + out_bytes,
            memory_bytes: (4.0 * (rows * dims.first().copied().unwrap_or(0) as f64 + params)
                + out_bytes) as u64,
            launches: (batches * (2.0 * dims.len() as f64)) as u32,
        }
    }

    fn size_label(&self) -> String {
        let dims: Vec<String> = self.model.dims().iter().map(|d| d.to_string()).collect();
        format!("{}x[{}]", self.rows(), dims.join("→"))
    }

    fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        let mut t = vec![&mut self.x];
        t.extend(self.model.weights.iter_mut());
        t.extend(self.model.biases.iter_mut());
        t
    }

    fn calibration_samples(quick: bool) -> Vec<Self> {
        let sizes: &[(usize, usize, usize)] = if quick {
            &[(1024, 64, 128), (8192, 128, 256), (16384, 256, 512)]
        } else {
            &[
                (1024, 64, 128),
                (8192, 128, 256),
                (32768, 256, 512),
                (65536, 512, 1024),
            ]
        };
        sizes
            .iter()
            .map(|&(rows, features, hidden)| {
                let dims = [features, hidden, 10];
                let model = MlpModel::synthetic(&dims, 1);
                // Real (not synthetic) parameters and inputs, so a GPU pays for uploads.
                let real = |t: &Tensor, seed| super::real(t.shape().to_vec(), seed, -0.1, 0.1);
                MlpPredict {
                    model: MlpModel {
                        weights: model.weights.iter().map(|w| real(w, 3)).collect(),
                        biases: model.biases.iter().map(|b| real(b, 4)).collect(),
                    },
                    x: super::real(vec![rows, features], 5, -1.0, 1.0),
                }
            })
            .collect()
    }

    fn check(&self, output: &MlpPredictOutput) -> Option<Check> {
        let macs = self.macs_per_row() * self.rows() as f64;
        if macs > CHECK_MACS_LIMIT {
            return Some(Check::skipped(format!(
                "the f64 forward pass would take {macs:.1e} multiply-adds, above {CHECK_MACS_LIMIT:.0e}"
            )));
        }
        let dims = self.model.dims();
        let classes = *dims.last()?;
        let probs = output.probs.values().ok()?;
        let labels = output.labels.values().ok()?;
        let rows = self.rows();
        if probs.len() != rows * classes || labels.len() != rows {
            return Some(Check::measured(f64::INFINITY, 1e-5, "output length"));
        }
        let (w, b) = self.model.values().ok()?;
        let wide = |vs: Vec<crate::model::tensor::Values>| -> Vec<Vec<f64>> {
            vs.iter()
                .map(|v| v.iter().map(|&x| f64::from(x)).collect())
                .collect()
        };
        let (w, b) = (wide(w), wide(b));
        let x: Vec<f64> = self
            .x
            .values()
            .ok()?
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let logits = reference::mlp_forward(&dims, &w, &b, &x, rows);
        let mut error = 0f64;
        for r in 0..rows {
            let p = reference::softmax(&logits[r * classes..(r + 1) * classes]);
            let got = &probs[r * classes..(r + 1) * classes];
            for (&g, &e) in got.iter().zip(&p) {
                let d = (f64::from(g) - e).abs();
                error = if d.is_nan() {
                    f64::INFINITY
                } else {
                    error.max(d)
                };
            }
            // The label must be a most probable class of the output it came with
            // (near-ties may go either way between f32 and f64).
            let label = labels[r];
            let best = got.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let ok = label.fract() == 0.0
                && label >= 0.0
                && (label as usize) < classes
                && got[label as usize] == best;
            if !ok {
                return Some(Check::measured(
                    f64::INFINITY,
                    1e-5,
                    "label vs probabilities",
                ));
            }
        }
        Some(Check::measured(error, 1e-5, "max abs prob"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_feature_count_and_non_finite_inputs_are_refused() {
        let mut job = MlpPredict::synthetic(10, &[4, 8, 3], 1);
        job.validate(&Limits::detect()).unwrap();
        job.x = Tensor::synthetic(vec![10, 5], 1, 0.0, 1.0);
        let err = job.validate(&Limits::detect()).unwrap_err().to_string();
        assert!(
            err.contains("5 features per row but the model takes 4"),
            "{err}"
        );
        let mut x = vec![0.5f32; 8];
        x[6] = f32::INFINITY;
        job.x = Tensor::from_values(vec![2, 4], x).unwrap();
        let err = job.validate(&Limits::detect()).unwrap_err().to_string();
        assert!(err.contains("row 1, column 2"), "{err}");
    }

    #[test]
    fn absurd_sizes_are_refused_before_allocating() {
        let job = MlpPredict::synthetic(usize::MAX / 8, &[4, 8, 3], 1);
        assert!(job.validate(&Limits::detect()).is_err());
    }
}
