"""Job graphs: steps whose inputs are other steps' outputs, submitted at once; each step
runs when its parents have succeeded, where their outputs already are.

    g = gpujobs.Graph()
    blur = g.add("blur", "image-filter", image=img, sigma=2.0, ephemeral=True)
    edges = g.add("edges", "image-filter", image=blur.output("image"), filter="sobel")
    run = client.submit_graph(g)
    edges_image = run.results()["edges"].outputs["image"]

An ``ephemeral`` step's outputs stay in the memory of the worker that made them (never
stored in Redis); a step nothing reads cannot be ephemeral.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

from . import _inputs
from ._inputs import OutputRef
from .errors import ValidationError

if TYPE_CHECKING:
    from ._queue import Job, _Queue
    from ._result import Result


class Step:
    """A step of a graph; ``step.output("image")`` is its output as another step's input."""

    __slots__ = ("name", "kind", "_payload", "_options")

    def __init__(self, name: str, kind: str, payload: Dict[str, Any], options: Dict[str, Any]) -> None:
        self.name = name
        self.kind = kind
        self._payload = payload
        self._options = options

    def output(self, path: str, shape: Optional[Tuple[int, ...]] = None) -> OutputRef:
        """This step's output ``path`` (``image``, ``c``, ``weights.0``). Its shape is
        known for the built-in kinds; give ``shape`` for a custom kind."""
        if shape is None:
            try:
                shape = _inputs.output_shape(self.kind, self._payload, path)
            except (KeyError, IndexError, TypeError, AttributeError):
                shape = None
        if shape is None:
            raise ValidationError(
                f"step `{self.name}` ({self.kind}): no output `{path}` known here; give its shape=(...)"
            )
        return OutputRef(self.name, path, shape)

    def __repr__(self) -> str:
        return f"Step({self.name!r}, {self.kind!r})"


class Graph:
    """A set of steps, built in order (a step reads only steps added before it)."""

    def __init__(self) -> None:
        self._steps: Dict[str, Step] = {}

    @property
    def steps(self) -> List[str]:
        """Step names in the order they were added."""
        return list(self._steps)

    def add(self, name: str, kind: str, /, *, ephemeral: bool = False, **inputs: Any) -> Step:
        """Adds a step named ``name`` (letters, digits, ``_-.``, up to 64) running
        ``kind`` on ``inputs`` (arrays, or other steps' ``.output(...)``); options as
        for ``submit`` (``priority``, ``device``, ``max_attempts``, ``timeout``)."""
        if name in self._steps:
            raise ValidationError(f"invalid graph: two steps are named `{name}`")
        options: Dict[str, Any] = {k: inputs.pop(k) for k in ("priority", "device", "max_attempts", "timeout") if k in inputs}
        for v in inputs.values():
            if isinstance(v, OutputRef) and v.step not in self._steps:
                raise ValidationError(f"invalid graph: step `{name}` reads from `{v.step}`, which is not a step of this graph")
        if ephemeral:
            options["ephemeral"] = True
        step = Step(name, kind, _inputs.payload(kind, inputs), options)
        self._steps[name] = step
        return step

    def leaves(self) -> List[str]:
        """The steps no other step reads: whose results a caller wants."""
        read: Set[str] = set()
        for s in self._steps.values():
            _refs(s._payload, read)
        return [n for n in self._steps if n not in read]

    def _nodes(self) -> List[Tuple[str, str, Dict[str, Any], Dict[str, Any]]]:
        return [(s.name, s.kind, s._payload, s._options) for s in self._steps.values()]


def _refs(v: Any, into: Set[str]) -> None:
    if isinstance(v, dict):
        src = v.get("from")
        if isinstance(src, dict) and "job" in src:
            into.add(src["job"])
            return
        for x in v.values():
            _refs(x, into)
    elif isinstance(v, list):
        for x in v:
            _refs(x, into)


class GraphRun:
    """A submitted graph: its jobs by step name."""

    def __init__(self, jobs: Dict[str, "Job"], leaves: List[str], queue: "_Queue") -> None:
        #: Every step's job handle.
        self.jobs = jobs
        #: The steps nothing reads.
        self.leaves = leaves
        self._queue = queue

    def __getitem__(self, step: str) -> "Job":
        return self.jobs[step]

    def results(self, timeout: Optional[float] = None) -> Dict[str, "Result"]:
        """The results of the leaves by step name (an intermediate's outputs may never
        have been stored; ask its job for them if it was not ephemeral)."""
        leaves = [self.jobs[n] for n in self.leaves]
        return dict(zip(self.leaves, self._queue.results(leaves, timeout)))
