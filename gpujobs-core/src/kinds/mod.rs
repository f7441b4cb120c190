//! The built-in job kinds, as data: inputs, parameters, validation, cost and a check
//! against the reference implementation ([`reference`](mod@reference), plain f64 code). Backends
//! implement the computation. [`filters`] derives Gaussian kernels as OpenCV does.

pub mod filters;
pub mod image_filter;
pub mod matmul;
pub mod mlp_data;
pub mod mlp_model;
pub mod mlp_predict;
pub mod mlp_train;
pub mod reference;
pub mod vector_add;

pub use image_filter::{FilterOp, ImageFilter, ImageFilterOutput};
pub use matmul::{Matmul, MatmulOutput};
pub use mlp_model::MlpModel;
pub use mlp_predict::{MlpPredict, MlpPredictOutput};
pub use mlp_train::{
    EpochStats, LayerParams, MlpData, MlpDataset, MlpTestData, MlpTrain, MlpTrainOutput,
};
pub use vector_add::{VectorAdd, VectorAddOutput};

use crate::model::error::ValidationError;
use crate::model::tensor::Tensor;

/// The names of the built-in kinds.
pub const BUILTIN_KINDS: [&str; 5] = [
    VectorAdd::KIND_NAME,
    Matmul::KIND_NAME,
    ImageFilter::KIND_NAME,
    MlpTrain::KIND_NAME,
    MlpPredict::KIND_NAME,
];

/// Checks a tensor's shape and data length together; returns its element count.
pub(crate) fn check_tensor(t: &Tensor, name: &str, rank: usize) -> Result<usize, ValidationError> {
    let n = t.check_shape(name, rank)?;
    t.check_length(name)?;
    Ok(n)
}

/// A tensor of real (not synthetic) uniform values, for calibration ladders: real
/// inputs are what makes a GPU pay for its transfers.
pub(crate) fn real(shape: Vec<usize>, seed: u64, lo: f32, hi: f32) -> Tensor {
    let t = Tensor::synthetic(shape.clone(), seed, lo, hi);
    let values = t.values().map(|v| v.to_vec()).unwrap_or_default();
    Tensor::from_values(shape, values).unwrap_or(t)
}
