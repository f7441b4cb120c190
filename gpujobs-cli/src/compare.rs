//! Comparing the outputs of two backends for the same job (GPU against CPU).

use crate::error::CliError;
use gpujobs_core::kinds::{
    ImageFilterOutput, MatmulOutput, MlpPredictOutput, MlpTrainOutput, VectorAddOutput,
};
use gpujobs_core::{JobResult, reference};

/// Compares two backends' outputs of the same job: metric name, value, tolerance
/// (f32 add is exact; matmul 1e-4 relative Frobenius; filters 1e-4 absolute; MLP loss
/// curves 1e-3; predicted probabilities 1e-5 absolute).
pub fn outputs(
    kind: &str,
    gpu: &JobResult,
    cpu: &JobResult,
) -> Result<(String, f64, f64), CliError> {
    let bad =
        |e: gpujobs_core::ValidationError| CliError::runtime(format!("cannot decode output: {e}"));
    Ok(match kind {
        "vector-add" => {
            let (g, c) = (
                gpu.decode::<VectorAddOutput>().map_err(bad)?.c,
                cpu.decode::<VectorAddOutput>().map_err(bad)?.c,
            );
            (
                "max abs vs CPU".into(),
                reference::max_abs_diff(&g.values()?, &c.values()?),
                0.0,
            )
        }
        "matmul" => {
            let (g, c) = (
                gpu.decode::<MatmulOutput>().map_err(bad)?.c,
                cpu.decode::<MatmulOutput>().map_err(bad)?.c,
            );
            (
                "rel Frobenius vs CPU".into(),
                reference::rel_l2_error(&g.values()?, &c.values()?),
                1e-4,
            )
        }
        "image-filter" => {
            let (g, c) = (
                gpu.decode::<ImageFilterOutput>().map_err(bad)?.image,
                cpu.decode::<ImageFilterOutput>().map_err(bad)?.image,
            );
            (
                "max abs vs CPU".into(),
                reference::max_abs_diff(&g.values()?, &c.values()?),
                1e-4,
            )
        }
        "mlp-predict" => {
            let (g, c) = (
                gpu.decode::<MlpPredictOutput>().map_err(bad)?,
                cpu.decode::<MlpPredictOutput>().map_err(bad)?,
            );
            (
                "max abs prob vs CPU".into(),
                reference::max_abs_diff(&g.probs.values()?, &c.probs.values()?),
                1e-5,
            )
        }
        _ => {
            let (g, c) = (
                gpu.decode::<MlpTrainOutput>().map_err(bad)?,
                cpu.decode::<MlpTrainOutput>().map_err(bad)?,
            );
            let d = g
                .epochs
                .iter()
                .zip(&c.epochs)
                .map(|(a, b)| (a.loss - b.loss).abs())
                .fold(0.0, f64::max);
            (
                "max loss diff vs CPU".into(),
                if g.epochs.len() == c.epochs.len() {
                    d
                } else {
                    f64::INFINITY
                },
                1e-3,
            )
        }
    })
}
