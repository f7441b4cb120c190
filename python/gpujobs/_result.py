"""What a finished job gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from .errors import JobCancelled, JobFailed

if TYPE_CHECKING:
    import numpy as np

    from .mlp import Model


@dataclass(frozen=True)
class Check:
    """The output compared with the kind's reference implementation (``check=True``)."""

    #: The error measured (its meaning is ``metric``; 0 when skipped).
    error: float
    #: The largest error accepted.
    tolerance: float
    #: What ``error`` measures (``max abs``, ``rel Frobenius``, ...).
    metric: str
    #: Why nothing was checked, when nothing was (the reference would cost too much).
    skipped: Optional[str] = None

    @property
    def passed(self) -> bool:
        """Whether the output is within tolerance (a skipped check passes)."""
        return self.skipped is not None or self.error <= self.tolerance


@dataclass(frozen=True)
class Result:
    """A succeeded job: its outputs as numpy arrays and where and how it ran."""

    #: The job's id.
    id: str
    #: Its kind (``matmul``, ...).
    kind: str
    #: Each output tensor by its path: ``c`` (matmul, vector-add), ``image``
    #: (image-filter), ``probs``/``labels`` (mlp-predict), ``weights.0``, ``biases.0``,
    #: ... (mlp-train). float32, C order, owning the worker's buffer (no copy).
    outputs: Dict[str, "np.ndarray"]
    #: The device that ran it, as the CLI prints it (``cpu: AMD EPYC ...``,
    #: ``gpu0: NVIDIA H100 ...``).
    device: str
    #: Seconds per stage: ``queue_wait_s``, ``prepare_s``, ``h2d_s``, ``compute_s``,
    #: ``d2h_s``, ``run_s``, ``total_s``.
    timings: Dict[str, float]
    #: The comparison with the reference, when asked for (``check=True``).
    check: Optional[Check]
    #: Attempts it took.
    attempts: int
    #: The worker that ran it.
    worker: Optional[str]
    #: One line describing the output.
    summary: str
    #: The kind's output JSON: tensors as ``{"shape", "blob"}``, plus the rest
    #: (``epochs`` of mlp-train).
    output: Dict[str, Any] = field(repr=False)
    _record: Any = field(repr=False, compare=False)

    def __getitem__(self, output: str) -> "np.ndarray":
        """``result["c"]`` is ``result.outputs["c"]``."""
        return self.outputs[output]

    @property
    def record(self) -> Dict[str, Any]:
        """The job's record as the wire format has it (docs/wire-format.md), without
        outputs; built when first asked for."""
        cached: Optional[Dict[str, Any]] = self.__dict__.get("_record_dict")
        if cached is None:
            cached = dict(self._record.to_dict())
            object.__setattr__(self, "_record_dict", cached)
        return cached

    @property
    def epochs(self) -> List[Dict[str, Any]]:
        """mlp-train: loss and accuracy per epoch (``test_*`` with held-out data)."""
        return list(self.output.get("epochs", []))

    def model(self) -> "Model":
        """mlp-train: the trained model."""
        from .mlp import Model

        return Model.from_outputs(self.outputs)


def from_record(d: Dict[str, Any]) -> Result:
    """The Result of a finished job (the native module's summary of its record), or the
    exception for a job that ended without one."""
    state = d["state"]
    if state != "succeeded":
        error = d.get("error") or {}
        cls = JobCancelled if state == "cancelled" else JobFailed
        reason = error.get("message", "no result")
        raise cls(
            f"job {d['id']} ended {state}: {reason}",
            job_id=str(d["id"]),
            state=state,
            error_class=error.get("class"),
            reason=reason,
        )
    check = d.get("check")
    return Result(
        id=str(d["id"]),
        kind=str(d["kind"]),
        outputs=d["outputs"],
        device=str(d.get("device", "")),
        timings=dict(d.get("timings") or {}),
        check=Check(**check) if check else None,
        attempts=int(d["attempts"]),
        worker=d.get("worker"),
        summary=str(d.get("summary", "")),
        output=d.get("output") or {},
        _record=d["record"],
    )
