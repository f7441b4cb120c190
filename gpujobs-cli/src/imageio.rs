//! Images in and out of the CLI: PNG/JPEG through the `image` crate, or 2-D `.npy`.
//!
//! Images become single-channel `f32` in `[0, 1]`: colour images are converted to luma
//! (Rec. 601 weights, as the `image` crate does), 8- and 16-bit depths scale to `[0, 1]`.
//! On output, values are clamped to `[0, 1]` and quantized to 8 bits; `--normalize`
//! scales by the maximum first (useful for Sobel magnitudes, which exceed 1). A `.npy`
//! output keeps the exact `f32` values.

use crate::error::CliError;
use crate::npy;
use std::path::Path;

/// A grayscale image as `f32`.
#[derive(Debug, Clone)]
pub struct Gray {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Row-major values.
    pub data: Vec<f32>,
}

fn is_npy(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// Reads a PNG/JPEG image or a 2-D `.npy` array.
pub fn read(path: &Path) -> Result<Gray, CliError> {
    if is_npy(path) {
        let a = crate::inputs::read_npy(path)?;
        if a.shape.len() != 2 {
            return Err(CliError::input(format!(
                "{}: an image must be a 2-D array, got shape {:?}",
                path.display(),
                a.shape
            )));
        }
        return Ok(Gray {
            height: a.shape[0],
            width: a.shape[1],
            data: a.data,
        });
    }
    let img = image::ImageReader::open(path)
        .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?
        .with_guessed_format()
        .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?
        .decode()
        .map_err(|e| CliError::input(format!("{}: cannot decode image: {e}", path.display())))?;
    let luma = img.to_luma32f();
    let (w, h) = luma.dimensions();
    Ok(Gray {
        height: h as usize,
        width: w as usize,
        data: luma.into_raw(),
    })
}

/// Writes an image as PNG/JPEG (by extension) or `.npy`.
pub fn write(path: &Path, img: &Gray, normalize: bool) -> Result<(), CliError> {
    if is_npy(path) {
        return npy::write(path, &[img.height, img.width], &img.data)
            .map_err(|e| CliError::runtime(e.to_string()));
    }
    let scale = if normalize {
        let max = img
            .data
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(0f32, f32::max);
        if max > 0.0 { 1.0 / max } else { 1.0 }
    } else {
        1.0
    };
    let bytes: Vec<u8> = img
        .data
        .iter()
        .map(|&v| ((v * scale).clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let w = u32::try_from(img.width).map_err(|_| CliError::input("image too wide to save"))?;
    let h = u32::try_from(img.height).map_err(|_| CliError::input("image too tall to save"))?;
    let buf = image::GrayImage::from_raw(w, h, bytes)
        .ok_or_else(|| CliError::runtime("image buffer size mismatch"))?;
    buf.save(path)
        .map_err(|e| CliError::runtime(format!("{}: cannot save image: {e}", path.display())))
}
