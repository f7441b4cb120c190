//! A trained MLP classifier as data: what `mlp-train` produces and `mlp-predict`
//! consumes, and its file form, safetensors.
//!
//! The file is laid out as PyTorch's `nn.Sequential(Linear, ReLU, …, Linear)` state
//! dict: tensors `0.weight`, `0.bias`, `2.weight`, `2.bias`, … (the ReLUs take the odd
//! indices), each weight `[out, in]` in float32. So `model.load_state_dict(
//! safetensors.torch.load_file(path))` loads it into that module, numpy reads it with
//! `safetensors.numpy.load_file`, and candle with its safetensors loader. The metadata
//! says what the tensors form (`format`, `dims`, `activation`, `output`). In memory the
//! weights are `[in, out]`, the layout the backends multiply with.

use crate::model::error::ValidationError;
use crate::model::limits::{Limits, f32_bytes};
use crate::model::synth::derive_seed;
use crate::model::tensor::{Tensor, Values};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The `format` the metadata of a model file names.
pub const MODEL_FORMAT: &str = "gpujobs-mlp";
/// Most layers a model may have (as many as `mlp-train` can make: 16 hidden + output).
pub const MAX_LAYERS: usize = 17;

/// Dense layers with ReLU between them and softmax after the last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpModel {
    /// Weights per layer, shape `[in, out]`.
    pub weights: Vec<Tensor>,
    /// Biases per layer, shape `[out]`.
    pub biases: Vec<Tensor>,
}

impl MlpModel {
    /// Layer widths from input to output, read from the shapes (not checked; see
    /// [`MlpModel::validate`]).
    pub fn dims(&self) -> Vec<usize> {
        let mut dims: Vec<usize> = self
            .weights
            .first()
            .and_then(|w| w.shape().first().copied())
            .into_iter()
            .collect();
        dims.extend(
            self.weights
                .iter()
                .filter_map(|w| w.shape().get(1).copied()),
        );
        dims
    }

    /// Checks that the layers chain (`w[l]` is `[dims[l], dims[l+1]]`, `b[l]` is
    /// `[dims[l+1]]`), hold as many values as their shapes say, and are finite, and
    /// that the parameters fit in memory. Returns the widths.
    pub fn validate(&self, limits: &Limits) -> Result<Vec<usize>, ValidationError> {
        let layers = self.weights.len();
        if layers == 0 || layers > MAX_LAYERS {
            return Err(ValidationError::InvalidParameter {
                name: "model".into(),
                reason: format!("needs 1 to {MAX_LAYERS} layers, got {layers}"),
            });
        }
        if self.biases.len() != layers {
            return Err(ValidationError::ShapeMismatch(format!(
                "model has {layers} weight tensors but {} bias tensors",
                self.biases.len()
            )));
        }
        let mut params = 0u128;
        for (l, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            let name = format!("layer {l} weight");
            w.check_shape(&name, 2)?;
            w.check_length(&name)?;
            let bname = format!("layer {l} bias");
            b.check_shape(&bname, 1)?;
            b.check_length(&bname)?;
            if b.shape()[0] != w.shape()[1] {
                return Err(ValidationError::ShapeMismatch(format!(
                    "layer {l}: weight {:?} has {} outputs but the bias has {}",
                    w.shape(),
                    w.shape()[1],
                    b.shape()[0]
                )));
            }
            if l > 0 && w.shape()[0] != self.weights[l - 1].shape()[1] {
                return Err(ValidationError::ShapeMismatch(format!(
                    "layer {l} takes {} inputs but layer {} gives {}",
                    w.shape()[0],
                    l - 1,
                    self.weights[l - 1].shape()[1]
                )));
            }
            params += (w.shape()[0] as u128 + 1) * w.shape()[1] as u128;
        }
        limits.check(f32_bytes(params), "model parameters")?;
        for (l, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            for (t, what) in [(w, "weight"), (b, "bias")] {
                if let Some(values) = t.stored()
                    && let Some(i) = values.iter().position(|v| !v.is_finite())
                {
                    return Err(ValidationError::NonFinite {
                        name: format!("layer {l} {what}"),
                        at: format!("element {i}"),
                        value: values[i],
                        why: "a model with NaN or inf parameters predicts NaN".into(),
                    });
                }
            }
        }
        let dims = self.dims();
        if *dims.last().unwrap_or(&0) < 2 {
            return Err(ValidationError::InvalidParameter {
                name: "model".into(),
                reason: "the last layer must have at least 2 outputs (classes)".into(),
            });
        }
        Ok(dims)
    }

    /// The weights' and biases' values in memory (generating synthetic ones), for a
    /// backend to compute with.
    pub fn values(&self) -> Result<(Vec<Values>, Vec<Values>), ValidationError> {
        let all = |ts: &[Tensor]| ts.iter().map(Tensor::values).collect::<Result<Vec<_>, _>>();
        Ok((all(&self.weights)?, all(&self.biases)?))
    }

    /// A model of the given widths with seeded uniform parameters (benchmarks,
    /// calibration and tests: predictions of any model cost the same).
    pub fn synthetic(dims: &[usize], seed: u64) -> Self {
        let (mut weights, mut biases) = (Vec::new(), Vec::new());
        for (l, d) in dims.windows(2).enumerate() {
            let limit = (6.0 / d[0].max(1) as f64).sqrt() as f32;
            let s = derive_seed(seed, &format!("w{l}"));
            weights.push(Tensor::synthetic(vec![d[0], d[1]], s, -limit, limit));
            let s = derive_seed(seed, &format!("b{l}"));
            biases.push(Tensor::synthetic(vec![d[1]], s, -0.1, 0.1));
        }
        MlpModel { weights, biases }
    }

    /// The model as a safetensors file (see the module's docs for the layout).
    pub fn to_safetensors(&self) -> Result<Vec<u8>, ValidationError> {
        let dims = self.validate(&Limits::with_max_bytes(u64::MAX))?;
        let mut tensors: Vec<(String, OwnedView)> = Vec::new();
        for (l, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            let (din, dout) = (dims[l], dims[l + 1]);
            let w = w.values()?;
            // [in, out] in memory, [out, in] in the file (PyTorch's Linear).
            let mut t = vec![0f32; din * dout];
            for i in 0..din {
                for o in 0..dout {
                    t[o * din + i] = w[i * dout + o];
                }
            }
            tensors.push((
                format!("{}.weight", 2 * l),
                OwnedView::new(vec![dout, din], &t),
            ));
            tensors.push((
                format!("{}.bias", 2 * l),
                OwnedView::new(vec![dout], &b.values()?),
            ));
        }
        let metadata = HashMap::from([
            ("format".to_string(), MODEL_FORMAT.to_string()),
            ("dims".to_string(), format!("{dims:?}")),
            ("activation".to_string(), "relu".to_string()),
            ("output".to_string(), "softmax".to_string()),
            (
                "layout".to_string(),
                "torch.nn.Sequential(Linear, ReLU, ..., Linear) state dict; weight [out, in]"
                    .to_string(),
            ),
        ]);
        safetensors::serialize(tensors, Some(metadata)).map_err(|e| {
            ValidationError::InvalidParameter {
                name: "model".into(),
                reason: format!("cannot be written as safetensors: {e}"),
            }
        })
    }

    /// Reads a model from a safetensors file laid out as [`MlpModel::to_safetensors`]
    /// writes it (or any `nn.Sequential` of Linear and ReLU layers saved by PyTorch
    /// in float32 or float64). The result is validated.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, ValidationError> {
        let bad = |reason: String| ValidationError::InvalidParameter {
            name: "model file".into(),
            reason,
        };
        let file = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let mut indices: Vec<usize> = Vec::new();
        for name in file.names() {
            let Some((index, part)) = name.split_once('.') else {
                return Err(bad(format!("unexpected tensor `{name}`")));
            };
            let index: usize = index.parse().map_err(|_| {
                bad(format!(
                    "unexpected tensor `{name}`: want <index>.weight or <index>.bias"
                ))
            })?;
            if part != "weight" && part != "bias" {
                return Err(bad(format!("unexpected tensor `{name}`")));
            }
            if !indices.contains(&index) {
                indices.push(index);
            }
        }
        indices.sort_unstable();
        if indices.is_empty() || indices.len() > MAX_LAYERS {
            return Err(bad(format!(
                "needs 1 to {MAX_LAYERS} layers, found {}",
                indices.len()
            )));
        }
        let (mut weights, mut biases) = (Vec::new(), Vec::new());
        for index in indices {
            let read = |part: &str| -> Result<(Vec<usize>, Vec<f32>), ValidationError> {
                let name = format!("{index}.{part}");
                let view = file
                    .tensor(&name)
                    .map_err(|_| bad(format!("layer {index} has no `{name}`")))?;
                let values = decode(view.dtype(), view.data()).ok_or_else(|| {
                    bad(format!(
                        "`{name}` is {:?}; float32 or float64 is needed",
                        view.dtype()
                    ))
                })?;
                Ok((view.shape().to_vec(), values))
            };
            let (wshape, w) = read("weight")?;
            let (bshape, b) = read("bias")?;
            let [dout, din] = wshape[..] else {
                return Err(bad(format!(
                    "`{index}.weight` has shape {wshape:?}, want [out, in]"
                )));
            };
            let mut t = vec![0f32; din * dout];
            for o in 0..dout {
                for i in 0..din {
                    t[i * dout + o] = w[o * din + i];
                }
            }
            weights.push(Tensor::from_values(vec![din, dout], t)?);
            biases.push(Tensor::from_values(bshape, b)?);
        }
        let model = MlpModel { weights, biases };
        model.validate(&Limits::detect())?;
        Ok(model)
    }
}

/// Little-endian float32 or float64 bytes as `f32`s.
fn decode(dtype: safetensors::Dtype, data: &[u8]) -> Option<Vec<f32>> {
    match dtype {
        safetensors::Dtype::F32 => Some(
            data.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        safetensors::Dtype::F64 => Some(
            data.chunks_exact(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    f64::from_le_bytes(b) as f32
                })
                .collect(),
        ),
        _ => None,
    }
}

/// A float32 tensor's bytes, for the writer.
struct OwnedView {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl OwnedView {
    fn new(shape: Vec<usize>, values: &[f32]) -> Self {
        OwnedView {
            shape,
            bytes: crate::model::tensor::f32_to_le_bytes(values),
        }
    }
}

impl safetensors::View for OwnedView {
    fn dtype(&self) -> safetensors::Dtype {
        safetensors::Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> MlpModel {
        let w0 = Tensor::from_values(vec![3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let b0 = Tensor::from_values(vec![2], vec![0.5, -0.5]).unwrap();
        let w1 = Tensor::from_values(vec![2, 2], vec![1.0, -1.0, 0.25, 2.0]).unwrap();
        let b1 = Tensor::from_values(vec![2], vec![0.0, 1.0]).unwrap();
        MlpModel {
            weights: vec![w0, w1],
            biases: vec![b0, b1],
        }
    }

    #[test]
    fn safetensors_round_trip_keeps_every_value_and_torch_layout() {
        let m = model();
        let bytes = m.to_safetensors().unwrap();
        let back = MlpModel::from_safetensors(&bytes).unwrap();
        assert_eq!(back.dims(), vec![3, 2, 2]);
        for (a, b) in m.weights.iter().zip(&back.weights) {
            assert_eq!(a.shape(), b.shape());
            assert_eq!(&a.values().unwrap()[..], &b.values().unwrap()[..]);
        }
        // The file holds PyTorch's [out, in]: 0.weight row 0 is input weights of output 0.
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let w = file.tensor("0.weight").unwrap();
        assert_eq!(w.shape(), &[2, 3]);
        assert_eq!(
            decode(w.dtype(), w.data()).unwrap(),
            vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0]
        );
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let meta = meta.metadata().clone().unwrap();
        assert_eq!(meta["format"], MODEL_FORMAT);
        assert_eq!(meta["dims"], "[3, 2, 2]");
    }

    #[test]
    fn broken_models_are_refused_with_the_reason() {
        let mut m = model();
        m.biases.pop();
        assert!(matches!(
            m.validate(&Limits::detect()),
            Err(ValidationError::ShapeMismatch(_))
        ));
        let mut m = model();
        m.weights[1] = Tensor::from_values(vec![3, 2], vec![0.0; 6]).unwrap();
        let err = m.validate(&Limits::detect()).unwrap_err().to_string();
        assert!(
            err.contains("layer 1 takes 3 inputs but layer 0 gives 2"),
            "{err}"
        );
        let mut m = model();
        m.biases[0] = Tensor::from_values(vec![2], vec![f32::NAN, 0.0]).unwrap();
        assert!(matches!(
            m.validate(&Limits::detect()),
            Err(ValidationError::NonFinite { .. })
        ));
        assert!(MlpModel::from_safetensors(b"not a model at all").is_err());
        let no_bias =
            safetensors::serialize([("0.weight", OwnedView::new(vec![2, 3], &[0.0; 6]))], None)
                .unwrap();
        let err = MlpModel::from_safetensors(&no_bias)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no `0.bias`"), "{err}");
    }
}
