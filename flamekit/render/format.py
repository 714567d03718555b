"""How figures read, in every output (markdown and HTML): shares as percentages,
deltas as points, weights in their units, markdown tables and relative links.

One copy of each rule, so a report and a page never disagree on a figure.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..analysis.collapsed import WEIGHT_SAMPLES, Profile
from ..analysis.events import event_label
from ..analysis.values import number


def pct(share: float | None, digits: int = 1) -> str:
    """``63.2%`` of a fraction; ``n/a`` for None."""
    return "n/a" if share is None else f"{share * 100:.{digits}f}%"


def pct_min(share: float) -> str:
    """Like :func:`pct`, but a tiny non-zero share reads ``<0.1%``, not ``0.0%``."""
    return "<0.1%" if 0.0 < share < 0.0005 else pct(share)


def pts(delta: float) -> str:
    """A difference of fractions in signed percentage points: ``+30.0``."""
    return f"{delta * 100:+.1f}"


def count(n: Any) -> str:
    """``1,500`` (or ``1,500.5``) of a number; ``n/a`` when it is not one."""
    f = number(n)
    if f is None:
        return "n/a"
    return f"{int(f):,}" if float(f).is_integer() else f"{f:,.1f}"


def fig(value: Any, unit: str = "", digits: int = 1) -> str:
    """``12.1 ms`` of a number; ``n/a`` when it is not one."""
    f = number(value)
    return "n/a" if f is None else f"{f:,.{digits}f}{unit}"


def code(name: str) -> str:
    """A method or class name as inline markdown code, safe inside a table cell."""
    name = name.replace("`", "'").replace("|", "\\|")
    return f"`{name}`"


def cell(value: Any) -> str:
    """Any text, safe as one markdown table cell or list item."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def link(target: str | os.PathLike[str], base_dir: str | os.PathLike[str]) -> str:
    """The URL of ``target`` relative to ``base_dir``, so outputs open from the file system."""
    rel = os.path.relpath(Path(target).resolve(), Path(base_dir).resolve())
    return quote(Path(rel).as_posix(), safe="/._-~")


def table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> list[str]:
    """The lines of a markdown table; ``align`` holds "l" or "r" per column."""
    align = align or ["l"] * len(header)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def scale(weight: str, total: float) -> tuple[str, float]:
    """(unit, divisor) for a table column of a weighted profile's values."""
    if weight == "bytes":
        return ("KB", 1e3) if total < 10e6 else ("MB", 1e6)
    if weight == "ns":
        return ("µs", 1e3) if total < 10e6 else ("ms", 1e6)
    return weight, 1.0


def amount(weight: str, value: float) -> str:
    """A weight total for a reader: ``1.2 GB allocated``, ``812.3 ms of lock wait``."""
    if weight == "bytes":
        for unit, div in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
            if value >= div:
                return f"{value / div:,.1f} {unit} allocated"
        return f"{int(value):,} bytes allocated"
    if weight == "ns":
        for unit, div in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
            if value >= div:
                return f"{value / div:,.1f} {unit} of lock wait"
        return f"{int(value):,} ns of lock wait"
    return f"{count(value)} {weight}"


def measure(event: str, weight: str) -> str:
    """What a capture's shares are of: "allocated bytes", "lock wait time", "CPU samples"."""
    if weight == "bytes":
        return "allocated bytes"
    if weight == "ns":
        return "lock wait time"
    if weight != WEIGHT_SAMPLES:
        return f"{event_label(event)} {weight}"
    return f"{event_label(event)} samples"


def profile_amount(profile: Profile) -> str:
    """``1,000 samples`` or ``1.2 GB allocated, 249 samples``."""
    if not profile.weighted:
        return f"{profile.total:,} samples"
    n = f"{profile.samples:,} samples" if profile.samples else "sample count not recorded"
    return f"{amount(profile.weight, profile.total)}, {n}"
