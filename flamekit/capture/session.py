"""Capture: attach async-profiler to the JVM in each container while k6 holds the rate.

One asprof session per service records a JFR inside the container (the JVM
writes the file, so it goes to the container's /tmp), started with --timeout so
a lost harness cannot leave it running, and stopped in ``finally`` and on
SIGINT/SIGTERM. jfrconv, run by the container's own JVM, turns the JFR into one
HTML flame graph and one collapsed-stack file per event; both are copied into
the run directory, and the HTML also under the seed's name.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from .. import __version__
from . import jvm as fkjvm
from ..config import EVENTS, Settings
from ..errors import CaptureError, FlamekitError

log = logging.getLogger(__name__)

ENGINES = ("perf_events", "ctimer", "itimer", "cpu-clock", "perf")
# asprof option per event when several are recorded in one session
EVENT_OPTIONS = {
    "cpu": ["-e", "cpu"],
    "alloc": ["--alloc", "512k"],
    "lock": ["--lock", "10us"],
    "wall": ["--wall", "20ms"],
}
SINGLE_EVENT = {"cpu": "cpu", "alloc": "alloc", "lock": "lock", "wall": "wall"}
MARGIN_S = 30


def new_stamp(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")


def make_run_dir(runs_dir: Path, stamp: str) -> tuple[Path, str]:
    """A fresh run directory: never reuse one (a second run in the same second gets -2, -3...)."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        name = stamp if n == 1 else f"{stamp}-{n}"
        path = runs_dir / name
        try:
            path.mkdir()
            return path, name
        except FileExistsError:
            n += 1


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
                      interval: str = "") -> list[str]:
    """`asprof start` recording every chosen event into one JFR, stopping by itself after timeout_s."""
    args = [asprof, "start"]
    if len(events) == 1:
        args += ["-e", SINGLE_EVENT[events[0]]]
        if interval:
            args += ["-i", interval]
    else:
        for e in events:
            opt = list(EVENT_OPTIONS[e])
            if e == "cpu" and interval:
                opt += ["-i", interval]
            args += opt
        if "cpu" not in events:
            # without -e the default event is cpu; pick the first chosen one instead
            first = events[0]
            args += ["-e", SINGLE_EVENT[first]]
    args += ["--timeout", str(timeout_s), "-o", "jfr", "-f", out_file, str(pid)]
    return args


def asprof_stop_args(asprof: str, pid: int, out_file: str) -> list[str]:
    return [asprof, "stop", "-o", "jfr", "-f", out_file, str(pid)]


# alloc and lock are weighed by what matters (bytes allocated, time waited), not by
# sample count; their sample counts are kept in a second collapsed file for the statistics
WEIGHTS = {"alloc": "bytes", "lock": "ns"}


def jfrconv_args(jfrconv: str, event: str, jfr: str, out: str, total: bool = False,
                 title: str | None = None) -> list[str]:
    args = [jfrconv, f"--{event}"]
    if total:
        args.append("--total")
    if title and out.endswith(".html"):
        args += ["--title", title]
    return args + [jfr, out]


def conversions(event: str) -> list[tuple[str, bool]]:
    """(output suffix, weighted) pairs to produce for one event."""
    if event in WEIGHTS:
        return [("collapsed", True), ("samples.collapsed", False), ("html", True)]
    return [("collapsed", False), ("html", False)]


def detect_engine(jfr_bytes: bytes, asprof_output: str = "") -> str:
    """The CPU engine async-profiler used: from the JFR's "engine" setting, else asprof's output."""
    for m in re.finditer(rb"engine", jfr_bytes):
        window = jfr_bytes[m.end():m.end() + 48]
        for name in ENGINES:
            if name.encode() in window:
                return "perf_events" if name in ("perf", "cpu-clock") else name
    text = asprof_output.lower()
    for name in ("ctimer", "itimer"):
        if name in text:
            return name
    return "unknown"


def count_samples(collapsed: str) -> int:
    total = 0
    for line in collapsed.splitlines():
        head, _, n = line.rstrip().rpartition(" ")
        if head and n.isdigit():
            total += int(n)
    return total


def exclusive_copy(src: Path, dest: Path) -> Path:
    """Copy without ever overwriting: open the destination with O_EXCL."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fi, open(dest, "xb") as fo:
        shutil.copyfileobj(fi, fo)
    return dest


# ------------------------------------------------------------------ signals
class Interrupted(FlamekitError):
    exit_code = 130


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM (and SIGINT) raise in the main thread, so every `finally` runs and asprof is stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        raise Interrupted(f"interrupted by {signal.Signals(signum).name}",
                          "the profilers were stopped; partial results are kept in the run directory")

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# ------------------------------------------------------------------ per-service session
def jvm_of(stack, service: str, expected_flags: Sequence[str], pid: int | None = None) -> fkjvm.JvmInfo:
    """Find the JVM in a service's container and read its arguments from its PerfData."""
    out = stack.exec(service, fkjvm.PROC_LIST_COMMAND, what=f"listing processes in {service}")
    proc = fkjvm.choose_pid(service, fkjvm.parse_proc_list(out), pid)
    rc, path, _ = stack.exec_result(service, ["sh", "-c", 'ls /tmp/hsperfdata_*/"$1" 2>/dev/null | head -n 1',
                                              "sh", str(proc.pid)])
    path = path.strip()
    if rc == 0 and path:
        with tempfile.TemporaryDirectory(prefix="flamekit-perfdata-") as tmp:
            local = Path(tmp) / "perfdata"
            try:
                stack.copy_from(service, path, local)
                counters = fkjvm.parse_perfdata(local.read_bytes())
                return fkjvm.jvm_info_from_perfdata(proc.pid, counters, expected_flags)
            except (FlamekitError, ValueError, OSError) as exc:
                log.debug("perfdata of %s unreadable: %s", service, exc)
    rc, environ, _ = stack.exec_result(service, ["cat", f"/proc/{proc.pid}/environ"])
    return fkjvm.jvm_info_from_environ(proc.pid, proc.cmdline, environ if rc == 0 else "", expected_flags)


@dataclass
class Session:
    service: str
    events: tuple[str, ...]
    pid: int
    jfr_in_container: str
    asprof: str
    jfrconv: str
    jvm: fkjvm.JvmInfo
    image_id: str = ""
    started: bool = False
    stopped: bool = False
    start_output: str = ""
    error: str | None = None
    results: list[dict] = field(default_factory=list)


class Capture:
    """Start, stop and collect async-profiler sessions across services of one stack."""

    def __init__(self, stack, settings: Settings, run_dir: Path, stamp: str,
                 say: Callable[[str], None] = lambda s: None):
        self.stack = stack
        self.s = settings
        self.run_dir = run_dir
        self.stamp = stamp
        self.say = say
        self.sessions: list[Session] = []
        base = settings.profiler.container_path.rstrip("/")
        self.asprof = f"{base}/bin/asprof"
        self.jfrconv = f"{base}/bin/jfrconv"

    def check_profiler_mounted(self, service: str) -> str:
        rc, out, err = self.stack.exec_result(service, [self.asprof, "--version"])
        if rc != 0:
            raise CaptureError(
                f"async-profiler is not available in {service} ({self.asprof})",
                "start the stack with profiling: `inv up --profiling`",
            )
        return out.strip().splitlines()[0] if out.strip() else ""

    def prepare(self, service: str, events: Sequence[str], pid: int | None = None) -> Session:
        self.check_profiler_mounted(service)
        info = jvm_of(self.stack, service, self.s.jvm_flags, pid)
        if info.flags_missing:
            log.warning("%s: JVM %d runs without %s (inlined frames may be missing)",
                        service, info.pid, " ".join(info.flags_missing))
        sess = Session(
            service=service, events=tuple(events), pid=info.pid,
            jfr_in_container=f"/tmp/flamekit-{self.stamp}-{service}.jfr",
            asprof=self.asprof, jfrconv=self.jfrconv, jvm=info,
        )
        try:
            sess.image_id = self.stack.image_id(service)
        except FlamekitError:
            sess.image_id = ""
        self.sessions.append(sess)
        return sess

    def start(self, sess: Session, duration_s: int, interval: str = "") -> None:
        args = asprof_start_args(sess.asprof, sess.events, sess.pid, sess.jfr_in_container,
                                 duration_s + MARGIN_S, interval)
        rc, out, err = self.stack.exec_result(sess.service, args)
        sess.start_output = (out + err).strip()
        if rc != 0:
            raise CaptureError(f"asprof could not start in {sess.service}: {_last(sess.start_output)}",
                               "check the privileges (SYS_PTRACE, seccomp) with `inv up --profiling`")
        sess.started = True
        log.debug("%s: %s", sess.service, sess.start_output)

    def stop(self, sess: Session) -> None:
        if not sess.started or sess.stopped:
            return
        rc, out, err = self.stack.exec_result(sess.service, asprof_stop_args(sess.asprof, sess.pid,
                                                                             sess.jfr_in_container))
        sess.stopped = True
        if rc != 0:
            text = (out + err).strip()
            if "not active" not in text.lower():
                sess.error = f"asprof stop failed: {_last(text)}"

    def stop_all(self) -> None:
        for sess in self.sessions:
            try:
                self.stop(sess)
            except Exception as exc:  # keep stopping the others
                sess.error = sess.error or f"stop failed: {exc}"
                log.warning("%s: could not stop the profiler: %s", sess.service, exc)

    def status(self, service: str, pid: int) -> str:
        rc, out, err = self.stack.exec_result(service, [self.asprof, "status", str(pid)])
        return (out + err).strip()

    def collect(self, sess: Session) -> list[dict]:
        """Copy the JFR out, convert it per event inside the container, copy HTML and collapsed out."""
        svc_dir = self.run_dir / sess.service
        svc_dir.mkdir(parents=True, exist_ok=True)
        jfr_local = svc_dir / "profile.jfr"
        try:
            self.stack.copy_from(sess.service, sess.jfr_in_container, jfr_local)
        except FlamekitError as exc:
            raise CaptureError(f"no profile came back from {sess.service}: {exc}",
                               "the JVM must be able to write its /tmp") from None
        if not jfr_local.is_file() or jfr_local.stat().st_size == 0:
            raise CaptureError(f"the profile of {sess.service} is empty",
                               "the JVM wrote nothing; check `docker logs` of the service")
        engine = detect_engine(jfr_local.read_bytes(), sess.start_output)
        results = []
        for event in sess.events:
            res = {"service": sess.service, "event": event, "engine": engine if event == "cpu" else event,
                   "interval": self.s.interval or None, "samples": 0, "jfr": f"{sess.service}/profile.jfr",
                   "jvm": sess.jvm.to_dict(), "image_id": sess.image_id, "pid": sess.pid, "error": None}
            try:
                res.update(self._convert(sess, event, svc_dir))
            except FlamekitError as exc:
                res["error"] = str(exc)
            results.append(res)
        sess.results = results
        return results

    def _convert(self, sess: Session, event: str, svc_dir: Path) -> dict:
        out: dict[str, Path] = {}
        title = f"{sess.service} {event} {self.run_dir.name}"
        for suffix, weighted in conversions(event):
            remote = f"/tmp/flamekit-{self.stamp}-{sess.service}-{event}.{suffix}"
            args = jfrconv_args(sess.jfrconv, event, sess.jfr_in_container, remote, weighted, title)
            rc, so, se = self.stack.exec_result(sess.service, args)
            if rc != 0:
                raise CaptureError(f"jfrconv --{event} failed in {sess.service}: {_last(so + se)}",
                                   "the JFR is kept in the run directory")
            local = svc_dir / f"{event}.{suffix}"
            try:
                self.stack.copy_from(sess.service, remote, local)
            finally:
                self.stack.exec_result(sess.service, ["rm", "-f", remote])
            out[suffix] = local
        counts = out.get("samples.collapsed", out["collapsed"])
        samples = count_samples(counts.read_text(errors="replace"))
        if samples == 0:
            raise CaptureError(f"the {event} profile of {sess.service} holds no samples",
                               "was the service busy? check the load figures, or raise --duration")
        seed_name = self.s.flamegraph_dir / f"{sess.service}-{event}-{self.run_dir.name}.html"
        exclusive_copy(out["html"], seed_name)
        res = {"samples": samples, "collapsed": f"{sess.service}/{event}.collapsed",
               "html": f"{sess.service}/{event}.html", "weight": WEIGHTS.get(event, "samples"),
               "weight_total": count_samples(out["collapsed"].read_text(errors="replace")),
               "flamegraph": str(_rel(seed_name, self.s.root))}
        if "samples.collapsed" in out:
            res["samples_collapsed"] = f"{sess.service}/{event}.samples.collapsed"
        return res

    def cleanup(self) -> None:
        for sess in self.sessions:
            with contextlib.suppress(Exception):
                self.stack.exec_result(sess.service, ["rm", "-f", sess.jfr_in_container])


def _last(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


def _rel(p: Path, root: Path) -> Path:
    try:
        return p.resolve().relative_to(root.resolve())
    except ValueError:
        return p


def write_manifest(run_dir: Path, manifest: dict) -> Path:
    path = run_dir / "manifest.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=str))
    tmp.replace(path)
    return path


def base_manifest(settings: Settings, stamp: str, services: Sequence[str], events: Sequence[str],
                  duration: int, warmup: int, tps: float, environment: dict) -> dict:
    return {
        "flamekit_version": __version__,
        "stamp": stamp,
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "finished": None,
        "status": "running",
        "error": None,
        "settings": {"duration": duration, "warmup": warmup, "tps": tps,
                     "interval": settings.interval or None, "events": list(events),
                     "services": list(services), "privileges": settings.privileges,
                     "jvm_flags": list(settings.jvm_flags), "project_name": settings.project_name,
                     "compose_files": [str(f) for f in settings.compose_files]},
        "environment": environment,
        "load": None,
        "captures": [],
    }
