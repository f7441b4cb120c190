//! File formats read and written by every front end: `.npy` arrays in every dtype numpy
//! writes, read straight into pooled host buffers.

pub mod npy;
