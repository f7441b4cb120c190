"""Sizes as the CLI spells them (``64MiB``, ``1GB``, ``512``)."""

from __future__ import annotations

from .errors import ValidationError

_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3,
}


def parse_bytes(text: str, what: str) -> int:
    """Bytes from ``text``; ``what`` names the setting in the error."""
    t = text.strip().lower().replace(" ", "")
    i = len(t)
    while i > 0 and t[i - 1].isalpha():
        i -= 1
    number, unit = t[:i], t[i:]
    try:
        value = float(number)
    except ValueError:
        raise ValidationError(f"{what}: `{text}` is not a size (say 64MiB or 1048576)") from None
    if unit not in _UNITS or value < 0:
        raise ValidationError(f"{what}: `{text}` is not a size (say 64MiB or 1048576)")
    return int(value * _UNITS[unit])
