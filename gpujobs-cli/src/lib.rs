//! The file formats of the `gpujobs` command as a library: `.npy` arrays ([`npy`]) and
//! PNG/JPEG images ([`imageio`]), read straight into page-aligned buffers from a
//! [`gpujobs_core::BufferPool`], the memory jobs run on and a device can register in
//! place. The binary (`src/main.rs`) is the rest of the crate.

pub use gpujobs_core::io::image as imageio;
pub use gpujobs_core::io::npy;
