"""The exceptions gpujobs raises: one hierarchy under :class:`GpujobsError`.

Each also derives from the built-in exception a Python programmer would catch for it
(``ValueError`` for bad input, ``TimeoutError``, ``ConnectionError``, ``KeyError`` for an
unknown job), so existing ``except`` clauses keep working.
"""

from __future__ import annotations

import builtins
from typing import Any, List, Optional


class GpujobsError(Exception):
    """Base class of every gpujobs error."""

    #: For a ``submit_many`` refused part-way: the ids of the jobs that were accepted
    #: before the refusal (the rest were not sent). Empty otherwise.
    accepted: List[str]

    def __init__(self, message: str, *args: Any) -> None:
        super().__init__(message, *args)
        self.accepted = []

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ValidationError(GpujobsError, ValueError):
    """The job was refused before anything was stored: a wrong shape, an unsupported
    dtype, an absurd size, an unknown kind or option. The message is the CLI's."""


class JobFailed(GpujobsError):
    """The job ended without a result (state ``failed`` or ``dead``)."""

    job_id: str
    #: ``failed``, ``dead`` or ``cancelled``.
    state: str
    #: ``permanent`` (bad input: retrying cannot help), ``temporary`` (its attempts ran
    #: out), ``cancelled``, or ``None`` when the record holds no error.
    error_class: Optional[str]
    #: The worker's message.
    reason: str

    def __init__(
        self,
        message: str,
        job_id: str = "",
        state: str = "",
        error_class: Optional[str] = None,
        reason: str = "",
    ) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.state = state
        self.error_class = error_class
        self.reason = reason


class JobCancelled(JobFailed):
    """The job was cancelled on request."""


class QueueFull(GpujobsError):
    """Redis is above its high-water mark: submits are refused until jobs finish (nothing
    accepted is lost; retry later)."""


class ConnectionError(GpujobsError, builtins.ConnectionError):
    """Redis could not be reached or failed."""


class AuthenticationError(ConnectionError):
    """Redis refused the credentials in the URL."""


class ConfigurationError(GpujobsError, ValueError):
    """The queue's settings do not fit what Redis holds (a partition count that differs
    from the stored one, a malformed URL or namespace)."""


class TimeoutError(GpujobsError, builtins.TimeoutError):
    """The job did not end within the timeout (it may still run; wait again or cancel)."""

    job_id: str = ""


class NotFound(GpujobsError, KeyError):
    """No job with this id (never submitted, or its record expired)."""


class Refused(GpujobsError):
    """The operation can never succeed on this job as asked (say, retrying a job whose
    inputs were freed)."""


class DeviceUnavailable(GpujobsError, RuntimeError):
    """``device="gpu"`` was asked for and this build or machine has no GPU."""


class PrecisionWarning(UserWarning):
    """An input array was converted to float32 with possible loss (float64, 32- and
    64-bit integers), as the CLI's ``.npy`` reader warns."""


__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "ConnectionError",
    "DeviceUnavailable",
    "GpujobsError",
    "JobCancelled",
    "JobFailed",
    "NotFound",
    "PrecisionWarning",
    "QueueFull",
    "Refused",
    "TimeoutError",
    "ValidationError",
]
