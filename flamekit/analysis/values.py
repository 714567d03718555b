"""Reading figures out of a manifest written by any flamekit version: missing keys, wrong
types and non-finite numbers give None, never an exception (a report must survive a
partial or older manifest)."""
from __future__ import annotations

import math
from typing import Any, Mapping


def get(obj: Any, *keys: str, default: Any = None) -> Any:
    """``obj[k1][k2]...``, or ``default`` as soon as a level is not a mapping or is None."""
    for key in keys:
        if not isinstance(obj, Mapping):
            return default
        obj = obj.get(key)
        if obj is None:
            return default
    return obj


def mapping(obj: Any, key: str) -> Mapping:
    """``obj[key]`` when it is a mapping, else an empty one."""
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def number(value: Any) -> float | None:
    """A finite float from a number or a numeric string; None otherwise (bools included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            f = float(value)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def error_fraction(value: Any) -> float | None:
    """k6 reports error rates as fractions; a value over 1 can only be a percentage."""
    f = number(value)
    if f is None:
        return None
    return f / 100.0 if f > 1.0 else f
