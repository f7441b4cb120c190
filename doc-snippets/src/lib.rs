#![doc = include_str!("../../README.md")]

/// The user guide (docs/USER_GUIDE.md), whose Rust snippets run here as doc tests.
#[doc = include_str!("../../docs/USER_GUIDE.md")]
pub mod user_guide {}
