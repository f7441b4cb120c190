//! The CPU kernels as plain functions on slices, for benchmarks and for use without a
//! queue. Inputs are row-major. The plain forms return freshly allocated vectors (as
//! numpy does); the `_into` forms write into a buffer the caller owns (say, one from a
//! [`gpujobs_core::BufferPool`]), overwriting every value.

pub use crate::image_filter::{
    gaussian_blur, gaussian_blur_into, sobel_magnitude, sobel_magnitude_into,
};
pub use crate::matmul::{matmul, matmul_into};
pub use crate::mlp_predict::mlp_predict;
pub use crate::mlp_train::mlp_train;
pub use crate::vector_add::{vector_add, vector_add_into};
