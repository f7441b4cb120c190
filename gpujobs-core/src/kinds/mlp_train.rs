//! `mlp-train`: trains a multi-layer perceptron classifier with minibatch SGD and
//! reports loss and accuracy per epoch.
//!
//! The algorithm, which every backend and the reference follow step for step:
//! 1. Layers `dims = [features, hidden.., classes]`; layer `l` has weights `W_l`
//!    (row-major `dims[l] × dims[l+1]`, He-uniform in `±√(6 / dims[l])` from the stream
//!    `derive_seed(seed, "w{l}")`) and zero biases.
//! 2. Each epoch `e` visits the samples in the order `permutation(samples,
//!    derive_seed(seed, "epoch{e}"))`, in minibatches of `batch` (the last may be smaller).
//! 3. Forward: `H_{l+1} = ReLU(H_l W_l + b_l)` for hidden layers; the last layer gives
//!    logits without ReLU. Loss is softmax cross-entropy, averaged over the batch.
//! 4. Backward: `G = (softmax − onehot) / batch`; `∇W_l = H_lᵀ G`, `∇b_l = Σ_rows G`,
//!    `G ← (G W_lᵀ) ⊙ [H_l > 0]`; then `W_l −= lr ∇W_l`, `b_l −= lr ∇b_l`.
//! 5. The epoch's loss and accuracy are the mean loss and the share of correct argmax
//!    predictions over the forward passes of that epoch (before each batch's update).

use super::check_tensor;
pub use super::mlp_data::{MAX_CLASSES, MlpData, MlpDataset, MlpTestData, infer_classes};
use super::mlp_data::{check_features_finite, labels_to_classes, synthetic_clusters};
use crate::kinds::reference;
use crate::model::cost::Cost;
use crate::model::error::{JobError, ValidationError};
use crate::model::fingerprint::Fingerprint;
use crate::model::job::{Check, Job, JobOutput};
use crate::model::limits::{Limits, f32_bytes};
use crate::model::synth::{derive_seed, permutation, uniform};
use crate::model::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Largest total work (multiply-adds over all epochs) the check recomputes in `f64`.
const CHECK_MACS_LIMIT: f64 = 4e9;

/// Trains an MLP classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpTrain {
    /// Training data.
    pub data: MlpData,
    /// Number of classes (output width), at least 2.
    pub classes: usize,
    /// Widths of the hidden layers.
    pub hidden: Vec<usize>,
    /// Passes over the data.
    pub epochs: u32,
    /// Minibatch size.
    pub batch: usize,
    /// SGD learning rate.
    pub lr: f32,
    /// Seed of the initial weights and the shuffles.
    pub seed: u64,
    /// Held-out data, evaluated after every epoch (loss and accuracy; never trained
    /// on). Absent: only the training figures are reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<MlpTestData>,
}

/// Loss and accuracy of one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// Epoch index from 0.
    pub epoch: u32,
    /// Mean softmax cross-entropy.
    pub loss: f64,
    /// Share of correctly classified samples.
    pub accuracy: f64,
    /// Mean softmax cross-entropy on the held-out data, after the epoch's updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_loss: Option<f64>,
    /// Share of held-out samples classified correctly, after the epoch's updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<f64>,
}

/// A layer's parameters as plain vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerParams {
    /// Row-major `in × out`.
    pub w: Vec<f32>,
    /// `out` biases.
    pub b: Vec<f32>,
}

/// What training produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpTrainOutput {
    /// Loss and accuracy per epoch.
    pub epochs: Vec<EpochStats>,
    /// Final weights per layer, shape `[in, out]`.
    pub weights: Vec<Tensor>,
    /// Final biases per layer, shape `[out]`.
    pub biases: Vec<Tensor>,
}

impl JobOutput for MlpTrainOutput {
    fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        self.weights
            .iter_mut()
            .chain(self.biases.iter_mut())
            .collect()
    }
    fn summary(&self) -> String {
        match self.epochs.last() {
            Some(e) => format!(
                "{} epochs, loss {:.4}, accuracy {:.1}%",
                self.epochs.len(),
                e.loss,
                100.0 * e.accuracy
            ),
            None => "no epochs".into(),
        }
    }
    fn fingerprint(&mut self) -> Fingerprint {
        let curve: Vec<f32> = self
            .epochs
            .iter()
            .flat_map(|e| [e.loss as f32, e.accuracy as f32])
            .collect();
        Fingerprint::of(&curve)
    }
}

impl MlpTrainOutput {
    /// The trained model, for `mlp-predict` or to save (the tensors are shared, not
    /// copied).
    pub fn model(&self) -> super::MlpModel {
        super::MlpModel {
            weights: self.weights.clone(),
            biases: self.biases.clone(),
        }
    }
}

impl MlpTrain {
    /// The kind's name.
    pub const KIND_NAME: &'static str = "mlp-train";

    /// A synthetic problem with one hidden layer.
    pub fn synthetic(
        samples: usize,
        features: usize,
        classes: usize,
        hidden: usize,
        seed: u64,
    ) -> Self {
        MlpTrain {
            data: MlpData::Synthetic {
                samples,
                features,
                seed: derive_seed(seed, "data"),
            },
            classes,
            hidden: vec![hidden],
            epochs: 5,
            batch: 128,
            lr: 0.1,
            seed,
            test: None,
        }
    }

    /// Number of samples.
    pub fn samples(&self) -> usize {
        match &self.data {
            MlpData::Synthetic { samples, .. } => *samples,
            MlpData::Tensors { x, .. } => x.shape().first().copied().unwrap_or(0),
        }
    }

    /// Features per sample.
    pub fn features(&self) -> usize {
        match &self.data {
            MlpData::Synthetic { features, .. } => *features,
            MlpData::Tensors { x, .. } => x.shape().get(1).copied().unwrap_or(0),
        }
    }

    /// Layer widths from input to output.
    pub fn dims(&self) -> Vec<usize> {
        std::iter::once(self.features())
            .chain(self.hidden.iter().copied())
            .chain([self.classes])
            .collect()
    }

    /// Multiply-adds of one forward pass over one sample.
    fn macs_per_sample(&self) -> f64 {
        self.dims().windows(2).map(|d| (d[0] * d[1]) as f64).sum()
    }

    /// The training data in memory (generated for synthetic data).
    pub fn dataset(&self) -> Result<MlpDataset, ValidationError> {
        match &self.data {
            MlpData::Synthetic {
                samples,
                features,
                seed,
            } => Ok(synthetic_clusters(*samples, *features, self.classes, *seed)),
            MlpData::Tensors { x, y } => {
                let (samples, features) = (self.samples(), self.features());
                let labels = y.values()?;
                let y = labels_to_classes(&labels, self.classes)?;
                Ok(MlpDataset {
                    x: x.values()?,
                    y,
                    samples,
                    features,
                })
            }
        }
    }

    /// The held-out data in memory, when the job has any.
    pub fn test_dataset(&self) -> Result<Option<MlpDataset>, ValidationError> {
        let Some(test) = &self.test else {
            return Ok(None);
        };
        let labels = test.y.values()?;
        Ok(Some(MlpDataset {
            x: test.x.values()?,
            y: labels_to_classes(&labels, self.classes)?,
            samples: test.x.shape().first().copied().unwrap_or(0),
            features: test.x.shape().get(1).copied().unwrap_or(0),
        }))
    }

    /// The initial parameters of every layer.
    pub fn initial_params(&self) -> Vec<LayerParams> {
        self.dims()
            .windows(2)
            .enumerate()
            .map(|(l, d)| {
                let limit = (6.0 / d[0] as f64).sqrt() as f32;
                let s = derive_seed(self.seed, &format!("w{l}"));
                let w = (0..(d[0] * d[1]) as u64)
                    .map(|i| uniform(s, i, -limit, limit))
                    .collect();
                LayerParams {
                    w,
                    b: vec![0.0; d[1]],
                }
            })
            .collect()
    }

    /// Fails the job once an epoch's loss is no longer a number: every later epoch
    /// would be NaN too, and a NaN loss cannot be reported in JSON. Backends call it
    /// after each epoch; the message names the epoch, says what to change, and keeps
    /// the last finite epochs' figures.
    pub fn check_diverged(&self, epochs: &[EpochStats]) -> Result<(), JobError> {
        let Some(bad) = epochs.iter().find(|e| !e.loss.is_finite()) else {
            return Ok(());
        };
        let finite = &epochs[..epochs.len() - 1];
        let shown: Vec<String> = finite
            .iter()
            .rev()
            .take(3)
            .rev()
            .map(|e| {
                format!(
                    "epoch {}: loss {:.4}, accuracy {:.1}%",
                    e.epoch,
                    e.loss,
                    100.0 * e.accuracy
                )
            })
            .collect();
        let before = if shown.is_empty() {
            "no epoch finished with a finite loss".to_string()
        } else {
            format!("before it, {}", shown.join("; "))
        };
        Err(JobError::permanent(format!(
            "training diverged at epoch {} (loss became {}): lower the learning rate \
             (--lr, now {}); {before}",
            bad.epoch,
            if bad.loss.is_nan() { "NaN" } else { "inf" },
            self.lr
        )))
    }

    /// The order in which epoch `epoch` visits the samples.
    pub fn epoch_order(&self, epoch: u32) -> Vec<u32> {
        permutation(
            self.samples(),
            derive_seed(self.seed, &format!("epoch{epoch}")),
        )
    }
}

impl Job for MlpTrain {
    const KIND: &'static str = Self::KIND_NAME;
    type Output = MlpTrainOutput;

    fn validate(&self, limits: &Limits) -> Result<(), ValidationError> {
        let invalid = |name: &str, reason: String| {
            Err(ValidationError::InvalidParameter {
                name: name.into(),
                reason,
            })
        };
        if !(2..=MAX_CLASSES).contains(&self.classes) {
            return invalid(
                "classes",
                format!("need 2 to {MAX_CLASSES}, got {}", self.classes),
            );
        }
        if self.hidden.contains(&0) || self.hidden.len() > 16 {
            return invalid(
                "hidden",
                format!("need 0 to 16 layers of width >= 1, got {:?}", self.hidden),
            );
        }
        if self.epochs == 0 || self.epochs > 100_000 {
            return invalid(
                "epochs",
                format!("must be in 1..=100000, got {}", self.epochs),
            );
        }
        if self.batch == 0 {
            return invalid("batch", "must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return invalid("lr", format!("must be a positive number, got {}", self.lr));
        }
        match &self.data {
            MlpData::Synthetic {
                samples, features, ..
            } => {
                if *samples == 0 || *features == 0 {
                    return Err(ValidationError::Empty(format!(
                        "synthetic data of {samples} samples x {features} features"
                    )));
                }
            }
            MlpData::Tensors { x, y } => {
                check_tensor(x, "x", 2)?;
                check_tensor(y, "y", 1)?;
                if x.shape()[0] != y.shape()[0] {
                    return Err(ValidationError::ShapeMismatch(format!(
                        "x has {} samples but y has {} labels",
                        x.shape()[0],
                        y.shape()[0]
                    )));
                }
                if let Some(labels) = y.stored() {
                    labels_to_classes(labels, self.classes)?;
                }
                if let Some(values) = x.stored() {
                    check_features_finite(values, x.shape()[1], "x")?;
                }
            }
        }
        if let Some(test) = &self.test {
            check_tensor(&test.x, "test x", 2)?;
            check_tensor(&test.y, "test y", 1)?;
            if test.x.shape()[1] != self.features() {
                return Err(ValidationError::ShapeMismatch(format!(
                    "test x has {} features but the training data has {}",
                    test.x.shape()[1],
                    self.features()
                )));
            }
            if test.x.shape()[0] != test.y.shape()[0] {
                return Err(ValidationError::ShapeMismatch(format!(
                    "test x has {} samples but test y has {} labels",
                    test.x.shape()[0],
                    test.y.shape()[0]
                )));
            }
            if let Some(labels) = test.y.stored() {
                labels_to_classes(labels, self.classes).map_err(|e| match e {
                    ValidationError::LabelOutOfRange {
                        label,
                        row,
                        classes,
                    } => ValidationError::InvalidParameter {
                        name: "test y".into(),
                        reason: format!(
                            "label {label} at row {row} is not an integer class in 0..{classes}"
                        ),
                    },
                    other => other,
                })?;
            }
            if let Some(values) = test.x.stored() {
                check_features_finite(values, test.x.shape()[1], "test x")?;
            }
        }
        let dims: Vec<u128> = self.dims().iter().map(|&d| d as u128).collect();
        let params: u128 = dims.windows(2).map(|d| d[0] * d[1] + d[1]).sum();
        let acts: u128 = dims.iter().sum::<u128>() * (self.batch.min(self.samples()) as u128);
        let test_samples = self.test.as_ref().map_or(0, |t| t.x.shape()[0]) as u128;
        let data = (self.samples() as u128 + test_samples) * (dims[0] + 1);
        limits.check(
            f32_bytes(data + 3 * params + 3 * acts),
            "mlp-train data, parameters and activations",
        )
    }

    fn cost(&self) -> Cost {
        let samples = self.samples() as f64;
        let epochs = f64::from(self.epochs);
        let macs = self.macs_per_sample();
        let params: f64 = self
            .dims()
            .windows(2)
            .map(|d| (d[0] * d[1] + d[1]) as f64)
            .sum();
        let batches = (samples / self.batch.max(1) as f64).ceil() * epochs;
        let test_samples = self.test.as_ref().map_or(0, |t| t.x.shape()[0]) as f64;
        let data_bytes = 4.0 * (samples + test_samples) * (self.features() as f64 + 1.0);
        Cost {
            // forward (1×) and backward (2×) multiply-adds, 2 flops each, and a forward
            // pass over the held-out data per epoch
            flops: (6.0 * samples + 2.0 * test_samples) * macs * epochs,
            bytes: 4.0 * params * 3.0 * batches + data_bytes * epochs,
            // The data always goes up (synthetic clusters are generated on the host);
            // the initial weights go up and the trained ones come back.
            transfer_bytes: data_bytes + 8.0 * params,
            memory_bytes: (data_bytes + 12.0 * params) as u64,
            launches: (batches * 4.0 * self.dims().len() as f64) as u32,
        }
    }

    fn size_label(&self) -> String {
        let hidden: Vec<String> = self.hidden.iter().map(|h| h.to_string()).collect();
        format!(
            "{}x{}→[{}]→{} e{}",
            self.samples(),
            self.features(),
            hidden.join(","),
            self.classes,
            self.epochs
        )
    }

    fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        let mut tensors = match &mut self.data {
            MlpData::Synthetic { .. } => Vec::new(),
            MlpData::Tensors { x, y } => vec![x, y],
        };
        if let Some(test) = &mut self.test {
            tensors.extend([&mut test.x, &mut test.y]);
        }
        tensors
    }

    fn calibration_samples(quick: bool) -> Vec<Self> {
        let sizes: &[(usize, usize, usize)] = if quick {
            &[(256, 16, 32), (1024, 32, 64), (2048, 64, 128)]
        } else {
            &[
                (256, 16, 32),
                (1024, 32, 64),
                (4096, 64, 128),
                (8192, 128, 256),
            ]
        };
        sizes
            .iter()
            .map(|&(samples, features, hidden)| {
                let mut j = MlpTrain::synthetic(samples, features, 10, hidden, 1);
                j.epochs = 2;
                j.batch = 128;
                j
            })
            .collect()
    }

    fn check(&self, output: &MlpTrainOutput) -> Option<Check> {
        let macs = self.macs_per_sample() * self.samples() as f64 * f64::from(self.epochs) * 3.0;
        if macs > CHECK_MACS_LIMIT {
            return Some(Check::skipped(format!(
                "the f64 reference would take {macs:.1e} multiply-adds, above {CHECK_MACS_LIMIT:.0e}; \
                 fewer samples, epochs or hidden units bring it under"
            )));
        }
        let data = self.dataset().ok()?;
        let test = self.test_dataset().ok()?;
        let reference = reference::mlp_train(self, &data, test.as_ref());
        if output.epochs.len() != reference.epochs.len() {
            return Some(Check::measured(f64::INFINITY, 1e-3, "epoch count"));
        }
        let error = output
            .epochs
            .iter()
            .zip(&reference.epochs)
            .flat_map(|(o, r)| {
                let test = match (o.test_loss, r.test_loss) {
                    (Some(a), Some(b)) => (a - b).abs(),
                    (None, None) => 0.0,
                    _ => f64::INFINITY,
                };
                [(o.loss - r.loss).abs(), test]
            })
            .fold(
                0.0,
                |m: f64, d| if d.is_nan() { f64::INFINITY } else { m.max(d) },
            );
        Some(Check::measured(error, 1e-3, "max loss diff"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensors(x: Vec<f32>, features: usize, y: Vec<f32>) -> MlpTrain {
        let mut job = MlpTrain::synthetic(1, features, 3, 8, 1);
        let n = y.len();
        job.data = MlpData::Tensors {
            x: Tensor::from_values(vec![n, features], x).unwrap(),
            y: Tensor::from_values(vec![n], y).unwrap(),
        };
        job
    }

    #[test]
    fn non_finite_features_are_refused_with_row_and_column() {
        let l = Limits::with_max_bytes(1 << 30);
        let mut x = vec![0.5f32; 12];
        x[7] = f32::INFINITY;
        let err = tensors(x, 3, vec![0.0, 1.0, 2.0, 0.0])
            .validate(&l)
            .unwrap_err();
        assert!(
            err.to_string().contains("x holds inf at row 2, column 1"),
            "{err}"
        );
        let mut job = tensors(vec![0.5; 6], 3, vec![0.0, 1.0]);
        let mut tx = vec![0.0f32; 6];
        tx[4] = f32::NAN;
        job.test = Some(MlpTestData {
            x: Tensor::from_values(vec![2, 3], tx).unwrap(),
            y: Tensor::from_values(vec![2], vec![0.0, 1.0]).unwrap(),
        });
        let err = job.validate(&l).unwrap_err();
        assert!(
            err.to_string()
                .contains("test x holds NaN at row 1, column 1"),
            "{err}"
        );
    }

    #[test]
    fn labels_are_range_checked_before_any_cast() {
        let err = infer_classes(&[0.0, 1.0, 2.0, 3e38]).unwrap_err();
        assert!(err.to_string().contains("at row 3"), "{err}");
        assert!(matches!(
            err,
            ValidationError::LabelOutOfRange { row: 3, .. }
        ));
        assert!(infer_classes(&[0.0, f32::NAN]).is_err());
        assert!(infer_classes(&[0.0, -1.0]).is_err());
        assert!(infer_classes(&[0.0, 1.5]).is_err());
        assert_eq!(infer_classes(&[0.0, 4.0, 1.0]).unwrap(), 5);
        assert_eq!(infer_classes(&[0.0, 0.0]).unwrap(), 2);
        let l = Limits::with_max_bytes(1 << 30);
        let err = tensors(vec![0.5; 6], 3, vec![0.0, 1e30])
            .validate(&l)
            .unwrap_err();
        assert!(
            matches!(err, ValidationError::LabelOutOfRange { row: 1, .. }),
            "{err}"
        );
        let mut job = tensors(vec![0.5; 6], 3, vec![0.0, 1.0]);
        job.classes = MAX_CLASSES + 1;
        assert!(job.validate(&l).is_err());
    }

    #[test]
    fn divergence_names_the_epoch_and_keeps_the_finite_ones() {
        let job = MlpTrain::synthetic(10, 3, 2, 4, 1);
        let e = |epoch, loss| EpochStats {
            epoch,
            loss,
            accuracy: 0.5,
            test_loss: None,
            test_accuracy: None,
        };
        assert!(job.check_diverged(&[e(0, 0.7), e(1, 0.6)]).is_ok());
        let err = job
            .check_diverged(&[e(0, 0.7), e(1, 0.6), e(2, f64::INFINITY)])
            .unwrap_err();
        assert_eq!(err.class, crate::ErrorClass::Permanent);
        assert!(
            err.message
                .contains("diverged at epoch 2 (loss became inf)"),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("epoch 1: loss 0.6000"),
            "{}",
            err.message
        );
        let err = job.check_diverged(&[e(0, f64::NAN)]).unwrap_err();
        assert!(err.message.contains("loss became NaN"), "{}", err.message);
    }

    #[test]
    fn a_check_too_large_to_make_says_it_was_skipped() {
        let mut job = MlpTrain::synthetic(100_000, 784, 10, 1024, 1);
        job.epochs = 10;
        let out = MlpTrainOutput {
            epochs: Vec::new(),
            weights: Vec::new(),
            biases: Vec::new(),
        };
        let c = job.check(&out).unwrap();
        assert!(c.passed());
        assert!(
            c.skipped.as_deref().unwrap().contains("multiply-adds"),
            "{c}"
        );
        assert!(c.to_string().starts_with("skipped ("), "{c}");
    }

    #[test]
    fn held_out_data_must_match_the_training_features() {
        let l = Limits::with_max_bytes(1 << 30);
        let mut job = tensors(vec![0.5; 6], 3, vec![0.0, 1.0]);
        job.test = Some(MlpTestData {
            x: Tensor::from_values(vec![2, 4], vec![0.0; 8]).unwrap(),
            y: Tensor::from_values(vec![2], vec![0.0, 1.0]).unwrap(),
        });
        let err = job.validate(&l).unwrap_err().to_string();
        assert!(
            err.contains("test x has 4 features but the training data has 3"),
            "{err}"
        );
        job.test = Some(MlpTestData {
            x: Tensor::from_values(vec![2, 3], vec![0.0; 6]).unwrap(),
            y: Tensor::from_values(vec![2], vec![0.0, 7.0]).unwrap(),
        });
        let err = job.validate(&l).unwrap_err().to_string();
        assert!(
            err.contains("test y") && err.contains("label 7 at row 1"),
            "{err}"
        );
    }

    #[test]
    fn validation() {
        let l = Limits::with_max_bytes(1 << 30);
        let ok = MlpTrain::synthetic(100, 4, 3, 8, 1);
        assert!(ok.validate(&l).is_ok());
        let mut bad = ok.clone();
        bad.lr = f32::NAN;
        assert!(bad.validate(&l).is_err());
        let mut bad = ok.clone();
        bad.classes = 1;
        assert!(bad.validate(&l).is_err());
        let x = Tensor::from_values(vec![3, 2], vec![0.0; 6]).unwrap();
        let y = Tensor::from_values(vec![3], vec![0.0, 1.0, 3.0]).unwrap();
        let mut real = ok.clone();
        real.data = MlpData::Tensors { x, y };
        let e = real.validate(&l).unwrap_err();
        assert!(
            matches!(e, ValidationError::LabelOutOfRange { row: 2, .. }),
            "{e}"
        );
    }

    #[test]
    fn synthetic_dataset_is_deterministic() {
        let j = MlpTrain::synthetic(50, 3, 4, 8, 9);
        let (a, b) = (j.dataset().unwrap(), j.dataset().unwrap());
        assert_eq!(a.x, b.x);
        assert_eq!(a.y, b.y);
        assert!(a.y.iter().all(|&c| c < 4));
        assert_eq!(j.initial_params(), j.initial_params());
    }

    #[test]
    fn reference_training_learns() {
        let mut j = MlpTrain::synthetic(512, 10, 4, 32, 3);
        j.batch = 32;
        j.epochs = 4;
        let data = j.dataset().unwrap();
        let r = reference::mlp_train(&j, &data, None);
        assert!(r.epochs[3].loss < r.epochs[0].loss, "{:?}", r.epochs);
        assert!(r.epochs[3].accuracy >= 0.9, "{:?}", r.epochs);
    }
}
