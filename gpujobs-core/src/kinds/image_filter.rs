//! `image-filter`: Gaussian blur or Sobel gradient magnitude of a single-channel `f32`
//! image, with OpenCV's semantics (see [`crate::kinds::filters`]).

use super::check_tensor;
use crate::kinds::filters::{MAX_SIGMA, gaussian_ksize};
use crate::kinds::reference;
use crate::model::cost::Cost;
use crate::model::error::ValidationError;
use crate::model::job::{Check, Job, JobOutput};
use crate::model::limits::{Limits, f32_bytes};
use crate::model::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Which filter to apply.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FilterOp {
    /// `cv2.GaussianBlur(img, (0, 0), sigma)`.
    GaussianBlur {
        /// Standard deviation in pixels, in `(0, 1024]`.
        sigma: f32,
    },
    /// Magnitude of `cv2.Sobel` with `ksize=3` in x and y.
    Sobel,
}

impl FilterOp {
    /// Short name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            FilterOp::GaussianBlur { .. } => "gaussian-blur",
            FilterOp::Sobel => "sobel",
        }
    }
}

/// Filters a row-major `height × width` image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageFilter {
    /// The image, shape `[height, width]`.
    pub image: Tensor,
    /// The filter.
    pub filter: FilterOp,
}

impl ImageFilter {
    /// The kind's name.
    pub const KIND_NAME: &'static str = "image-filter";

    /// A synthetic image of values in `[0, 1)`.
    pub fn synthetic(height: usize, width: usize, filter: FilterOp, seed: u64) -> Self {
        ImageFilter {
            image: Tensor::synthetic(vec![height, width], seed, 0.0, 1.0),
            filter,
        }
    }

    /// `(height, width)`; meaningful after [`Job::validate`].
    pub fn dims(&self) -> (usize, usize) {
        let s = self.image.shape();
        (
            s.first().copied().unwrap_or(0),
            s.get(1).copied().unwrap_or(0),
        )
    }
}

/// The filtered image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageFilterOutput {
    /// Same shape as the input.
    pub image: Tensor,
}

impl JobOutput for ImageFilterOutput {
    fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        vec![&mut self.image]
    }
    fn summary(&self) -> String {
        format!("image: {:?}", self.image.shape())
    }
}

impl Job for ImageFilter {
    const KIND: &'static str = Self::KIND_NAME;
    type Output = ImageFilterOutput;

    fn validate(&self, limits: &Limits) -> Result<(), ValidationError> {
        let n = check_tensor(&self.image, "image", 2)?;
        if let FilterOp::GaussianBlur { sigma } = self.filter
            && !(sigma.is_finite() && sigma > 0.0 && sigma <= MAX_SIGMA)
        {
            return Err(ValidationError::InvalidParameter {
                name: "sigma".into(),
                reason: format!("must be a number in (0, {MAX_SIGMA}], got {sigma}"),
            });
        }
        // Input, intermediate and output images.
        limits.check(
            f32_bytes(3 * n as u128),
            "image-filter input, intermediate and output",
        )
    }

    fn cost(&self) -> Cost {
        let (h, w) = self.dims();
        let px = (h * w) as f64;
        let (flops, passes) = match self.filter {
            FilterOp::GaussianBlur { sigma } => {
                (px * 4.0 * gaussian_ksize(f64::from(sigma)) as f64, 2)
            }
            FilterOp::Sobel => (px * 20.0, 1),
        };
        Cost {
            flops,
            bytes: 8.0 * px * f64::from(passes),
            transfer_bytes: self.image.upload_bytes() + 4.0 * px,
            memory_bytes: (12.0 * px) as u64,
            launches: passes,
        }
    }

    fn size_label(&self) -> String {
        let (h, w) = self.dims();
        match self.filter {
            FilterOp::GaussianBlur { sigma } => format!("{w}x{h} blur σ={sigma}"),
            FilterOp::Sobel => format!("{w}x{h} sobel"),
        }
    }

    fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        vec![&mut self.image]
    }

    fn calibration_samples(quick: bool) -> Vec<Self> {
        let sizes: &[usize] = if quick {
            &[64, 256, 1024]
        } else {
            &[64, 256, 512, 1024, 2048, 4096]
        };
        let mut v = Vec::new();
        for &n in sizes {
            for filter in [FilterOp::GaussianBlur { sigma: 2.0 }, FilterOp::Sobel] {
                v.push(ImageFilter {
                    image: super::real(vec![n, n], 5, 0.0, 1.0),
                    filter,
                });
            }
        }
        v
    }

    fn check(&self, output: &ImageFilterOutput) -> Option<Check> {
        let (h, w) = self.dims();
        let (img, out) = (self.image.values().ok()?, output.image.values().ok()?);
        let reference = match self.filter {
            FilterOp::GaussianBlur { sigma } => {
                reference::gaussian_blur(&img, h, w, f64::from(sigma))
            }
            FilterOp::Sobel => reference::sobel_magnitude(&img, h, w),
        };
        // 1e-4 absolute on [0, 1] images, scaled for images of larger range.
        // Over finite pixels: one inf in the image must not make every error pass.
        let scale = img
            .iter()
            .filter(|v| v.is_finite())
            .fold(1.0f32, |m, v| m.max(v.abs()));
        Some(Check::measured(
            reference::max_abs_diff(&out, &reference),
            1e-4 * f64::from(scale),
            "max abs",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigma_is_validated() {
        let l = Limits::with_max_bytes(1 << 30);
        for bad in [0.0, -1.0, f32::NAN, f32::INFINITY, 5000.0] {
            let j = ImageFilter::synthetic(4, 4, FilterOp::GaussianBlur { sigma: bad }, 1);
            assert!(
                matches!(
                    j.validate(&l),
                    Err(ValidationError::InvalidParameter { .. })
                ),
                "{bad}"
            );
        }
        assert!(
            ImageFilter::synthetic(1, 1, FilterOp::Sobel, 1)
                .validate(&l)
                .is_ok()
        );
    }

    #[test]
    fn json_form() {
        let j = ImageFilter::synthetic(2, 3, FilterOp::GaussianBlur { sigma: 2.0 }, 1);
        let v = serde_json::to_value(&j).unwrap();
        assert_eq!(v["filter"]["op"], "gaussian-blur");
        assert_eq!(serde_json::from_value::<ImageFilter>(v).unwrap(), j);
    }
}
