//! Data locality: where a graph job's inputs already are.
//!
//! When a parent job succeeds, the worker that ran it keeps its output in its output
//! cache (see [`crate::worker::output_cache`]). The queue hands the scheduler, with each
//! released child, the worker that made each parent's output ([`Incoming::holders`]);
//! [`HeldInputs::of`] turns that into bytes of the child's inputs each worker holds, which
//! the placement policy subtracts from the job's transfer term on that worker.
//!
//! [`Incoming::holders`]: crate::queue::Incoming::holders

use crate::model::envelope::JobEnvelope;
use crate::model::graph::refs_in;
use crate::model::id::JobId;
use std::collections::BTreeMap;

/// Bytes of a job's graph inputs, in all and per worker that holds some of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeldInputs {
    /// Bytes of every input read from another job's output (f32 elements × 4).
    pub input_bytes: f64,
    /// Bytes of those inputs each worker's cache holds, by worker (consumer) id.
    pub on: BTreeMap<String, f64>,
}

impl HeldInputs {
    /// Where `job`'s inputs are, given the worker that made each parent's output.
    /// Inputs are counted by their declared shapes (validated at submit).
    pub fn of(job: &JobEnvelope, holders: &[(JobId, String)]) -> HeldInputs {
        let mut r = HeldInputs::default();
        for input in refs_in(&job.payload) {
            let bytes = input
                .shape
                .iter()
                .try_fold(4usize, |a, &d| a.checked_mul(d))
                .unwrap_or(usize::MAX) as f64;
            r.input_bytes += bytes;
            if let Some((_, worker)) = holders.iter().find(|(j, _)| *j == input.from.job) {
                *r.on.entry(worker.clone()).or_insert(0.0) += bytes;
            }
        }
        r
    }

    /// Whether nothing of the job's inputs is held anywhere.
    pub fn is_empty(&self) -> bool {
        self.on.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{Matmul, VectorAdd};
    use crate::model::graph::Graph;
    use crate::model::tensor::Tensor;

    #[test]
    fn counts_bytes_per_holder_by_declared_shape() {
        let mut g = Graph::new();
        let a = g.add("a", Matmul::synthetic(8, 8, 8, 1)).unwrap();
        let b = g.add("b", Matmul::synthetic(8, 8, 8, 2)).unwrap();
        let sum = VectorAdd {
            a: Tensor::output_of(&a, "c", vec![64]),
            b: Tensor::output_of(&b, "c", vec![64]),
        };
        g.add("sum", sum).unwrap();
        let child = &g.jobs()[2];
        let r = HeldInputs::of(child, &[(a.clone(), "w1".into())]);
        assert_eq!(r.input_bytes, 512.0);
        assert_eq!(r.on.get("w1"), Some(&256.0));
        assert_eq!(r.on.len(), 1);
        let both = HeldInputs::of(child, &[(a, "w1".into()), (b, "w1".into())]);
        assert_eq!(both.on.get("w1"), Some(&512.0));
        assert!(HeldInputs::of(child, &[]).is_empty());
    }
}
