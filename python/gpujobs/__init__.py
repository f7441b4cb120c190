"""gpujobs from Python: compute jobs (matmul, vector add, image filters, MLP training and
prediction) on GPU and CPU workers, in-process or behind a durable Redis queue; numpy
arrays in, numpy arrays out.

    import gpujobs
    r = gpujobs.run("matmul", a=a, b=b)            # in-process, the GIL released
    c = r.outputs["c"]

    client = gpujobs.Client("redis://host:6379")   # gpujobs workers elsewhere
    job = client.submit("image-filter", image=img, filter="sobel")
    edges = job.result(timeout=60).outputs["image"]   # or: await job

The guide is docs/python.md. Importing this module starts nothing (no thread, no
connection) and does not import numpy.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any, List, Optional

from . import _native, errors
from ._inputs import OutputRef
from ._queue import Client, Cluster, Job
from ._result import Check, Result
from .errors import GpujobsError
from .graph import Graph, GraphRun, Step
from .mlp import Model, Prediction

__version__: str = _native.__version__

_default: Optional[Cluster] = None
_default_lock = threading.Lock()


def _default_cluster() -> Cluster:
    """The process's in-process cluster for :func:`run`, started on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Cluster()
            atexit.register(_close_default)
        return _default


def _close_default() -> None:
    global _default
    with _default_lock:
        if _default is not None:
            _default.close()
            _default = None


def run(kind: str, /, *, device: str = "auto", timeout: Optional[float] = None, check: bool = False, **inputs: Any) -> Result:
    """Runs one job in this process and returns its result: numpy arrays in
    (``a=``, ``b=``, ``image=``, ...), ``result.outputs`` out. The first call starts an
    in-process cluster (a CPU worker, and a worker per GPU with a CUDA build) that later
    calls reuse; the GIL is released while the job runs.

    ``device``: ``auto`` (placement decides), ``cpu`` or ``gpu``. ``check=True``
    compares the output with the reference implementation (``result.check``)."""
    return _default_cluster().run(kind, device=device, timeout=timeout, check=check, **inputs)


def cuda_devices() -> List[str]:
    """The CUDA devices this build and machine have (empty without)."""
    found, _why = _native.cuda_devices()
    return list(found)


__all__ = [
    "Check",
    "Client",
    "Cluster",
    "GpujobsError",
    "Graph",
    "GraphRun",
    "Job",
    "Model",
    "OutputRef",
    "Prediction",
    "Result",
    "Step",
    "cuda_devices",
    "errors",
    "run",
]
