//! Reference MLP training in `f64`, following the algorithm written down in
//! [`crate::jobs::mlp_train`] step for step.

use crate::jobs::mlp_train::{EpochStats, MlpDataset, MlpTrain};

/// The result of the reference training: per-epoch statistics and final parameters.
#[derive(Debug, Clone)]
pub struct MlpReference {
    /// Loss and accuracy per epoch.
    pub epochs: Vec<EpochStats>,
    /// Final weights per layer, row-major `in × out`.
    pub weights: Vec<Vec<f64>>,
    /// Final biases per layer.
    pub biases: Vec<Vec<f64>>,
}

/// Trains `job` on `data` in `f64`.
pub fn mlp_train(job: &MlpTrain, data: &MlpDataset) -> MlpReference {
    let dims = job.dims();
    let layers = dims.len() - 1;
    let init = job.initial_params();
    let mut w: Vec<Vec<f64>> = init
        .iter()
        .map(|l| l.w.iter().map(|&v| f64::from(v)).collect())
        .collect();
    let mut b: Vec<Vec<f64>> = init
        .iter()
        .map(|l| l.b.iter().map(|&v| f64::from(v)).collect())
        .collect();
    let lr = f64::from(job.lr);
    let mut epochs = Vec::new();
    for epoch in 0..job.epochs {
        let order = job.epoch_order(epoch);
        let (mut loss_sum, mut correct) = (0f64, 0usize);
        for batch in order.chunks(job.batch.max(1)) {
            let bs = batch.len();
            // Forward: acts[0] is the input batch, acts[l] the output of layer l.
            let mut acts: Vec<Vec<f64>> = vec![
                batch
                    .iter()
                    .flat_map(|&s| data.row(s as usize).iter().map(|&v| f64::from(v)))
                    .collect(),
            ];
            for l in 0..layers {
                let (din, dout) = (dims[l], dims[l + 1]);
                let mut z = vec![0f64; bs * dout];
                for r in 0..bs {
                    for o in 0..dout {
                        let mut s = b[l][o];
                        for i in 0..din {
                            s += acts[l][r * din + i] * w[l][i * dout + o];
                        }
                        z[r * dout + o] = if l + 1 < layers { s.max(0.0) } else { s };
                    }
                }
                acts.push(z);
            }
            // Softmax cross-entropy; its gradient (p − onehot) / batch.
            let c = dims[layers];
            let mut grad = vec![0f64; bs * c];
            for r in 0..bs {
                let logits = &acts[layers][r * c..(r + 1) * c];
                let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = logits.iter().map(|v| (v - max).exp()).sum();
                let label = data.y[batch[r] as usize] as usize;
                loss_sum += -(logits[label] - max - sum.ln());
                if argmax(logits) == label {
                    correct += 1;
                }
                for o in 0..c {
                    let p = (logits[o] - max).exp() / sum;
                    grad[r * c + o] = (p - if o == label { 1.0 } else { 0.0 }) / bs as f64;
                }
            }
            // Backward and SGD, last layer first.
            for l in (0..layers).rev() {
                let (din, dout) = (dims[l], dims[l + 1]);
                let mut grad_in = vec![0f64; bs * din];
                if l > 0 {
                    for r in 0..bs {
                        for i in 0..din {
                            if acts[l][r * din + i] > 0.0 {
                                let mut s = 0f64;
                                for o in 0..dout {
                                    s += grad[r * dout + o] * w[l][i * dout + o];
                                }
                                grad_in[r * din + i] = s;
                            }
                        }
                    }
                }
                for i in 0..din {
                    for o in 0..dout {
                        let g: f64 = (0..bs)
                            .map(|r| acts[l][r * din + i] * grad[r * dout + o])
                            .sum();
                        w[l][i * dout + o] -= lr * g;
                    }
                }
                for o in 0..dout {
                    let g: f64 = (0..bs).map(|r| grad[r * dout + o]).sum();
                    b[l][o] -= lr * g;
                }
                grad = grad_in;
            }
        }
        let n = data.samples as f64;
        epochs.push(EpochStats {
            epoch,
            loss: loss_sum / n,
            accuracy: correct as f64 / n,
        });
    }
    MlpReference {
        epochs,
        weights: w,
        biases: b,
    }
}

/// Index of the first largest value.
pub(crate) fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
