"""asprof sessions: one per container, every chosen event recorded into one JFR.

The JVM writes the recording, so it goes to the container's /tmp. A session is started
with ``--timeout`` so a harness killed with SIGKILL cannot leave the profiler running for
longer than the window plus a margin; it is marked ``starting`` *before* ``asprof start`` runs,
so an interrupt during that call still leads to a stop. Each start and stop also reads the
container's cgroup CPU counter, so the report can set the profile against the CPU the
container really used in the window; a session with alloc also reads the JVM's own per-thread
allocation counters (``Thread.print -e``) right after its start and before a normal stop, so
the report can set the sampled bytes against the bytes the JVM counted.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Sequence

from ..config import EVENTS
from ..errors import CaptureError
from ..util import last_line
from . import jvm as fkjvm

log = logging.getLogger(__name__)

# asprof option per event when several are recorded in one session
EVENT_OPTIONS = {
    "cpu": ["-e", "cpu"],
    "alloc": ["--alloc", "512k"],
    "lock": ["--lock", "10us"],
    "wall": ["--wall", "20ms"],
}
WALL_INTERVAL = "20ms"
MARGIN_S = 30
# A constant script (the asprof arguments arrive as "$@", never inside the script): print the
# container's cgroup CPU time in ns (v1 cpuacct, else v2 cpu.stat), then run the command.
CGROUP_THEN = (
    'c=$(cat /sys/fs/cgroup/cpuacct/cpuacct.usage 2>/dev/null '
    '|| awk \'/^usage_usec/ {printf "%.0f", $2 * 1000}\' /sys/fs/cgroup/cpu.stat 2>/dev/null); '
    'echo "cgroup_cpu_ns=${c:-}"; exec "$@"'
)


#: The kernel setting that decides what perf_events may sample (read inside the container: it
#: is the host's). At 1 or under, perf_events samples kernel stacks too.
PARANOID_FILE = "/proc/sys/kernel/perf_event_paranoid"


def resolve_cpu_engine(setting: str, paranoid: int | None) -> tuple[str, str]:
    """(what ``-e`` names for cpu, why) for the ``cpu_engine`` setting.

    ``auto`` takes async-profiler's ``cpu`` (perf_events) where the kernel lets perf_events
    sample kernel stacks (``perf_event_paranoid`` <= 1), else ``itimer``. Not async-profiler's
    own fallback there, ctimer: the kernel checks a thread's CPU timer at its scheduler tick on
    that same thread, so CPU a thread spends in bursts shorter than a tick is credited to the
    long loop it runs next (on the demo, ``priceOrder`` read x1.04 its ThreadMXBean CPU with
    ctimer, x0.95-1.03 and x0.99 on average with itimer, whose process-wide timer fires on
    whatever thread runs at the tick; docs/perf/benchmarks.md, "Hotspot accuracy"). perf_events
    at paranoid 2 samples user mode only, and kernel time then goes missing from the profile."""
    if setting != "auto":
        return setting, "set by cpu_engine"
    if paranoid is not None and paranoid <= 1:
        return "cpu", f"perf_event_paranoid {paranoid}: perf_events with kernel stacks"
    seen = "unreadable" if paranoid is None else str(paranoid)
    return "itimer", f"perf_event_paranoid {seen}: no kernel stacks from perf_events, itimer"


# `Thread.print -e` prints, per Java thread, its id (#N, never reused) and the bytes it has
# allocated (HotSpot's per-thread counter, the one ThreadMXBean reads: TLAB waste excluded) in
# an exact unit. No library reads a thread dump; one regular expression does.
_THREAD_ALLOC_RE = re.compile(r'^".*" #(\d+)\s.*?\ballocated=(\d+)([BKMG])\b', re.M)
_UNIT_BYTES = {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def thread_allocations(dump: str) -> dict[int, int]:
    """{Java thread id: bytes allocated so far} from a ``Thread.print -e`` dump."""
    return {int(m.group(1)): int(m.group(2)) * _UNIT_BYTES[m.group(3)] for m in _THREAD_ALLOC_RE.finditer(dump)}


def allocated_between(start: dict[int, int], stop: dict[int, int]) -> tuple[int, int]:
    """(bytes the JVM's threads allocated between two dumps, threads of the first dump gone
    from the second: what those allocated in between is not counted)."""
    total = sum(b - start.get(tid, 0) for tid, b in stop.items() if b >= start.get(tid, 0))
    return total, len(set(start) - set(stop))


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def parse_events(spec: str | Sequence[str]) -> tuple[str, ...]:
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for e in (x.strip() for x in items):
        if not e:
            continue
        if e == "all":
            out.extend(EVENTS)
            continue
        if e not in EVENTS:
            raise CaptureError(f"unknown event {e!r}", f"use one of {', '.join(EVENTS)} or all")
        out.append(e)
    if not out:
        raise CaptureError("no event chosen", f"use one of {', '.join(EVENTS)} or all")
    return tuple(dict.fromkeys(out))


def asprof_start_args(asprof: str, events: Sequence[str], pid: int, out_file: str, timeout_s: int,
                      interval: str = "", cpu_engine: str = "cpu") -> list[str]:
    """`asprof start` recording every chosen event into one JFR, stopping by itself after timeout_s.
    ``cpu_engine`` is what ``-e`` names for the cpu event (config ``cpu_engine``)."""
    args = [asprof, "start"]
    if len(events) == 1:
        args += ["-e", cpu_engine if events[0] == "cpu" else events[0]]
        if interval:
            args += ["-i", interval]
        elif events[0] == "wall":
            # the same 20 ms as beside other events: alone, asprof's own wall default (50 ms)
            # applied, and a sample stood for more time than the report said
            args += ["-i", WALL_INTERVAL]
    else:
        for e in events:
            args += (["-e", cpu_engine] if e == "cpu" else EVENT_OPTIONS[e]) + (
                ["-i", interval] if e == "cpu" and interval else [])
        if "cpu" not in events:
            # without -e the default event is cpu; pick the first chosen one instead
            args += ["-e", events[0]]
    return args + ["--timeout", str(timeout_s), "-o", "jfr", "-f", out_file, str(pid)]


def asprof_stop_args(asprof: str, pid: int, out_file: str) -> list[str]:
    return [asprof, "stop", "-o", "jfr", "-f", out_file, str(pid)]


def split_cgroup_line(text: str) -> tuple[int | None, str]:
    """(cgroup CPU ns or None, the rest of the output) from a CGROUP_THEN command's stdout."""
    first, _, rest = text.partition("\n")
    if first.startswith("cgroup_cpu_ns="):
        value = first.split("=", 1)[1].strip()
        return (int(value) if value.isdigit() else None), rest
    return None, text


@dataclass
class Session:
    replica: object                 # targets.base.Replica
    events: tuple[str, ...]
    pid: int
    jfr_in_container: str
    asprof: str
    jfrconv: str
    jvm: fkjvm.JvmInfo
    image_id: str = ""
    container_started: str = ""
    state: str = "new"              # new, starting, started, failed, stopped
    start_output: str = ""
    error: str | None = None
    started_at: str | None = None
    stopped_at: str | None = None
    started_mono: float | None = None
    cpu_ns_start: int | None = None
    cpu_ns_stop: int | None = None
    cpu_engine: str = "cpu"         # what -e named for cpu (the cpu_engine setting, resolved)
    cpu_engine_why: str = ""
    alloc_threads_start: dict[int, int] | None = None   # Thread.print -e after the start
    alloc_threads_stop: dict[int, int] | None = None    # ... and before a normal stop
    results: list[dict] = field(default_factory=list)

    @property
    def jvm_allocated(self) -> tuple[int, int] | None:
        """(bytes the JVM counted in the window, threads that ended in it), when both dumps read."""
        if self.alloc_threads_start is None or self.alloc_threads_stop is None:
            return None
        return allocated_between(self.alloc_threads_start, self.alloc_threads_stop)

    @property
    def label(self) -> str:
        return self.replica.label  # type: ignore[attr-defined]

    @property
    def service(self) -> str:
        return self.replica.service  # type: ignore[attr-defined]

    @property
    def needs_stop(self) -> bool:
        return self.state in ("starting", "started")

    @property
    def cgroup_cpu_seconds(self) -> float | None:
        if self.cpu_ns_start is None or self.cpu_ns_stop is None:
            return None
        return round((self.cpu_ns_stop - self.cpu_ns_start) / 1e9, 3)


class Profilers:
    """Start, stop and query the asprof sessions of one run, across containers of one target."""

    def __init__(self, target, container_path: str, stamp: str, jvm_flags: Sequence[str],
                 cpu_engine: str = "cpu"):
        self.target = target
        self.cpu_engine = cpu_engine
        base = container_path.rstrip("/")
        self.asprof = f"{base}/bin/asprof"
        self.jfrconv = f"{base}/bin/jfrconv"
        self.stamp = stamp
        self.jvm_flags = tuple(jvm_flags)
        self.sessions: list[Session] = []

    def check_mounted(self, replica) -> str:
        rc, out, _ = self.target.exec_result(replica, [self.asprof, "--version"])
        if rc != 0:
            raise CaptureError(f"async-profiler is not available in {replica.label} ({self.asprof})",
                               "start the stack with profiling: `inv up --profiling`")
        return out.strip().splitlines()[0] if out.strip() else ""

    def refuse_if_active(self, replica, pid: int) -> None:
        """A second flamekit (or anyone) already profiling this JVM: refuse, leave it alone."""
        text = self.status(replica, pid)
        if "running" in text.lower():
            raise CaptureError(f"{replica.label} is already being profiled (asprof status: {last_line(text)})",
                               "wait for the other capture to finish; this run started no profiler "
                               "(its warm-up load, under a second of it, may have reached the stack)")

    def prepare(self, replica, events: Sequence[str], pid: int | None = None) -> Session:
        """Find the JVM and check it can be profiled; the caller adds the session to ``sessions``."""
        self.check_mounted(replica)
        info = fkjvm.jvm_of(self.target, replica, self.jvm_flags, pid)
        if info.flags_missing:
            log.warning("%s: JVM %d runs without %s (inlined frames may be missing)",
                        replica.label, info.pid, " ".join(info.flags_missing))
        self.refuse_if_active(replica, info.pid)
        sess = Session(replica=replica, events=tuple(events), pid=info.pid,
                       jfr_in_container=f"/tmp/flamekit-{self.stamp}-{replica.label}.jfr",
                       asprof=self.asprof, jfrconv=self.jfrconv, jvm=info)
        if "cpu" in sess.events:
            sess.cpu_engine, sess.cpu_engine_why = resolve_cpu_engine(
                self.cpu_engine, self.paranoid(replica) if self.cpu_engine == "auto" else None)
        try:
            sess.image_id = self.target.image_id(replica)
            sess.container_started = self.target.started_at(replica)
        except Exception as exc:  # nice to have, never a reason to fail
            log.debug("image id of %s: %s", replica.label, exc)
        # recordings an earlier, killed flamekit left behind (older than 10 minutes: never a live run's)
        self.target.exec_result(replica, ["find", "/tmp", "-maxdepth", "1", "-name", "flamekit-*", "-mmin", "+10",
                                          "-exec", "rm", "-rf", "{}", "+"])
        return sess

    def paranoid(self, replica) -> int | None:
        """The host's ``perf_event_paranoid`` as the container sees it; None if unreadable."""
        try:
            rc, out, _ = self.target.exec_result(replica, ["cat", PARANOID_FILE])
        except Exception as exc:  # only decides the engine: itimer works everywhere
            log.debug("%s: %s", PARANOID_FILE, exc)
            return None
        text = out.strip()
        return int(text) if rc == 0 and text.lstrip("-").isdigit() else None

    def start(self, sess: Session, duration_s: int, interval: str = "") -> None:
        args = asprof_start_args(sess.asprof, sess.events, sess.pid, sess.jfr_in_container,
                                 duration_s + MARGIN_S, interval, sess.cpu_engine)
        sess.state = "starting"  # before the call: an interrupt during it must still lead to a stop
        rc, out, err = self.target.exec_result(sess.replica, ["sh", "-c", CGROUP_THEN, "sh", *args])
        sess.cpu_ns_start, out = split_cgroup_line(out)
        sess.start_output = (out + err).strip()
        if rc != 0:
            sess.state = "failed"
            sess.error = f"asprof could not start: {last_line(sess.start_output)}"
            raise CaptureError(f"asprof could not start in {sess.label}: {last_line(sess.start_output)}",
                               "check the privileges (SYS_PTRACE, seccomp) with `inv up --profiling`")
        sess.state = "started"
        sess.started_at = now_iso()
        sess.started_mono = time.monotonic()
        log.debug("%s: %s", sess.label, sess.start_output)
        if "alloc" in sess.events:
            sess.alloc_threads_start = self.thread_allocations(sess)

    def thread_allocations(self, sess: Session) -> dict[int, int] | None:
        """The JVM's per-thread allocated bytes (``asprof jcmd <pid> Thread.print -e``: a thread
        dump, one safepoint); None when the JVM does not answer or prints no counters."""
        try:
            rc, out, _ = self.target.exec_result(sess.replica, [sess.asprof, "jcmd", str(sess.pid),
                                                                "Thread.print", "-e"])
        except Exception as exc:  # a figure beside the profile, never a reason to fail it
            log.debug("%s: Thread.print -e: %s", sess.label, exc)
            return None
        found = thread_allocations(out) if rc == 0 else {}
        return found or None

    def stop(self, sess: Session, count_allocations: bool = False) -> None:
        """Stop one session; idempotent. A start still in flight when the stop ran is caught by
        asking `asprof status` and stopping again. ``count_allocations``: read the JVM's
        allocation counters first (the normal end of a window; not on an interrupt's cleanup)."""
        if not sess.needs_stop:
            return
        was_starting = sess.state == "starting"
        if count_allocations and sess.state == "started" and "alloc" in sess.events:
            sess.alloc_threads_stop = self.thread_allocations(sess)
        rc, out, err = self.target.exec_result(
            sess.replica, ["sh", "-c", CGROUP_THEN, "sh",
                           *asprof_stop_args(sess.asprof, sess.pid, sess.jfr_in_container)])
        sess.cpu_ns_stop, out = split_cgroup_line(out)
        text = (out + err).strip()
        if rc != 0 and "not active" not in text.lower():
            sess.error = sess.error or f"asprof stop failed: {last_line(text)}"
        if was_starting:
            for _ in range(3):
                time.sleep(0.5)
                if "running" in self.status(sess.replica, sess.pid).lower():
                    self.target.exec_result(sess.replica, asprof_stop_args(sess.asprof, sess.pid,
                                                                           sess.jfr_in_container))
                    break
        sess.state = "stopped"
        sess.stopped_at = now_iso()

    def stop_all(self) -> list[str]:
        """Stop every session that may be running; keep going past failures; return them."""
        problems = []
        for sess in self.sessions:
            try:
                self.stop(sess)
            except Exception as exc:  # keep stopping the others: a profiler left running is the worst outcome
                sess.error = sess.error or f"stop failed: {exc}"
                problems.append(f"{sess.label}: {exc}")
                log.warning("%s: could not stop the profiler: %s", sess.label, exc)
        return problems

    def status(self, replica, pid: int) -> str:
        rc, out, err = self.target.exec_result(replica, [self.asprof, "status", str(pid)])
        return (out + err).strip()

    def remove_files(self) -> None:
        for sess in self.sessions:
            try:
                self.target.exec_result(sess.replica, ["rm", "-f", sess.jfr_in_container])
            except Exception as exc:  # the container may be gone: nothing left to remove then
                log.debug("%s: %s", sess.label, exc)
