//! Reference MLP training in `f64`, following the algorithm written down in
//! [`crate::kinds::mlp_train`] step for step.

use crate::kinds::mlp_train::{EpochStats, MlpDataset, MlpTrain};

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

/// Trains `job` on `data` in `f64`, evaluating `test` (when given) after every epoch.
pub fn mlp_train(job: &MlpTrain, data: &MlpDataset, test: Option<&MlpDataset>) -> MlpReference {
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
            let input = batch
                .iter()
                .flat_map(|&s| data.row(s as usize).iter().map(|&v| f64::from(v)))
                .collect();
            let acts = forward_acts(&dims, &w, &b, input, bs);
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
        let (test_loss, test_accuracy) = match test {
            Some(t) => {
                let (loss, accuracy) = mlp_evaluate(&dims, &w, &b, t);
                (Some(loss), Some(accuracy))
            }
            None => (None, None),
        };
        epochs.push(EpochStats {
            epoch,
            loss: loss_sum / n,
            accuracy: correct as f64 / n,
            test_loss,
            test_accuracy,
        });
    }
    MlpReference {
        epochs,
        weights: w,
        biases: b,
    }
}

/// Every activation of a forward pass over `rows` inputs (row-major `rows × dims[0]`):
/// `acts[0]` is the input, `acts[l]` the output of layer `l` (ReLU on all but the last).
fn forward_acts(
    dims: &[usize],
    w: &[Vec<f64>],
    b: &[Vec<f64>],
    input: Vec<f64>,
    rows: usize,
) -> Vec<Vec<f64>> {
    let layers = dims.len() - 1;
    let mut acts = vec![input];
    for l in 0..layers {
        let (din, dout) = (dims[l], dims[l + 1]);
        let mut z = vec![0f64; rows * dout];
        for r in 0..rows {
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
    acts
}

/// The logits of `rows` inputs (row-major `rows × dims[0]`) through dense layers with
/// weights `w[l]` (row-major `in × out`), biases `b[l]` and ReLU between layers.
pub fn mlp_forward(
    dims: &[usize],
    w: &[Vec<f64>],
    b: &[Vec<f64>],
    x: &[f64],
    rows: usize,
) -> Vec<f64> {
    forward_acts(dims, w, b, x.to_vec(), rows)
        .pop()
        .unwrap_or_default()
}

/// Mean softmax cross-entropy and accuracy of a model (weights `w[l]` row-major
/// `in × out`, biases `b[l]`) on `data`, in `f64`.
pub fn mlp_evaluate(
    dims: &[usize],
    w: &[Vec<f64>],
    b: &[Vec<f64>],
    data: &MlpDataset,
) -> (f64, f64) {
    let x: Vec<f64> = data.x.iter().map(|&v| f64::from(v)).collect();
    let logits = mlp_forward(dims, w, b, &x, data.samples);
    let (loss, correct) = xent(&logits, dims[dims.len() - 1], &data.y);
    let n = data.samples.max(1) as f64;
    (loss / n, correct as f64 / n)
}

/// The summed softmax cross-entropy of rows of logits against their labels, and how
/// many rows' first largest logit is the label.
fn xent(logits: &[f64], classes: usize, labels: &[u32]) -> (f64, usize) {
    let (mut loss, mut correct) = (0f64, 0usize);
    for (row, &label) in logits.chunks(classes).zip(labels) {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
        loss += -(row[label as usize] - max - sum.ln());
        if argmax(row) == label as usize {
            correct += 1;
        }
    }
    (loss, correct)
}

/// Softmax of one row of logits.
pub fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
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
