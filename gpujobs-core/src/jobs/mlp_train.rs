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
use crate::cost::Cost;
use crate::error::ValidationError;
use crate::fingerprint::Fingerprint;
use crate::job::{Check, Job, JobOutput};
use crate::limits::{Limits, f32_bytes};
use crate::reference;
use crate::synth::{derive_seed, permutation, splitmix64, uniform};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Largest total work (multiply-adds over all epochs) the check recomputes in `f64`.
const CHECK_MACS_LIMIT: f64 = 4e9;

/// Where the training data comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "kebab-case", deny_unknown_fields)]
pub enum MlpData {
    /// Gaussian-like clusters around random class centres; separable enough that a
    /// small network reaches high training accuracy within a few epochs.
    Synthetic {
        /// Number of samples.
        samples: usize,
        /// Features per sample.
        features: usize,
        /// Data seed.
        seed: u64,
    },
    /// Real data: `x` of shape `[samples, features]` and integer class labels `y` of
    /// shape `[samples]` stored as `f32`.
    Tensors {
        /// Features.
        x: Tensor,
        /// Labels in `0..classes`.
        y: Tensor,
    },
}

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
}

/// A layer's parameters as plain vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerParams {
    /// Row-major `in × out`.
    pub w: Vec<f32>,
    /// `out` biases.
    pub b: Vec<f32>,
}

/// Training data in memory.
#[derive(Debug, Clone)]
pub struct MlpDataset {
    /// Row-major `samples × features`.
    pub x: crate::tensor::Values,
    /// Class of each sample.
    pub y: Vec<u32>,
    /// Number of samples.
    pub samples: usize,
    /// Features per sample.
    pub features: usize,
}

impl MlpDataset {
    /// The features of sample `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.features..(i + 1) * self.features]
    }
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
    fn fingerprint(&self) -> Fingerprint {
        let curve: Vec<f32> = self
            .epochs
            .iter()
            .flat_map(|e| [e.loss as f32, e.accuracy as f32])
            .collect();
        Fingerprint::of(&curve)
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

    /// The order in which epoch `epoch` visits the samples.
    pub fn epoch_order(&self, epoch: u32) -> Vec<u32> {
        permutation(
            self.samples(),
            derive_seed(self.seed, &format!("epoch{epoch}")),
        )
    }
}

/// Converts `f32` labels to classes, refusing non-integers and values out of range.
fn labels_to_classes(labels: &[f32], classes: usize) -> Result<Vec<u32>, ValidationError> {
    labels
        .iter()
        .enumerate()
        .map(|(row, &v)| {
            if v.fract() == 0.0 && v >= 0.0 && (v as usize) < classes {
                Ok(v as u32)
            } else {
                Err(ValidationError::LabelOutOfRange {
                    label: v,
                    row,
                    classes,
                })
            }
        })
        .collect()
}

/// Samples around `classes` random centres in `[-1, 1)^features`, with uniform noise of
/// half-width 0.5 per feature; the label of sample `i` is drawn from the seed.
fn synthetic_clusters(samples: usize, features: usize, classes: usize, seed: u64) -> MlpDataset {
    let cs = derive_seed(seed, "centres");
    let ns = derive_seed(seed, "noise");
    let ls = derive_seed(seed, "labels");
    let y: Vec<u32> = (0..samples as u64)
        .map(|i| (splitmix64(ls.wrapping_add(i)) % classes as u64) as u32)
        .collect();
    let mut x = vec![0f32; samples * features];
    for (i, row) in x.chunks_mut(features.max(1)).enumerate() {
        let c = y[i] as u64;
        for (j, v) in row.iter_mut().enumerate() {
            let centre = uniform(cs, c * features as u64 + j as u64, -1.0, 1.0);
            *v = centre + uniform(ns, (i * features + j) as u64, -0.5, 0.5);
        }
    }
    MlpDataset {
        x: x.into(),
        y,
        samples,
        features,
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
        if self.classes < 2 {
            return invalid("classes", format!("need at least 2, got {}", self.classes));
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
                if let Ok(labels) = y.values() {
                    labels_to_classes(&labels, self.classes)?;
                }
            }
        }
        let dims: Vec<u128> = self.dims().iter().map(|&d| d as u128).collect();
        let params: u128 = dims.windows(2).map(|d| d[0] * d[1] + d[1]).sum();
        let acts: u128 = dims.iter().sum::<u128>() * (self.batch.min(self.samples()) as u128);
        let data = (self.samples() as u128) * (dims[0] + 1);
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
        let data_bytes = 4.0 * samples * (self.features() as f64 + 1.0);
        Cost {
            // forward (1×) and backward (2×) multiply-adds, 2 flops each
            flops: 6.0 * macs * samples * epochs,
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
        match &mut self.data {
            MlpData::Synthetic { .. } => Vec::new(),
            MlpData::Tensors { x, y } => vec![x, y],
        }
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
        if self.macs_per_sample() * self.samples() as f64 * f64::from(self.epochs) * 3.0
            > CHECK_MACS_LIMIT
        {
            return None;
        }
        let data = self.dataset().ok()?;
        let reference = reference::mlp_train(self, &data);
        if output.epochs.len() != reference.epochs.len() {
            return Some(Check {
                error: f64::INFINITY,
                tolerance: 1e-3,
                metric: "epoch count".into(),
            });
        }
        let error = output
            .epochs
            .iter()
            .zip(&reference.epochs)
            .map(|(o, r)| (o.loss - r.loss).abs())
            .fold(
                0.0,
                |m: f64, d| if d.is_nan() { f64::INFINITY } else { m.max(d) },
            );
        Some(Check {
            error,
            tolerance: 1e-3,
            metric: "max loss diff".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let r = reference::mlp_train(&j, &data);
        assert!(r.epochs[3].loss < r.epochs[0].loss, "{:?}", r.epochs);
        assert!(r.epochs[3].accuracy >= 0.9, "{:?}", r.epochs);
    }
}
