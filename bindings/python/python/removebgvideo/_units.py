"""One unit convention: seconds (floats) in the public API, milliseconds only on the wire
between this package and its native module (``timeout_ms``)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["to_ms"]


def to_ms(seconds: Any) -> Any:
    """Seconds (the public unit) as the milliseconds the native side reads. JSON has no NaN or
    infinity: those travel as the strings ``NaN``, ``Infinity`` and ``-Infinity``, so the
    native range check refuses them naming the field. Anything but a number goes as it is, to
    be refused there with its field's name too."""
    if seconds is None or isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return seconds
    if math.isnan(seconds):
        return "NaN"
    if math.isinf(seconds):
        return "Infinity" if seconds > 0 else "-Infinity"
    return float(seconds) * 1000.0
