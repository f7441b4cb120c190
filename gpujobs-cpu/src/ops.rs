//! The CPU kernels as plain functions on slices, for benchmarks and for use without a
//! queue. Inputs are row-major; outputs are freshly allocated.

pub use crate::image_filter::{gaussian_blur, sobel_magnitude};
pub use crate::matmul::matmul;
pub use crate::mlp_train::mlp_train;
pub use crate::vector_add::vector_add;
