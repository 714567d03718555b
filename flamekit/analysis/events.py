"""What an async-profiler event's stacks mean: how they end, and what a reader calls them."""
from __future__ import annotations

from typing import Mapping


def event_kind(event: str | None) -> str:
    """Group an async-profiler event into how its stacks end.

    ``"alloc"`` (alloc, live: the leaf is the allocated class), ``"lock"`` (the leaf is
    the lock class), ``"cpu"`` otherwise (cpu, wall, itimer, ctimer, cpu-clock...:
    the leaf is the running method).
    """
    e = (event or "cpu").lower()
    if e in ("alloc", "live") or e.startswith("alloc"):
        return "alloc"
    if e == "lock" or e.startswith("lock"):
        return "lock"
    return "cpu"


def event_label(event: str | None) -> str:
    """A reader's name for an event's samples ("CPU", "allocation"...)."""
    e = (event or "cpu").lower()
    return {
        "cpu": "CPU", "ctimer": "CPU", "itimer": "CPU", "cpu-clock": "CPU",
        "wall": "wall-clock", "alloc": "allocation", "live": "live-object",
        "lock": "lock-contention", "nativemem": "native-memory",
    }.get(e, e)


#: engine names of perf_events CPU sampling, as recorded in a capture's ``engine``
PERF_ENGINES = ("perf_events", "perf", "cpu", "cpu-clock")


def user_mode_only(cap: Mapping) -> bool:
    """A cpu capture (its manifest entry) of a perf_events engine that held no kernel frame:
    where the kernel allows no kernel profiling, perf_events samples user mode only."""
    return str(cap.get("engine") or "").lower() in PERF_ENGINES and cap.get("kernel_frames") is False
