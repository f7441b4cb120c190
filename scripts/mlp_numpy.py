"""The forward pass of a model saved by `gpujobs ... --save-model`, in numpy, as PyTorch's
nn.Sequential(Linear, ReLU, ..., Linear) would compute it from the same safetensors file
(`0.weight` [out, in], `0.bias`, `2.weight`, ...): the reference the checks compare
`mlp-predict` with (scripts/mlp_check.py, scripts/compose-e2e.sh)."""

import numpy as np
from safetensors.numpy import load_file


def predict_probs(model_path, x):
    """Class probabilities (float64, softmax of the last layer) for the rows of `x`."""
    params = load_file(model_path)
    h = np.asarray(x, dtype=np.float64)
    layers = sorted({int(k.split(".")[0]) for k in params})
    for i, l in enumerate(layers):
        h = h @ params[f"{l}.weight"].astype(np.float64).T + params[f"{l}.bias"]
        if i + 1 < len(layers):
            h = np.maximum(h, 0.0)
    e = np.exp(h - h.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
