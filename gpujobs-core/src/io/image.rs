//! Images in and out (feature `images`): PNG/JPEG through the `image` crate, or 2-D
//! `.npy`.
//!
//! Images become single-channel `f32` in `[0, 1]`, written straight into a page-aligned
//! buffer from a [`BufferPool`] as they are converted from the decoder's pixels. Colour
//! images are converted to luma with the Rec. 601 weights `0.299 R + 0.587 G + 0.114 B`,
//! as OpenCV's `IMREAD_GRAYSCALE` / `cvtColor(RGB2GRAY)` and PIL's `convert("L")` do
//! (within one 8-bit level of OpenCV, which rounds to integers); alpha is ignored, as
//! OpenCV ignores it. 8- and 16-bit depths scale to `[0, 1]`; float images keep their
//! values. On output, values are clamped to `[0, 1]` and quantized to 8 bits;
//! `normalize` scales by the maximum first (useful for Sobel magnitudes, which exceed
//! 1). A `.npy` output keeps the exact `f32` values.

use crate::buffer::{BufferPool, HostBuf, OutOfHostMemory};
use crate::io::npy::{self, NpyError};
use image::DynamicImage;
use std::path::Path;

/// An image that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ImageIoError {
    /// The `.npy` file is unusable.
    #[error(transparent)]
    Npy(#[from] NpyError),
    /// The file is not an image we can decode (or cannot be opened).
    #[error("{path}: {reason}")]
    Decode {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A 2-D array was expected.
    #[error("{path}: an image must be a 2-D array, got shape {shape:?}")]
    Rank {
        /// The file.
        path: String,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// The image, as `f32` luma, is larger than the caller's limit.
    #[error(
        "{path}: {width}x{height} is {bytes} bytes as float32 luma, over the limit of {limit} bytes for one input (a queue blob)"
    )]
    TooLarge {
        /// The file.
        path: String,
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
        /// Its size as `f32`.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// No memory for the pixels.
    #[error("{path}: {source}")]
    Memory {
        /// The file.
        path: String,
        /// What could not be allocated.
        source: OutOfHostMemory,
    },
    /// Writing failed.
    #[error("{path}: cannot save image: {reason}")]
    Save {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// A grayscale image as `f32`.
#[derive(Debug)]
pub struct Gray {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Row-major values.
    pub data: HostBuf,
    /// Set when a `.npy` image was converted from another dtype (say which).
    pub converted_from: Option<String>,
}

fn is_npy(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// Rec. 601 luma weights (OpenCV, PIL).
const LUMA: [f32; 3] = [0.299, 0.587, 0.114];

/// Reads a PNG/JPEG image or a 2-D `.npy` array into a buffer from `pool`.
pub fn read(path: &Path, pool: &BufferPool) -> Result<Gray, ImageIoError> {
    read_capped(path, pool, u64::MAX)
}

/// [`read`], refusing an image larger than `limit` bytes as `f32` luma from its
/// header alone, before decoding it (a queue's blob limit).
pub fn read_capped(path: &Path, pool: &BufferPool, limit: u64) -> Result<Gray, ImageIoError> {
    let p = path.display().to_string();
    if is_npy(path) {
        let a = npy::read_capped(path, pool, limit)?;
        if a.shape.len() != 2 {
            return Err(ImageIoError::Rank {
                path: p,
                shape: a.shape,
            });
        }
        return Ok(Gray {
            height: a.shape[0],
            width: a.shape[1],
            data: a.data,
            converted_from: a.converted_from,
        });
    }
    let decode_err = |reason: String| ImageIoError::Decode {
        path: p.clone(),
        reason,
    };
    let reader = || {
        image::ImageReader::open(path)
            .map_err(|e| decode_err(e.to_string()))?
            .with_guessed_format()
            .map_err(|e| decode_err(e.to_string()))
    };
    let (w, h) = reader()?
        .into_dimensions()
        .map_err(|e| decode_err(format!("cannot read the image's header: {e}")))?;
    let bytes = u64::from(w) * u64::from(h) * 4;
    if bytes > limit {
        return Err(ImageIoError::TooLarge {
            path: p,
            width: w,
            height: h,
            bytes,
            limit,
        });
    }
    let img = reader()?
        .decode()
        .map_err(|e| decode_err(format!("cannot decode image: {e}")))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut data = pool
        .take(w.saturating_mul(h))
        .map_err(|source| ImageIoError::Memory {
            path: p.clone(),
            source,
        })?;
    to_gray(&img, &mut data);
    Ok(Gray {
        height: h,
        width: w,
        data,
        converted_from: None,
    })
}

/// Converts decoded pixels to `f32` luma in `[0, 1]`, straight into `out`.
fn to_gray(img: &DynamicImage, out: &mut [f32]) {
    fn luma<const C: usize, T: Copy>(px: &[T], scale: f32, out: &mut [f32], f: impl Fn(T) -> f32) {
        for (o, p) in out.iter_mut().zip(px.chunks_exact(C)) {
            let y = if C >= 3 {
                LUMA[0] * f(p[0]) + LUMA[1] * f(p[1]) + LUMA[2] * f(p[2])
            } else {
                f(p[0])
            };
            *o = y * scale;
        }
    }
    let u8f = |v: u8| f32::from(v);
    let u16f = |v: u16| f32::from(v);
    let f32f = |v: f32| v;
    match img {
        DynamicImage::ImageLuma8(b) => luma::<1, u8>(b.as_raw(), 1.0 / 255.0, out, u8f),
        DynamicImage::ImageLumaA8(b) => luma::<2, u8>(b.as_raw(), 1.0 / 255.0, out, u8f),
        DynamicImage::ImageRgb8(b) => luma::<3, u8>(b.as_raw(), 1.0 / 255.0, out, u8f),
        DynamicImage::ImageRgba8(b) => luma::<4, u8>(b.as_raw(), 1.0 / 255.0, out, u8f),
        DynamicImage::ImageLuma16(b) => luma::<1, u16>(b.as_raw(), 1.0 / 65535.0, out, u16f),
        DynamicImage::ImageLumaA16(b) => luma::<2, u16>(b.as_raw(), 1.0 / 65535.0, out, u16f),
        DynamicImage::ImageRgb16(b) => luma::<3, u16>(b.as_raw(), 1.0 / 65535.0, out, u16f),
        DynamicImage::ImageRgba16(b) => luma::<4, u16>(b.as_raw(), 1.0 / 65535.0, out, u16f),
        DynamicImage::ImageRgb32F(b) => luma::<3, f32>(b.as_raw(), 1.0, out, f32f),
        DynamicImage::ImageRgba32F(b) => luma::<4, f32>(b.as_raw(), 1.0, out, f32f),
        other => {
            let rgb = other.to_rgb32f();
            luma::<3, f32>(rgb.as_raw(), 1.0, out, f32f);
        }
    }
}

/// Writes an image of `height × width` values as PNG/JPEG (by extension) or `.npy`.
pub fn write(
    path: &Path,
    height: usize,
    width: usize,
    data: &[f32],
    normalize: bool,
) -> Result<(), ImageIoError> {
    if is_npy(path) {
        return Ok(npy::write(path, &[height, width], data)?);
    }
    let p = path.display().to_string();
    let save_err = |reason: String| ImageIoError::Save {
        path: p.clone(),
        reason,
    };
    let scale = if normalize {
        let max = data
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(0f32, f32::max);
        if max > 0.0 { 1.0 / max } else { 1.0 }
    } else {
        1.0
    };
    let bytes: Vec<u8> = data
        .iter()
        .map(|&v| ((v * scale).clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let w = u32::try_from(width).map_err(|_| save_err("image too wide to save".into()))?;
    let h = u32::try_from(height).map_err(|_| save_err("image too tall to save".into()))?;
    let buf = image::GrayImage::from_raw(w, h, bytes)
        .ok_or_else(|| save_err("image buffer size mismatch".into()))?;
    buf.save(path).map_err(|e| save_err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_becomes_rec601_luma_like_opencv() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.png");
        // Pure red, green, blue and a mid grey: OpenCV's IMREAD_GRAYSCALE gives 76, 150,
        // 29 and 128 (Rec. 709 would give 54, 182, 18).
        let px = [255u8, 0, 0, 0, 255, 0, 0, 0, 255, 128, 128, 128];
        image::RgbImage::from_raw(4, 1, px.to_vec())
            .unwrap()
            .save(&f)
            .unwrap();
        let g = read(&f, &BufferPool::new(1 << 20)).unwrap();
        assert_eq!((g.height, g.width), (1, 4));
        assert!(g.data.is_page_aligned());
        let levels: Vec<f32> = g.data.iter().map(|v| v * 255.0).collect();
        for (got, opencv) in levels.iter().zip([76.0, 150.0, 29.0, 128.0]) {
            assert!((got - opencv).abs() <= 1.0, "{levels:?}");
        }
    }

    #[test]
    fn an_image_over_the_limit_is_refused_from_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("g.png");
        image::GrayImage::new(10, 20).save(&f).unwrap();
        let pool = BufferPool::new(1 << 20);
        let err = read_capped(&f, &pool, 799).err().unwrap();
        assert!(
            matches!(
                err,
                ImageIoError::TooLarge {
                    width: 10,
                    height: 20,
                    bytes: 800,
                    limit: 799,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(read_capped(&f, &pool, 800).unwrap().data.len(), 200);
        // A 2-D .npy image goes through the .npy reader's own check.
        let n = dir.path().join("g.npy");
        npy::write(&n, &[4, 5], &[0.0; 20]).unwrap();
        assert!(matches!(
            read_capped(&n, &pool, 79).err().unwrap(),
            ImageIoError::Npy(NpyError::TooLarge {
                bytes: 80,
                limit: 79,
                ..
            })
        ));
    }

    #[test]
    fn sixteen_bit_and_alpha() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("g.png");
        image::ImageBuffer::<image::LumaA<u16>, Vec<u16>>::from_raw(2, 1, vec![65535, 0, 0, 65535])
            .unwrap()
            .save(&f)
            .unwrap();
        let g = read(&f, &BufferPool::new(1 << 20)).unwrap();
        assert_eq!(g.data, vec![1.0, 0.0]);
    }
}
