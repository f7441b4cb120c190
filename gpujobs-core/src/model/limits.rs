//! Resource limits that validation checks a job against before anything is allocated.

use crate::model::error::ValidationError;
use serde::{Deserialize, Serialize};

/// How much memory a job may use, checked at submit and again before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Bytes of host memory one job may allocate (inputs, outputs and workspace).
    pub max_job_bytes: u64,
}

impl Limits {
    /// The limit derived from this machine: 80% of physical memory, so a job that would
    /// push the machine into swap or the OOM killer is refused instead.
    /// Falls back to 16 GiB where physical memory cannot be read.
    pub fn detect() -> Self {
        let total = physical_memory_bytes().unwrap_or(16 << 30);
        Limits {
            max_job_bytes: total / 10 * 8,
        }
    }

    /// A fixed limit, for tests and for services that share the machine.
    pub fn with_max_bytes(max_job_bytes: u64) -> Self {
        Limits { max_job_bytes }
    }

    /// Refuses `needed` bytes (computed with overflow-free `u128` arithmetic) over the limit.
    pub fn check(&self, needed: u128, what: &str) -> Result<(), ValidationError> {
        if needed > u128::from(self.max_job_bytes) {
            return Err(ValidationError::TooLarge {
                needed,
                limit: self.max_job_bytes,
                what: what.to_string(),
            });
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::detect()
    }
}

/// Total physical memory (see [`crate::buffer::physical_memory_bytes`]).
pub use crate::buffer::physical_memory_bytes;

/// Bytes taken by `elements` values of 4 bytes, without overflow.
pub fn f32_bytes(elements: u128) -> u128 {
    elements.saturating_mul(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_reads_something_sane() {
        let l = Limits::detect();
        assert!(l.max_job_bytes > 100 << 20);
    }

    #[test]
    fn check_refuses_over_limit() {
        let l = Limits::with_max_bytes(1000);
        assert!(l.check(1000, "x").is_ok());
        let e = l.check(1001, "matmul").unwrap_err();
        assert!(e.to_string().contains("1001"), "{e}");
    }
}
