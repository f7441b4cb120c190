"""Clients of a queue: :class:`Client` (Redis, workers elsewhere) and :class:`Cluster`
(in-process), with the :class:`Job` handles they return."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, Generator, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import _inputs, _native
from ._result import Result, from_record
from .errors import ValidationError

if TYPE_CHECKING:
    from .graph import Graph, GraphRun

_OPTIONS = ("priority", "device", "max_attempts", "timeout", "id")


class Job:
    """A submitted job: wait for its result (``result()`` or ``await job``), look at its
    state, cancel it."""

    __slots__ = ("id", "_core", "_check")

    def __init__(self, core: Any, id: str, check: Optional[Any] = None) -> None:
        #: The job's id (what ``gpujobs status ID`` takes).
        self.id = id
        self._core = core
        self._check = check

    def result(self, timeout: Optional[float] = None) -> Result:
        """Waits for the job (``timeout`` seconds, ``None``: no end; Ctrl-C stops the
        wait) and returns its result. Raises :class:`~gpujobs.errors.JobFailed` when it
        failed, :class:`~gpujobs.errors.TimeoutError` when it has not ended in time."""
        return from_record(self._core.wait(self.id, timeout, self._check))

    async def result_async(self, timeout: Optional[float] = None) -> Result:
        """:meth:`result` for asyncio: waits without blocking the event loop."""
        record = await self._core.wait_async(self.id, timeout, self._check)
        return from_record(record)

    def __await__(self) -> Generator[Any, None, Result]:
        return self.result_async().__await__()

    def state(self) -> Optional[str]:
        """``waiting``, ``queued``, ``placed``, ``running``, ``succeeded``, ``failed``,
        ``dead``, ``cancelled``; ``None`` when the record is gone (expired)."""
        rec = self._core.status(self.id)
        return None if rec is None else str(rec["state"])

    def record(self) -> Optional[Dict[str, Any]]:
        """The job's record (docs/wire-format.md) with ``outputs`` once it succeeded."""
        rec: Optional[Dict[str, Any]] = self._core.status(self.id)
        return rec

    def cancel(self) -> str:
        """Cancels the job: ``cancelled``, ``requested`` (running; asked to stop),
        ``finished:<state>`` or ``not-found``."""
        return str(self._core.cancel(self.id))

    def __repr__(self) -> str:
        return f"Job({self.id!r})"


def _split(kwargs: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    options = {k: kwargs.pop(k) for k in _OPTIONS if k in kwargs}
    return kwargs, options


class _Queue:
    """What :class:`Client` and :class:`Cluster` share."""

    _core: Any

    def _prepare(self, kind: str, inputs: Mapping[str, Any], options: Mapping[str, Any]) -> Any:
        if not isinstance(kind, str) or not kind:
            raise ValidationError(f"kind must be a job kind's name, got {kind!r}")
        return self._core.prepare(kind, _inputs.payload(kind, inputs), dict(options))

    def submit(self, kind: str, /, *, check: bool = False, **inputs: Any) -> Job:
        """Validates and submits one job; returns its handle.

        ``inputs`` are the kind's arguments (``a=``, ``b=`` for matmul and vector-add;
        ``image=``, ``filter=``, ``sigma=`` for image-filter; ...). Options:
        ``priority`` (``high``/``normal``/``low``), ``device`` (``auto``/``cpu``/``gpu``),
        ``max_attempts``, ``timeout`` (seconds one attempt may run), ``id``. With
        ``check=True`` the result is compared with the reference implementation.
        Bad input raises :class:`~gpujobs.errors.ValidationError` before anything is
        stored."""
        inputs, options = _split(dict(inputs))
        prepared = self._prepare(kind, inputs, options)
        return Job(self._core, self._core.submit(prepared), prepared if check else None)

    def submit_many(
        self, jobs: Iterable[Union[Tuple[str, Mapping[str, Any]], Sequence[Any]]], **options: Any
    ) -> List[Job]:
        """Submits many jobs, each ``(kind, {inputs})``, with the same ``options``; all
        are validated before any is sent, then sent many at a time. Returns the handles
        in order. When the queue refuses one part-way, the rest are not sent and the
        error's ``accepted`` lists the ids that were."""
        prepared = [self._prepare(kind, inputs, options) for kind, inputs in jobs]
        ids = self._core.submit_many(prepared)
        return [Job(self._core, i) for i in ids]

    def results(self, jobs: Iterable[Job], timeout: Optional[float] = None) -> List[Result]:
        """Waits for many jobs at once (on Redis their states are polled together) and
        returns their results in order; raises for the first that failed."""
        ids = [j.id for j in jobs]
        return [from_record(r) for r in self._core.wait_many(ids, timeout)]

    def run(self, kind: str, /, *, timeout: Optional[float] = None, check: bool = False, **inputs: Any) -> Result:
        """Submits one job and waits for its result (``timeout`` seconds for the wait;
        the attempt's own limit is not set here)."""
        return self.submit(kind, check=check, **inputs).result(timeout)

    def job(self, id: str) -> Job:
        """A handle for a job submitted elsewhere (by the CLI, another process)."""
        return Job(self._core, id)

    def submit_graph(self, graph: "Graph") -> "GraphRun":
        """Submits every step of ``graph`` at once (nothing is submitted when one is
        refused); returns the handles by step name."""
        from .graph import GraphRun

        ids = self._core.submit_graph(graph._nodes())
        return GraphRun(
            {name: Job(self._core, i) for name, i in zip(graph.steps, ids)},
            graph.leaves(),
            self,
        )

    def status(self, id: str) -> Optional[Dict[str, Any]]:
        """A job's record (with ``outputs`` once it succeeded), ``None`` when unknown."""
        rec: Optional[Dict[str, Any]] = self._core.status(id)
        return rec

    def cancel(self, id: str) -> str:
        """Cancels a job (see :meth:`Job.cancel`)."""
        return str(self._core.cancel(id))

    def dead_letters(self, max: int = 100) -> List[Dict[str, Any]]:
        """The most recent dead letters: ``id``, ``kind``, ``reason``, ``attempts``,
        ``at_ms``, ``raw``."""
        dead: List[Dict[str, Any]] = self._core.dead_letters(max)
        return dead

    def retry(self, id: str) -> bool:
        """Submits a dead-lettered job again; ``False`` when it is not dead-lettered."""
        return bool(self._core.retry_dead(id))

    def workers(self) -> List[Dict[str, Any]]:
        """The live workers, as they announce themselves."""
        w: List[Dict[str, Any]] = self._core.workers()
        return w

    def lanes(self) -> List[Dict[str, Any]]:
        """Per lane and priority: queued, running, ... (what ``gpujobs status`` shows)."""
        lanes: List[Dict[str, Any]] = self._core.lanes()
        return lanes

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._core.describe()})"


def _env_bytes(name: str) -> Optional[int]:
    from ._units import parse_bytes

    text = os.environ.get(name)
    return None if not text else parse_bytes(text, name)


class Client(_Queue):
    """A client of a Redis queue that ``gpujobs worker`` and ``gpujobs scheduler``
    processes serve.

    Settings default to the CLI's environment variables: ``GPUJOBS_REDIS_URL``
    (``redis://127.0.0.1:6379``), ``GPUJOBS_NAMESPACE`` (``gpujobs``),
    ``GPUJOBS_PARTITIONS``, ``GPUJOBS_MAX_BLOB_BYTES``, ``GPUJOBS_MAX_ENTRY_BYTES``.
    Connecting tries for ``connect_timeout`` seconds, then raises
    :class:`~gpujobs.errors.ConnectionError` (refused credentials:
    :class:`~gpujobs.errors.AuthenticationError`, at once)."""

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        namespace: Optional[str] = None,
        partitions: Optional[int] = None,
        max_blob_bytes: Optional[int] = None,
        max_entry_bytes: Optional[int] = None,
        connect_timeout: float = 3.0,
    ) -> None:
        url = url or os.environ.get("GPUJOBS_REDIS_URL") or "redis://127.0.0.1:6379"
        namespace = namespace or os.environ.get("GPUJOBS_NAMESPACE") or "gpujobs"
        if partitions is None and os.environ.get("GPUJOBS_PARTITIONS"):
            partitions = int(os.environ["GPUJOBS_PARTITIONS"])
        if max_blob_bytes is None:
            max_blob_bytes = _env_bytes("GPUJOBS_MAX_BLOB_BYTES")
        if max_entry_bytes is None:
            max_entry_bytes = _env_bytes("GPUJOBS_MAX_ENTRY_BYTES")
        self._core = _native.Core.redis(
            url, namespace, partitions, max_blob_bytes, max_entry_bytes, float(connect_timeout)
        )


class Cluster(_Queue):
    """An in-process cluster: an embedded queue, a scheduler, a CPU worker and (with a
    CUDA build on a GPU machine, unless ``device="cpu"``) a worker per GPU. Start it
    once and submit many jobs; ``close()`` (or a ``with`` block) stops it.

    ``concurrency``: jobs the CPU worker runs at once (default: one per core; each job
    also uses every core for its own work)."""

    def __init__(self, *, concurrency: Optional[int] = None, device: str = "auto") -> None:
        n = concurrency if concurrency is not None else (os.cpu_count() or 1)
        if n < 1:
            raise ValidationError(f"concurrency must be at least 1, got {n}")
        self._core = _native.Core.embedded(int(n), device)

    def close(self) -> None:
        """Stops the workers (after their running jobs) and the scheduler."""
        self._core.close()

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
