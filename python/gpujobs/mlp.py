"""MLP models: what ``mlp-train`` makes and ``mlp-predict`` runs.

A model is its layers' weights (``[in, out]``) and biases (``[out]``), ReLU between
layers and softmax after the last. Saved as safetensors (the format
``gpujobs mlp-train --save-model`` writes), it loads with ``safetensors.numpy`` or
``safetensors.torch``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, List, Mapping, Optional, Union

from . import _native
from .errors import ValidationError

if TYPE_CHECKING:
    import numpy as np

    from ._queue import _Queue


@dataclass
class Prediction:
    """What ``Model.predict`` gives."""

    #: Class probabilities, ``[rows, classes]``.
    probs: "np.ndarray"
    #: The most likely class per row, ``[rows]`` (int64).
    labels: "np.ndarray"


class Model:
    """A trained MLP."""

    def __init__(self, weights: List[Any], biases: List[Any]) -> None:
        if len(weights) != len(biases) or not weights:
            raise ValidationError("a model needs as many bias vectors as weight matrices, at least one")
        self.weights = list(weights)
        self.biases = list(biases)

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, Any]) -> "Model":
        """The model in an ``mlp-train`` result's outputs (``weights.0``, ``biases.0``, ...)."""
        n = sum(1 for k in outputs if k.startswith("weights."))
        if n == 0:
            raise ValidationError("these outputs hold no model (not an mlp-train result)")
        return cls([outputs[f"weights.{i}"] for i in range(n)], [outputs[f"biases.{i}"] for i in range(n)])

    @classmethod
    def from_safetensors(cls, data: bytes) -> "Model":
        """A model from safetensors bytes."""
        w, b = _native.model_from_safetensors(data)
        return cls(w, b)

    @classmethod
    def load(cls, path: Union[str, "os.PathLike[str]"]) -> "Model":
        """A model from a safetensors file."""
        with open(path, "rb") as f:
            return cls.from_safetensors(f.read())

    def to_safetensors(self) -> bytes:
        """The model as safetensors bytes."""
        data: bytes = _native.model_to_safetensors(self.weights, self.biases)
        return data

    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Writes the model as a safetensors file."""
        data = self.to_safetensors()
        tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    @property
    def dims(self) -> List[int]:
        """Layer widths from input to output."""
        return [int(self.weights[0].shape[0])] + [int(b.shape[0]) for b in self.biases]

    def predict(self, x: Any, *, on: Optional["_Queue"] = None, timeout: Optional[float] = None) -> Prediction:
        """Runs ``mlp-predict`` on rows ``x`` (in-process unless ``on`` names a
        :class:`~gpujobs.Client` or :class:`~gpujobs.Cluster`)."""
        import numpy as np

        from . import _default_cluster

        queue = on if on is not None else _default_cluster()
        r = queue.run("mlp-predict", model=self, x=x, timeout=timeout)
        return Prediction(probs=r.outputs["probs"], labels=r.outputs["labels"].astype(np.int64))

    def __repr__(self) -> str:
        return f"Model(dims={self.dims})"
