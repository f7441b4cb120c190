"""A job's inputs from Python arguments: the per-kind spelling (``filter="sobel"``,
``x=``/``y=`` for training) turned into the wire format's payload, and every tensor
input into a numpy array the native module copies once.

Arrays: any real numeric dtype is accepted and converted to float32 as the CLI's
``.npy`` reader does (float16 and byte-swapped arrays are made native here, the rest in
the native module); booleans, complex numbers, strings and objects are refused with the
CLI's message. C-, Fortran-ordered and strided arrays are all copied once, in C order.
A PIL image becomes grey levels in [0, 1].
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Sequence, Tuple

from .errors import PrecisionWarning, ValidationError

if TYPE_CHECKING:
    import numpy as np

# Conversions to float32 that can lose precision: float64 always warns (as the CLI does),
# 32- and 64-bit integers when their values are beyond float32's exact integers.
_LOSSY = {"f8", "i4", "u4", "i8", "u8"}


class OutputRef:
    """An output of a step of a :class:`gpujobs.Graph`, as another step's input."""

    __slots__ = ("step", "path", "shape")

    def __init__(self, step: str, path: str, shape: Tuple[int, ...]) -> None:
        self.step = step
        self.path = path
        self.shape = tuple(int(s) for s in shape)

    def wire(self) -> Dict[str, Any]:
        return {"shape": list(self.shape), "from": {"job": self.step, "output": self.path}}

    def __repr__(self) -> str:
        return f"OutputRef({self.step!r}, {self.path!r}, shape={self.shape})"


def _caller_level() -> int:
    """The stack level of the first frame outside this package, so that a warning
    names the user's line."""
    here = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == here:
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _beyond_f32_integers(a: "np.ndarray") -> bool:
    """Whether an integer array holds values float32 cannot represent exactly (beyond
    ±2²⁴): integer labels and counts convert without loss and without a warning."""
    return bool(a.size) and (int(a.max()) > 1 << 24 or int(a.min()) < -(1 << 24))


def _is_pil(value: Any) -> bool:
    return any(c.__module__.startswith("PIL.") and c.__name__ == "Image" for c in type(value).__mro__)


def _from_pil(img: Any) -> "np.ndarray":
    import numpy as np

    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(img, dtype=np.float32) / np.float32(65535.0)
    if img.mode == "F":
        return np.asarray(img, dtype=np.float32)
    grey = img.convert("L") if img.mode != "L" else img
    return np.asarray(grey, dtype=np.float32) / np.float32(255.0)


def tensor(value: Any, name: str) -> Any:
    """A tensor input: a numpy array (or an OutputRef's wire form), never a copy here
    when the array is already usable."""
    import numpy as np

    if isinstance(value, OutputRef):
        return value.wire()
    if _is_pil(value):
        return _from_pil(value)
    if isinstance(value, (list, tuple)):
        try:
            return np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise ValidationError(f"{name}: not a numeric array: {e}") from None
    if not isinstance(value, np.ndarray):
        if hasattr(value, "__array__") or hasattr(value, "__array_interface__"):
            value = np.asarray(value)
        else:
            raise ValidationError(
                f"{name}: expected a numpy array, a list of numbers or a PIL image, got {type(value).__name__}"
            )
    dt = value.dtype
    # Real numbers only: bool, complex, strings, objects, dates are refused.
    if dt.kind not in "fiu":
        raise ValidationError(
            f"{name}: dtype `{dt.name}` is not supported (use float32; float64 and integer arrays are converted)"
        )
    if dt.kind == "f" and dt.itemsize not in (4, 8):
        # float16 (and longdouble): numpy converts; the native module takes 4 and 8 bytes.
        value = value.astype(np.float32)
    elif not dt.isnative:
        value = value.astype(dt.newbyteorder("="))
    code = f"{value.dtype.kind}{value.dtype.itemsize}"
    if code in _LOSSY and (value.dtype.kind == "f" or _beyond_f32_integers(value)):
        warnings.warn(
            f"{name}: converted from dtype {value.dtype.name} to float32",
            PrecisionWarning,
            stacklevel=_caller_level(),
        )
    return value


def _only(kind: str, inputs: Mapping[str, Any], allowed: Sequence[str]) -> None:
    extra = sorted(set(inputs) - set(allowed))
    if extra:
        raise ValidationError(
            f"{kind} takes {', '.join(allowed)}; unknown argument{'s' if len(extra) > 1 else ''} {', '.join(extra)}"
        )


def _need(kind: str, inputs: Mapping[str, Any], *names: str) -> None:
    missing = [n for n in names if inputs.get(n) is None]
    if missing:
        raise ValidationError(f"{kind} needs {', '.join(missing)}")


def _filter(inputs: Mapping[str, Any]) -> Dict[str, Any]:
    f = inputs.get("filter", "gaussian-blur")
    if isinstance(f, Mapping):
        return dict(f)
    op = str(f).replace("_", "-")
    if op == "gaussian-blur":
        return {"op": op, "sigma": inputs.get("sigma", 2.0)}
    if "sigma" in inputs and inputs["sigma"] is not None:
        raise ValidationError(f"image-filter: sigma applies to gaussian-blur only, not {op}")
    return {"op": op}


def _classes(y: Any) -> int:
    import numpy as np

    if isinstance(y, OutputRef):
        raise ValidationError("mlp-train: give classes= when the labels come from another step")
    labels = np.asarray(y)
    if labels.size == 0:
        raise ValidationError("mlp-train: y holds no labels")
    top = labels.max()
    if not np.isfinite(top) or top < 0 or top != np.floor(top):
        raise ValidationError("mlp-train: labels must be integers 0, 1, ... (give classes= to say how many)")
    return int(top) + 1


def _model(model: Any) -> Dict[str, Any]:
    from .mlp import Model

    if isinstance(model, Mapping):
        model = Model(list(model["weights"]), list(model["biases"]))
    elif isinstance(model, (bytes, bytearray, memoryview)):
        model = Model.from_safetensors(bytes(model))
    elif isinstance(model, str) or hasattr(model, "__fspath__"):
        model = Model.load(model)
    if not isinstance(model, Model):
        raise ValidationError(
            "mlp-predict: model must be a gpujobs.Model, {'weights': [...], 'biases': [...]}, safetensors bytes or a file path"
        )
    return {
        "weights": [tensor(w, f"model.weights.{i}") for i, w in enumerate(model.weights)],
        "biases": [tensor(b, f"model.biases.{i}") for i, b in enumerate(model.biases)],
    }


def payload(kind: str, inputs: Mapping[str, Any]) -> Dict[str, Any]:
    """The payload of a job of ``kind`` from its keyword arguments."""
    if kind in ("vector-add", "matmul"):
        _only(kind, inputs, ("a", "b"))
        _need(kind, inputs, "a", "b")
        return {"a": tensor(inputs["a"], "a"), "b": tensor(inputs["b"], "b")}
    if kind == "image-filter":
        _only(kind, inputs, ("image", "filter", "sigma"))
        _need(kind, inputs, "image")
        return {"image": tensor(inputs["image"], "image"), "filter": _filter(inputs)}
    if kind == "mlp-train":
        allowed = ("x", "y", "classes", "hidden", "epochs", "batch", "lr", "seed", "x_test", "y_test", "samples", "features")
        _only(kind, inputs, allowed)
        seed = int(inputs.get("seed", 1))
        data: Dict[str, Any]
        if inputs.get("x") is None and inputs.get("samples") is not None:
            data = {"source": "synthetic", "samples": int(inputs["samples"]), "features": int(inputs.get("features", 64)), "seed": seed}
            classes = int(inputs.get("classes") or 10)
        else:
            _need(kind, inputs, "x", "y")
            data = {"source": "tensors", "x": tensor(inputs["x"], "x"), "y": tensor(inputs["y"], "y")}
            classes = int(inputs["classes"]) if inputs.get("classes") is not None else _classes(inputs["y"])
        hidden = inputs.get("hidden", (256,))
        if isinstance(hidden, int):
            hidden = (hidden,)
        p: Dict[str, Any] = {
            "data": data,
            "classes": classes,
            "hidden": [int(h) for h in hidden],
            "epochs": int(inputs.get("epochs", 5)),
            "batch": int(inputs.get("batch", 128)),
            "lr": float(inputs.get("lr", 0.1)),
            "seed": seed,
        }
        if (inputs.get("x_test") is None) != (inputs.get("y_test") is None):
            raise ValidationError("mlp-train: give both x_test and y_test, or neither")
        if inputs.get("x_test") is not None:
            p["test"] = {"x": tensor(inputs["x_test"], "x_test"), "y": tensor(inputs["y_test"], "y_test")}
        return p
    if kind == "mlp-predict":
        _only(kind, inputs, ("model", "x"))
        _need(kind, inputs, "model", "x")
        return {"model": _model(inputs["model"]), "x": tensor(inputs["x"], "x")}
    # A custom kind: arrays, images and graph outputs are tensors; the rest is JSON.
    return {k: _custom(v, k) for k, v in inputs.items()}


def _custom(value: Any, name: str) -> Any:
    import numpy as np

    if isinstance(value, (np.ndarray, OutputRef)) or _is_pil(value):
        return tensor(value, name)
    if isinstance(value, Mapping):
        return {k: _custom(v, f"{name}.{k}") for k, v in value.items()}
    return value


def output_shape(kind: str, p: Mapping[str, Any], path: str) -> Optional[Tuple[int, ...]]:
    """The shape of output ``path`` of a built-in job with payload ``p`` (before it
    runs: for graph edges), or None when it cannot be known here."""

    def shape(t: Any) -> Tuple[int, ...]:
        if isinstance(t, Mapping):
            return tuple(int(s) for s in t["shape"])
        return tuple(int(s) for s in t.shape)

    if kind == "vector-add" and path == "c":
        return shape(p["a"])
    if kind == "matmul" and path == "c":
        return (shape(p["a"])[0], shape(p["b"])[1])
    if kind == "image-filter" and path == "image":
        return shape(p["image"])
    if kind == "mlp-predict":
        rows = shape(p["x"])[0]
        if path == "labels":
            return (rows,)
        if path == "probs":
            return (rows, shape(p["model"]["biases"][-1])[0])
    if kind == "mlp-train":
        data = p["data"]
        features = shape(data["x"])[1] if data["source"] == "tensors" else int(data["features"])
        dims = [features, *p["hidden"], p["classes"]]
        part, _, index = path.partition(".")
        if index.isdigit() and int(index) < len(dims) - 1:
            i = int(index)
            if part == "weights":
                return (dims[i], dims[i + 1])
            if part == "biases":
                return (dims[i + 1],)
    return None
