//! File formats read and written by every front end: `.npy` arrays in every dtype numpy
//! writes, and (feature `images`) PNG/JPEG images as grayscale, read straight into
//! pooled host buffers.

#[cfg(feature = "images")]
pub mod image;
pub mod npy;
