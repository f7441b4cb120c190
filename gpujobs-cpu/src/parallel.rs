//! Helpers for parallel work over rows and chunks.

use gpujobs_core::model::tensor::Values;
use gpujobs_core::{BufferPool, Tensor, ValidationError};
use rayon::prelude::*;

/// Elements per parallel chunk for memory-bound loops: big enough to amortise rayon's
/// overhead, small enough to balance two to a hundred cores.
pub(crate) const CHUNK: usize = 1 << 16;

/// A tensor's values in memory: real data is shared as is, synthetic data is generated
/// in parallel chunks into a buffer from `pool`.
pub fn materialize(t: &Tensor, pool: &BufferPool) -> Result<Values, ValidationError> {
    match t.data() {
        gpujobs_core::TensorData::Synthetic(_) => {
            let n = t
                .numel()
                .ok_or_else(|| ValidationError::Empty("overflowing shape".into()))?;
            let mut out = pool.take(n)?;
            out.par_chunks_mut(CHUNK)
                .enumerate()
                .try_for_each(|(i, chunk)| t.fill_range(chunk, i * CHUNK))?;
            Ok(out.into())
        }
        _ => t.values(),
    }
}

/// Splits `rows` rows into contiguous strips, several per thread for balance.
pub(crate) fn strips(rows: usize, min_rows: usize) -> Vec<(usize, usize)> {
    let threads = rayon::current_num_threads().max(1);
    let target = rows.div_ceil(threads * 4).max(min_rows).max(1);
    (0..rows)
        .step_by(target)
        .map(|y0| (y0, (y0 + target).min(rows)))
        .collect()
}
