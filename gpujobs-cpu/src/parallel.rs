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

/// `out`, the rows of an `h × w` image, cut into the strips of [`strips`]: each strip's
/// first row and its rows, so that threads can write their strips side by side.
pub(crate) fn row_strips(
    out: &mut [f32],
    h: usize,
    w: usize,
    min_rows: usize,
) -> Vec<(usize, &mut [f32])> {
    let plan = strips(h, min_rows);
    let mut chunks = Vec::with_capacity(plan.len());
    let mut rest = out;
    for (y0, y1) in plan {
        let (head, tail) = rest.split_at_mut((y1 - y0) * w);
        chunks.push((y0, head));
        rest = tail;
    }
    chunks
}

/// Splits `rows` rows into contiguous strips, several per thread for balance.
fn strips(rows: usize, min_rows: usize) -> Vec<(usize, usize)> {
    let threads = rayon::current_num_threads().max(1);
    let target = rows.div_ceil(threads * 4).max(min_rows).max(1);
    (0..rows)
        .step_by(target)
        .map(|y0| (y0, (y0 + target).min(rows)))
        .collect()
}
