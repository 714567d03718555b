"""The one reader of async-profiler's collapsed stacks: frames, profiles, sample counts.

A collapsed file holds one stack a line, ``frame1;frame2;...;leaf COUNT`` (root first).
Alloc and lock captures converted with ``jfrconv --total`` hold *weights* (bytes allocated,
nanoseconds of lock wait) in ``<event>.collapsed`` and the sample counts of the same stacks
in ``<event>.samples.collapsed``: a :class:`Profile` says which (``weight``) and keeps the
sample count its sampling error comes from (``sample_count``), never the weight total.

Everything later in the analysis works on :class:`Profile`; nothing else parses these files.
"""
from __future__ import annotations

import functools
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import ReportError
from ..runs import RUN_HINT

log = logging.getLogger(__name__)

#: What a collapsed file's numbers count: samples, or weights (alloc bytes, lock wait ns).
WEIGHT_SAMPLES = "samples"
#: The file of sample counts next to a weighted ``<event>.collapsed``.
SAMPLES_SUFFIX = ".samples.collapsed"

# async-profiler frame-type annotations: _[j] JIT, _[i] inlined, _[k] kernel,
# _[0] interpreted, _[1] C1 ... (and for alloc leaves _[i] in / _[k] outside TLAB).
_SUFFIX_RE = re.compile(r"_\[[0-9a-z]\]$")
# JVM hidden classes carry their address: ``Foo$$Lambda$12/0x0000000800c0b000`` (JDK 17
# class names) or ``Foo$$Lambda$76.0x00007fe4ed085a70.handle`` (jfrconv frames).
_HIDDEN_CLASS_RE = re.compile(r"[./]0x[0-9a-fA-F]+(?=[./]|$)")
_THREAD_RE = re.compile(r"^\[.* tid=\d+\]$")
_COUNT_LINE_RE = re.compile(r"\S\s+\d+\s*$")


@functools.lru_cache(maxsize=1 << 16)  # a report cleans the same few thousand frames ~500,000 times
def clean_frame(frame: str) -> str:
    """Return the display name of one collapsed-stack frame.

    * strips async-profiler's type annotation (``_[j]``, ``_[i]``, ``_[k]``, ``_[0]``...);
    * drops the address of JVM hidden classes (``Foo$$Lambda$12/0x0000000800c0b000``
      becomes ``Foo$$Lambda$12``; ``Foo$$Lambda$76.0x00007fe4ed085a70.handle`` becomes
      ``Foo$$Lambda$76.handle``) so lambdas compare across runs;
    * turns Java's internal class names into dotted ones
      (``demo/order/PricingEngine.priceOrder`` -> ``demo.order.PricingEngine.priceOrder``).
      Frames that are not Java methods are left alone: native paths (``/lib/...``),
      C++ symbols (``Foo::bar``), pseudo frames (``[unknown]``, thread frames).
    """
    name = _SUFFIX_RE.sub("", frame.strip())
    if name.startswith("[") or name.startswith("/") or "::" in name or " " in name:
        return name
    name = _HIDDEN_CLASS_RE.sub("", name)
    return name.replace("/", ".")


def is_thread_frame(frame: str) -> bool:
    """True for the ``[name tid=N]`` root frames async-profiler adds with ``--threads``."""
    return bool(_THREAD_RE.match(frame))


@dataclass
class Profile:
    """Stacks of one capture: ``stacks`` maps a tuple of cleaned frames (root first,
    leaf last) to its sample count, or to its weight for a weighted profile;
    ``total`` is the sum of all values.

    ``weight`` names what the values count: ``"samples"`` (the default), ``"bytes"``
    (alloc converted with ``jfrconv --total``), ``"ns"`` (lock wait). Shares are
    always of ``total``; ``sample_count`` is the number of samples behind a weighted
    profile, the figure every sampling error is computed from (see :attr:`samples`).
    """

    stacks: dict[tuple[str, ...], int]
    total: int
    source: str = ""
    weight: str = WEIGHT_SAMPLES
    sample_count: int | None = None

    @property
    def weighted(self) -> bool:
        """True when the values are weights (bytes, ns...), not sample counts."""
        return self.weight != WEIGHT_SAMPLES

    @property
    def samples(self) -> int:
        """The number of samples, for uncertainty: ``sample_count`` when known, else
        ``total`` for a profile of counts; 0 (unknown) for a weighted profile whose
        count was not recorded (never the weight total)."""
        if self.sample_count is not None:
            return int(self.sample_count)
        return self.total if not self.weighted else 0


def _looks_like_path(value: str) -> bool:
    if "\n" in value or not value.strip():
        return False
    if os.path.exists(value):
        return True
    return not _COUNT_LINE_RE.search(value)


def _read(path_or_text: str | os.PathLike[str]) -> tuple[str, str]:
    """(text, source path or "") of a path (``Path`` or an existing/path-like string) or
    of the text itself; ReportError when a file cannot be read."""
    if not (isinstance(path_or_text, os.PathLike)
            or (isinstance(path_or_text, str) and _looks_like_path(path_or_text))):
        return str(path_or_text), ""
    path = Path(path_or_text)
    try:
        return path.read_text(encoding="utf-8", errors="replace"), str(path)
    except FileNotFoundError:
        raise ReportError(f"no collapsed stacks at {path}", RUN_HINT) from None
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror or exc}",
                          "check the file's permissions") from None


def _records(text: str) -> Iterator[tuple[str, int] | None]:
    """(stack text, count) of each non-blank line; None for a line without a count."""
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            yield None
        else:
            yield stack_text, int(count_text)


def parse_collapsed(path_or_text: str | os.PathLike[str], weight: str = WEIGHT_SAMPLES,
                    sample_count: int | None = None) -> Profile:
    """Parse async-profiler collapsed output (``frame1;frame2;...;leaf COUNT`` per line).

    Accepts a path (``Path`` or an existing/path-like string) or the text itself.
    Frames are cleaned with :func:`clean_frame`; identical cleaned stacks are merged.
    Blank lines are skipped, malformed lines are skipped with a logged warning.
    ``weight`` says what the numbers are (``"samples"``, or ``"bytes"``/``"ns"`` for
    ``jfrconv --total`` output) and ``sample_count`` the samples behind weights.
    Raises ReportError when a file cannot be read.
    """
    text, source = _read(path_or_text)
    merged: dict[tuple[str, ...], int] = {}
    bad = 0
    for record in _records(text):
        if record is None:
            bad += 1
            continue
        stack_text, count = record
        if count <= 0:
            continue
        frames = tuple(clean_frame(f) for f in stack_text.strip().split(";") if f.strip())
        if not frames:
            bad += 1
            continue
        merged[frames] = merged.get(frames, 0) + count
    if bad:
        log.warning("skipped %d malformed line(s) in %s", bad, source or "collapsed text")
    return Profile(stacks=merged, total=sum(merged.values()), source=source,
                   weight=weight or WEIGHT_SAMPLES, sample_count=sample_count)


def count_samples(text_or_path: str | os.PathLike[str]) -> int:
    """The sum of a collapsed file's counts (its samples, or its weight total for a
    ``jfrconv --total`` file), without building a profile; malformed lines count 0.
    Takes the text or a path, like :func:`parse_collapsed`."""
    text, _ = _read(text_or_path)
    return sum(record[1] for record in _records(text) if record is not None)


__all__ = ["Profile", "WEIGHT_SAMPLES", "SAMPLES_SUFFIX", "clean_frame", "is_thread_frame",
           "parse_collapsed", "count_samples"]
