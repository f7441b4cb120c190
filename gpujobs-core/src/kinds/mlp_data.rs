//! The data of `mlp-train`: where samples come from (synthetic clusters or tensors),
//! held-out samples, the in-memory dataset, and the checks every label and feature
//! passes before training (labels are class indices, features are finite).

use crate::model::error::ValidationError;
use crate::model::synth::{derive_seed, splitmix64, uniform};
use crate::model::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Most classes a classifier may have: labels are range-checked against it before any
/// cast, and it bounds the output layer a job can ask for.
pub const MAX_CLASSES: usize = 1 << 20;

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

/// Held-out samples: `x` of shape `[samples, features]` (the training data's
/// features) and integer labels `y` of shape `[samples]` in `0..classes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpTestData {
    /// Features.
    pub x: Tensor,
    /// Labels.
    pub y: Tensor,
}

/// Training data in memory.
#[derive(Debug, Clone)]
pub struct MlpDataset {
    /// Row-major `samples × features`.
    pub x: crate::model::tensor::Values,
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

/// Whether `v` is a class index below `classes`, compared as floats before any cast
/// (a cast saturates or wraps, and would blame the wrong label).
pub(super) fn is_class(v: f32, classes: usize) -> bool {
    v.is_finite() && v.fract() == 0.0 && v >= 0.0 && f64::from(v) < classes as f64
}

/// Converts `f32` labels to classes, refusing non-integers and values out of range.
pub(super) fn labels_to_classes(
    labels: &[f32],
    classes: usize,
) -> Result<Vec<u32>, ValidationError> {
    labels
        .iter()
        .enumerate()
        .map(|(row, &v)| {
            if is_class(v, classes) {
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

/// The number of classes labels imply (the largest label + 1, at least 2), refusing the
/// first label that is not an integer class below [`MAX_CLASSES`].
pub fn infer_classes(labels: &[f32]) -> Result<usize, ValidationError> {
    let mut largest = 0u32;
    for (row, &v) in labels.iter().enumerate() {
        if !is_class(v, MAX_CLASSES) {
            return Err(ValidationError::LabelOutOfRange {
                label: v,
                row,
                classes: MAX_CLASSES,
            });
        }
        largest = largest.max(v as u32);
    }
    Ok((largest as usize + 1).max(2))
}

/// The first NaN or infinite feature, named by row and column.
pub(super) fn check_features_finite(
    x: &[f32],
    features: usize,
    name: &str,
) -> Result<(), ValidationError> {
    match x.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(ValidationError::NonFinite {
            name: name.into(),
            at: format!(
                "row {}, column {}",
                i / features.max(1),
                i % features.max(1)
            ),
            value: x[i],
            why: "features must be finite (one NaN makes every weight it reaches NaN)".into(),
        }),
    }
}

/// Samples around `classes` random centres in `[-1, 1)^features`, with uniform noise of
/// half-width 0.5 per feature; the label of sample `i` is drawn from the seed.
pub(super) fn synthetic_clusters(
    samples: usize,
    features: usize,
    classes: usize,
    seed: u64,
) -> MlpDataset {
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
