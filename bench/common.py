"""Shared helpers of the flamekit benchmarks (bench/*.py).

What lives here:

* the command line every script shares (--quick, --out, --json, --workdir, --project/--port);
* :class:`BenchStack`: one compose project of the demo stack, driven through ``inv`` subprocesses
  exactly as a user would (``up --profiling``, ``sample-data``, ``profile``, ``down``), with each
  ``inv`` run timed, its output lines time-stamped and its memory measured;
* :class:`ContainerCpu` / :class:`CpuSampler`: a container's CPU time from its cgroup (v1 or v2,
  from the host's cgroup tree, else through ``docker exec``);
* :class:`NoiseMonitor`: how busy the (shared) host was while a benchmark ran, split into our
  own containers and everybody else's;
* machine facts, small statistics, and the Markdown section writer that keeps each script to
  its own part of ``docs/perf/benchmarks.md`` (between ``<!-- bench:NAME -->`` markers).

Only the standard library and flamekit itself are used. Nothing here kills a process it did not
start, and every stack a script starts is torn down in ``finally``.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BENCH_DIR = ROOT / "bench"
OUT_DIR = BENCH_DIR / "out"
DOC = ROOT / "docs" / "perf" / "benchmarks.md"
K6_SCRIPT = ROOT / "scripts" / "perf" / "order-flow.js"
PROFILER_DIR = ROOT / "docker" / "profiling" / "async-profiler"
INV = [sys.executable, "-m", "invoke"]

#: Hotspot cost variables of the demo stack (docker/docker-compose.yml); the benchmarks pin
#: them to 1 unless a run changes one on purpose, so a cost set in the caller's shell cannot
#: leak into the figures.
COST_VARS = ("PRICING_COST", "ORDER_JSON_COST", "LEDGER_LOCK_COST", "PAYMENT_LATENCY_COST")
#: Section order in a freshly created benchmarks.md.
SECTIONS = ("summary", "accuracy", "overhead", "harness", "load_accuracy")

HEADER = """# flamekit benchmarks

Figures measured by the scripts in `bench/` against the demo stack (`docker/demo/`), with the
real async-profiler, k6 and Docker engine. Regenerate everything with
`.venv/bin/python bench/run_all.py` (about 50 minutes), or one part with
`.venv/bin/python bench/<script>.py`; `--quick` is the short variant CI runs (its figures are
not meant for this page). Each script rewrites only its own section below.

Every section names the machine it ran on and how busy that machine was: figures from a
shared machine are noisy, so each one comes with its repeat count and spread
(min-max, and the coefficient of variation *cv* = stdev / mean).
"""


# =========================================================================== command line
def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true",
                   help="short runs and few repeats (CI): checks the script works, figures are rough")
    p.add_argument("--out", type=Path, default=DOC,
                   help=f"Markdown file whose section this script rewrites (default {DOC.relative_to(ROOT)})")
    p.add_argument("--json", type=Path, default=None,
                   help="also write the figures as JSON to this path (default bench/out/<script>.json)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where run directories, k6 logs and flame graphs go (default bench/out/<script>-<stamp>)")
    p.add_argument("--project", default=None,
                   help="use this already running demo stack (compose project name) instead of starting one; "
                        "it is left running (needs --port)")
    p.add_argument("--port", type=int, default=None, help="gateway port of the --project stack")
    return p


def cpu_engine_option(p: argparse.ArgumentParser) -> None:
    from flamekit.config import CPU_ENGINES
    p.add_argument("--cpu-engine", default=None, choices=CPU_ENGINES,
                   help="flamekit's cpu_engine setting for every capture (default: the configured one)")


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if (args.project is None) != (args.port is None):
        p.error("--project and --port go together")


# =========================================================================== small helpers
def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def stamp() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def say(msg: str = "") -> None:
    print(msg, flush=True)


def hms(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def _run(cmd: Sequence[str], timeout: float = 30) -> str:
    try:
        p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return p.stdout.strip() if p.returncode == 0 else ""


# =========================================================================== statistics
def summary(values: Iterable[float | None]) -> dict[str, Any]:
    """n, mean, median, min, max, stdev (sample) and cv of the numbers among ``values``."""
    xs = [float(v) for v in values if v is not None and isinstance(v, (int, float)) and math.isfinite(v)]
    if not xs:
        return {"n": 0, "mean": None, "median": None, "min": None, "max": None, "stdev": None, "cv": None}
    mean = statistics.fmean(xs)
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return {"n": len(xs), "mean": mean, "median": statistics.median(xs), "min": min(xs), "max": max(xs),
            "stdev": sd, "cv": (sd / abs(mean)) if mean else None}


def fmt_num(v: float | None, digits: int = 1, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:,.{digits}f}{unit}"


def fmt_pct(v: float | None, digits: int = 1) -> str:
    return "n/a" if v is None else f"{v * 100:.{digits}f}%"


def fmt_spread(s: Mapping[str, Any], digits: int = 1, unit: str = "", pct: bool = False) -> str:
    """``12.3 (11.0-13.9, cv 5%, n=3)`` from a :func:`summary`; shares with pct=True."""
    if not s or not s.get("n"):
        return "n/a"
    f = (lambda v: fmt_pct(v, digits)) if pct else (lambda v: fmt_num(v, digits, unit))
    if s["n"] == 1:
        return f"{f(s['mean'])} (n=1)"
    cv = f", cv {s['cv'] * 100:.0f}%" if s.get("cv") is not None else ""
    return f"{f(s['mean'])} ({f(s['min'])}-{f(s['max'])}{cv}, n={s['n']})"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b:
        return None
    return a / b


# =========================================================================== machine facts
def machine_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "date": now_utc().isoformat(timespec="seconds"),
        "host": platform.node(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                facts["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    facts["dockerd"] = _run(["docker", "version", "--format", "{{.Server.Version}}"]) or None
    cg = _run(["docker", "info", "--format", "{{.CgroupVersion}} {{.CgroupDriver}}"]).split()
    facts["cgroup"] = f"v{cg[0]} ({cg[1]})" if len(cg) == 2 else None
    try:
        from flamekit.load import k6 as fkload
        facts["k6"] = fkload.k6_version(fkload.find_k6())
    except Exception:  # noqa: BLE001 - a fact we could not read is just missing
        facts["k6"] = None
    try:
        from flamekit.profiler import install as fkprofiler
        inst = fkprofiler.installed_profiler(PROFILER_DIR) or {}
        facts["async_profiler"] = inst.get("version")
    except Exception:  # noqa: BLE001
        facts["async_profiler"] = None
    commit = _run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _run(["git", "-C", str(ROOT), "status", "--porcelain"])
    facts["git"] = (commit + ("+uncommitted changes" if dirty else "")) if commit else None
    return facts


def facts_line(f: Mapping[str, Any]) -> str:
    k6 = (f.get("k6") or "k6 ?").split(" (")[0]
    return (f"{f.get('cores')} cores, {f.get('memory_gib')} GiB, kernel {f.get('kernel')}, "
            f"dockerd {f.get('dockerd')} (cgroup {f.get('cgroup')}), {k6}, "
            f"async-profiler {f.get('async_profiler')}, Python {f.get('python')}, flamekit {f.get('git')}")


# =========================================================================== cgroup CPU
def _cgroup_roots() -> list[tuple[str, Path]]:
    """(kind, directory holding one cgroup per container) candidates on the host."""
    base = Path("/sys/fs/cgroup")
    return [
        ("v1", base / "cpuacct" / "docker"),
        ("v1", base / "cpu,cpuacct" / "docker"),
        ("v1", base / "cpuacct" / "system.slice"),
        ("v1", base / "cpu,cpuacct" / "system.slice"),
        ("v2", base / "system.slice"),
        ("v2", base / "docker"),
    ]


_CONTAINER_DIR_RE = re.compile(r"^(?:docker-)?([0-9a-f]{64})(?:\.scope)?$")


def parse_cpu_stat(text: str) -> int | None:
    """cgroup v2 ``cpu.stat`` -> usage in ns (it counts usage_usec)."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "usage_usec" and parts[1].isdigit():
            return int(parts[1]) * 1000
    return None


def _read_usage_file(d: Path) -> int | None:
    """CPU usage (ns) of one cgroup directory, v1 (cpuacct.usage) or v2 (cpu.stat)."""
    try:
        return int((d / "cpuacct.usage").read_text().strip())
    except (OSError, ValueError):
        pass
    try:
        return parse_cpu_stat((d / "cpu.stat").read_text())
    except OSError:
        return None


def container_cgroup_dir(container_id: str) -> Path | None:
    for _kind, root in _cgroup_roots():
        for name in (container_id, f"docker-{container_id}.scope"):
            d = root / name
            if d.is_dir() and _read_usage_file(d) is not None:
                return d
    return None


class ContainerCpu:
    """CPU time (ns) used by one container since it started, from its cgroup.

    The host's cgroup tree is read directly when it is visible (v1: cpuacct.usage, v2:
    cpu.stat usage_usec); otherwise ``docker exec CONTAINER cat`` of the same files inside the
    container (a short-lived ``cat`` whose own CPU lands in the container's cgroup too).
    """

    def __init__(self, container_id: str):
        self.container_id = container_id
        self.dir = container_cgroup_dir(container_id)
        self.how = f"host {self.dir}" if self.dir else "docker exec"

    def read_ns(self) -> int | None:
        if self.dir is not None:
            v = _read_usage_file(self.dir)
            if v is not None:
                return v
        out = _run(["docker", "exec", self.container_id, "sh", "-c",
                    "cat /sys/fs/cgroup/cpuacct/cpuacct.usage 2>/dev/null || cat /sys/fs/cgroup/cpu.stat"],
                   timeout=20)
        if out.isdigit():
            return int(out)
        return parse_cpu_stat(out)


class PeriodicPoller:
    """Calls ``poll()`` at entry, every ``period`` seconds in a thread, and once more at exit:
    what the bench's samplers share (cgroup CPU, the ground-truth counters)."""

    join_s = 10.0

    def __init__(self, period: float):
        self.period = period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        self.poll()

        def loop() -> None:
            while not self._stop.wait(self.period):
                self.poll()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(self.join_s)
        self.poll()


class CpuSampler(PeriodicPoller):
    """Samples a container's cgroup CPU time every ``period`` seconds in a thread, so the CPU
    of any time window inside the sampled span can be read afterwards (linear interpolation)."""

    def __init__(self, cpu: ContainerCpu, period: float = 0.25):
        super().__init__(period)
        self.cpu = cpu
        self.samples: list[tuple[float, int]] = []

    def poll(self) -> None:
        v = self.cpu.read_ns()
        if v is not None:
            self.samples.append((time.monotonic(), v))

    def at(self, t: float) -> float | None:
        s = self.samples
        if not s or t < s[0][0] - 1e-6 or t > s[-1][0] + 1e-6:
            return None
        for (t0, v0), (t1, v1) in zip(s, s[1:]):
            if t0 <= t <= t1:
                return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
        return float(s[-1][1]) if abs(t - s[-1][0]) <= 1e-6 else float(s[0][1])

    def seconds(self, t0: float, t1: float) -> float | None:
        """CPU-seconds used between monotonic times t0 and t1 (None outside the sampled span)."""
        a, b = self.at(t0), self.at(t1)
        return None if a is None or b is None else (b - a) / 1e9


# =========================================================================== host noise
def _proc_stat() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    vals = [int(x) for x in first[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    total = sum(vals[:8])  # guest time is already in user
    return total - idle, total


class NoiseMonitor:
    """How busy the host was, once a second, while a benchmark runs: all CPUs (/proc/stat),
    the 1-minute load average, and container CPU from the host's cgroup tree split into our
    own compose projects (names starting with ``own_prefix``) and everybody else's."""

    def __init__(self, own_prefix: str, period: float = 1.0):
        self.own_prefix = own_prefix
        self.period = period
        self.samples: list[dict[str, float]] = []
        self._project_of: dict[str, str] = {}
        self._last: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.cores = os.cpu_count() or 1
        self.container_cgroups = False  # set once a container cgroup could be read
        self.other_containers_start = self.count_other_containers()
        self.other_containers_end: int | None = None

    def count_other_containers(self) -> int | None:
        out = subprocess.run(["docker", "ps", "--format", '{{.Label "com.docker.compose.project"}}'],
                             capture_output=True, text=True, timeout=30, check=False)
        if out.returncode != 0:
            return None
        return sum(1 for line in out.stdout.splitlines() if not line.startswith(self.own_prefix))

    def _container_usage(self) -> dict[str, int]:
        usage: dict[str, int] = {}
        for _kind, root in _cgroup_roots():
            if not root.is_dir():
                continue
            for d in root.iterdir():
                m = _CONTAINER_DIR_RE.match(d.name)
                if not m or not d.is_dir():
                    continue
                v = _read_usage_file(d)
                if v is not None:
                    usage[m.group(1)] = v
            if usage:
                break
        if usage:
            self.container_cgroups = True
        missing = [cid for cid in usage if cid not in self._project_of]
        if missing:
            out = subprocess.run(["docker", "inspect", "--format",
                                  '{{.Id}} {{index .Config.Labels "com.docker.compose.project"}}', *missing],
                                 capture_output=True, text=True, timeout=30, check=False)
            for line in out.stdout.splitlines():
                parts = line.split()
                if parts:
                    self._project_of[parts[0]] = parts[1] if len(parts) > 1 else ""
            for cid in missing:
                self._project_of.setdefault(cid, "")
        return usage

    def _tick(self) -> None:
        now = time.monotonic()
        stat = _proc_stat()
        usage = self._container_usage()
        try:
            load1 = float(Path("/proc/loadavg").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            load1 = float("nan")
        last = self._last
        self._last = {"t": now, "stat": stat, "usage": usage}
        if last is None or stat is None or last["stat"] is None:
            return
        dt_s = now - last["t"]
        if dt_s <= 0:
            return
        busy = (stat[0] - last["stat"][0]) / max(1, stat[1] - last["stat"][1]) * self.cores
        own = other = 0.0
        for cid, v in usage.items():
            prev = last["usage"].get(cid)
            if prev is None or v < prev:
                continue
            cores = (v - prev) / 1e9 / dt_s
            if self._project_of.get(cid, "").startswith(self.own_prefix):
                own += cores
            else:
                other += cores
        self.samples.append({"t": now, "host_busy_cores": busy, "own_containers_cores": own,
                             "other_containers_cores": other, "load1": load1})

    def __enter__(self) -> "NoiseMonitor":
        self._tick()

        def loop() -> None:
            while not self._stop.wait(self.period):
                with contextlib.suppress(Exception):
                    self._tick()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(30)
        with contextlib.suppress(Exception):
            self.other_containers_end = self.count_other_containers()

    def window(self, t0: float | None = None, t1: float | None = None) -> dict[str, Any]:
        """Means (and the max) of the samples between monotonic t0 and t1 (default: all)."""
        xs = [s for s in self.samples if (t0 is None or s["t"] >= t0) and (t1 is None or s["t"] <= t1)]
        out: dict[str, Any] = {"seconds": len(xs) * self.period}
        for key in ("host_busy_cores", "own_containers_cores", "other_containers_cores", "load1"):
            vals = [s[key] for s in xs if math.isfinite(s[key])]
            out[key] = statistics.fmean(vals) if vals else None
            out[key + "_max"] = max(vals) if vals else None
        if not self.container_cgroups:
            out["other_containers_cores"] = out["own_containers_cores"] = None
        return out

    def report(self) -> dict[str, Any]:
        w = self.window()
        w["cores"] = self.cores
        w["other_containers_start"] = self.other_containers_start
        w["other_containers_end"] = self.other_containers_end
        w["shared"] = bool((self.other_containers_start or 0) > 0 or (self.other_containers_end or 0) > 0
                           or (w.get("other_containers_cores") or 0) > 0.1)
        return w


def noise_line(n: Mapping[str, Any]) -> str:
    """One sentence on how busy the machine was."""
    parts = []
    if n.get("host_busy_cores") is not None:
        parts.append(f"all CPUs busy {n['host_busy_cores']:.2f} of {n.get('cores')} cores on average "
                     f"(max {n['host_busy_cores_max']:.2f})")
    if n.get("other_containers_cores") is not None:
        parts.append(f"other people's containers used {n['other_containers_cores']:.2f} cores on average "
                     f"(max {n['other_containers_cores_max']:.2f}), ours {n['own_containers_cores']:.2f}")
    if n.get("load1") is not None:
        parts.append(f"load average {n['load1']:.1f} (max {n['load1_max']:.1f})")
    if n.get("other_containers_start") is not None:
        parts.append(f"{n['other_containers_start']} other containers running at the start, "
                     f"{n.get('other_containers_end')} at the end")
    text = "; ".join(parts) or "no noise figures"
    if n.get("shared"):
        return "**The machine was shared during this run** (other engineers' stacks and tests): " + text + "."
    return "The machine was not visibly shared during this run: " + text + "."


# =========================================================================== running inv
@dataclass
class InvResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    lines: list[tuple[float, str]]          # (seconds since start, stdout line)
    wall_s: float
    started: float                          # monotonic start
    maxrss_kb: int | None = None            # wait4: largest process of the tree (inv, k6, docker CLI)
    inv_hwm_kb: int | None = None           # the inv (python) process's own peak RSS, polled
    tree_peak_kb: int | None = None         # peak of the summed RSS of inv and its descendants, polled
    cpu_s: float | None = None              # user+sys of inv and its reaped descendants

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def first_line_time(self, pattern: str) -> float | None:
        """Seconds since start of the first stdout line matching the regex ``pattern``."""
        rx = re.compile(pattern)
        for t, line in self.lines:
            if rx.search(line):
                return t
        return None

    def run_dir(self) -> Path | None:
        m = re.search(r"^run directory: (.+)$", self.stdout, re.M)
        return Path(m.group(1).strip()) if m else None

    def tail(self, n: int = 15) -> str:
        text = (self.stdout.strip().splitlines() + self.stderr.strip().splitlines())[-n:]
        return "\n".join(text)


def _status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = list(Path(f"/proc/{p}/task").iterdir())
        except OSError:
            continue
        for t in tasks:
            try:
                kids = [int(x) for x in (t / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


def run_command(cmd: Sequence[str], env: Mapping[str, str], cwd: Path = ROOT, timeout: float = 1800,
                tick: Callable[[], None] | None = None, echo: bool = False) -> InvResult:
    """Run ``cmd`` (an argument list), time-stamping each stdout line, polling its memory, and
    reaping it with wait4 for its rusage. On timeout or Ctrl-C it is sent SIGTERM (flamekit then
    stops its profilers and k6) and, if it lingers, SIGKILL -- this process only, by its PID."""
    t0 = time.monotonic()
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                            start_new_session=True)
    lines: list[tuple[float, str]] = []
    err: list[str] = []

    def read_out() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.monotonic() - t0, line.rstrip("\n")))
            if echo:
                say("    | " + line.rstrip("\n"))

    def read_err() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err.append(line)

    readers = [threading.Thread(target=read_out, daemon=True), threading.Thread(target=read_err, daemon=True)]
    for r in readers:
        r.start()
    hwm = tree_peak = 0
    status = 0
    ru = None
    last_poll = 0.0
    try:
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            now = time.monotonic()
            if now - last_poll >= 0.5:
                last_poll = now
                own = _status_kb(proc.pid, "VmHWM")
                if own:
                    hwm = max(hwm, own)
                total = (_status_kb(proc.pid, "VmRSS") or 0) + sum(
                    _status_kb(k, "VmRSS") or 0 for k in _descendants(proc.pid))
                tree_peak = max(tree_peak, total)
                if tick:
                    tick()
            if now - t0 > timeout:
                raise TimeoutError(f"{' '.join(cmd[:6])} ran longer than {timeout:.0f}s")
            time.sleep(0.1)
    except BaseException:
        _terminate(proc)
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join(30)
    wall = time.monotonic() - t0
    return InvResult(list(cmd), proc.returncode, "\n".join(x for _, x in lines) + "\n", "".join(err), lines,
                     wall, t0, maxrss_kb=ru.ru_maxrss if ru else None, inv_hwm_kb=hwm or None,
                     tree_peak_kb=tree_peak or None,
                     cpu_s=(ru.ru_utime + ru.ru_stime) if ru else None)


def _terminate(proc: subprocess.Popen) -> None:
    for sig, wait_s in ((signal.SIGTERM, 60.0), (signal.SIGKILL, 10.0)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


class InvFailed(RuntimeError):
    def __init__(self, res: InvResult):
        super().__init__(f"`inv {' '.join(res.args[3:])}` exited {res.returncode}:\n{res.tail()}")
        self.result = res


# =========================================================================== the stack
@dataclass
class BenchStack:
    """One compose project of the demo stack, driven through `inv` like a user would."""

    project: str
    port: int
    workdir: Path
    owned: bool = True
    costs: dict[str, str] = field(default_factory=lambda: {k: "1" for k in COST_VARS})
    cpu_engine: str | None = None   # flamekit's cpu_engine for every inv call, when set

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, extra: Mapping[str, str] | None = None, project: str | None = None,
            port: int | None = None) -> dict[str, str]:
        project = project or self.project
        port = port or self.port
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("INVOKE_FLAMEKIT_") and k not in COST_VARS and not k.startswith(("K6_", "FK_"))}
        env.update(self.costs)
        env.update({
            "INVOKE_FLAMEKIT_PROJECT_NAME": project,
            "FLAMEKIT_GATEWAY_PORT": str(port),
            "INVOKE_FLAMEKIT_GATEWAY_URL": f"http://127.0.0.1:{port}",
            "INVOKE_FLAMEKIT_RUNS_DIR": str(self.workdir / "runs"),
            "INVOKE_FLAMEKIT_FLAMEGRAPH_DIR": str(self.workdir / "flamegraphs"),
            "INVOKE_FLAMEKIT_REPORTS_DIR": str(self.workdir / "reports"),
            "INVOKE_FLAMEKIT_OUTPUT_DIR": str(self.workdir / "output"),
            "NO_COLOR": "1",
            "PYTHONUNBUFFERED": "1",
        })
        if self.cpu_engine:
            env["INVOKE_FLAMEKIT_CPU_ENGINE"] = self.cpu_engine
        env.update(extra or {})
        return env

    def inv(self, *args: str, extra_env: Mapping[str, str] | None = None, check: bool = True,
            timeout: float = 1800, tick: Callable[[], None] | None = None, project: str | None = None,
            port: int | None = None) -> InvResult:
        res = run_command(INV + list(args), self.env(extra_env, project, port), timeout=timeout, tick=tick)
        if check and not res.ok:
            raise InvFailed(res)
        return res

    def up(self, extra_env: Mapping[str, str] | None = None, build: bool = False, sample: bool = True) -> InvResult:
        """`inv up --profiling`, then `inv sample-data`: compose may recreate any container whose
        image tag was rebuilt meanwhile (the demo images are shared by every project on the
        engine), and a recreated service has lost its in-memory data."""
        res = self.inv("up", "--profiling", *(["--build"] if build else []), extra_env=extra_env, timeout=900)
        if sample:
            self.inv("sample-data", extra_env=extra_env)
        return res

    def set_costs(self, **costs: float | str) -> InvResult:
        """Recreate the services whose hotspot cost changes (compose interpolates the variables);
        the new costs stay in force for later `inv up` calls of this object."""
        for k, v in costs.items():
            if k not in COST_VARS:
                raise ValueError(f"unknown cost variable {k}")
            self.costs[k] = f"{float(v):g}"
        return self.up()

    def down(self, project: str | None = None) -> InvResult:
        return self.inv("down", check=False, timeout=300, project=project)

    def container_id(self, service: str, project: str | None = None) -> str:
        out = _run(["docker", "ps", "-q", "--no-trunc",
                    "--filter", f"label=com.docker.compose.project={project or self.project}",
                    "--filter", f"label=com.docker.compose.service={service}"])
        ids = out.split()
        if len(ids) != 1:
            raise RuntimeError(f"expected one running container of {service} in {project or self.project}, "
                               f"found {len(ids)}")
        return ids[0]

    def container_env(self, service: str, name: str) -> str | None:
        out = _run(["docker", "inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}",
                    self.container_id(service)])
        for line in out.splitlines():
            if line.startswith(name + "="):
                return line.split("=", 1)[1]
        return None

    def image_ids(self) -> dict[str, str]:
        out = _run(["docker", "ps", "--no-trunc", "--filter", f"label=com.docker.compose.project={self.project}",
                    "--format", '{{.Label "com.docker.compose.service"}} {{.Image}}'])
        ids = {}
        for line in out.splitlines():
            svc, _, image = line.partition(" ")
            ids[svc] = _run(["docker", "image", "inspect", "--format", "{{.Id}}", image])[7:19] or image
        return ids

    def running_containers(self, project: str | None = None) -> list[str]:
        return _run(["docker", "ps", "-q", "--filter",
                     f"label=com.docker.compose.project={project or self.project}"]).split()


@contextlib.contextmanager
def demo_stack(args: argparse.Namespace, name: str, workdir: Path, bench: "Bench | None" = None
               ) -> Iterator[BenchStack]:
    """The stack a script measures: the running ``--project`` stack (left running), or its own
    (``up --profiling`` + ``sample-data``), always torn down on the way out."""
    if args.project:
        st = BenchStack(args.project, args.port, workdir, owned=False,
                        cpu_engine=getattr(args, "cpu_engine", None))
        if bench is not None:
            bench.stack = {"project": st.project, "port": st.port, "owned": False}
        say(f"using the running stack {st.project} at {st.gateway_url}")
        st.inv("sample-data")  # idempotent; a recreated container has lost it
        yield st
        return
    st = BenchStack(f"fkbench{name.replace('_', '')}{os.getpid()}", free_port(), workdir, owned=True,
                    cpu_engine=getattr(args, "cpu_engine", None))
    if bench is not None:
        bench.stack = {"project": st.project, "port": st.port, "owned": True}
    say(f"starting the demo stack {st.project} (gateway {st.gateway_url})")
    try:
        t0 = time.monotonic()
        st.up(build=True)  # the service images from the working tree (the tags are shared by every project)
        say(f"stack up with sample data in {time.monotonic() - t0:.0f} s")
        yield st
    finally:
        res = st.down()
        say(f"stack {st.project} down" if res.ok else f"warning: `inv down` of {st.project} failed:\n{res.tail()}")


def prime(st: BenchStack, seconds: int, tps: float = 25.0) -> None:
    """Unmeasured load so the JVMs are past their JIT warm-up before anything is measured."""
    if seconds <= 0:
        return
    from flamekit.load import k6 as fkload
    say(f"priming the stack: {seconds} s of load at {tps:g} TPS (not measured)")
    plan = fkload.LoadPlan(script=K6_SCRIPT, base_url=st.gateway_url, tps=tps, duration_s=int(seconds),
                           phase="warmup", summary_path=st.workdir / "k6-prime" / f"summary-{stamp()}.json")
    fkload.run_load(plan, log_path=plan.summary_path.with_suffix(".log"))


def load_issues(load: Mapping[str, Any] | None) -> tuple[list[str], bool]:
    """(what was wrong with a run's k6 figures, whether it invalidates the run). Dropped
    iterations on a busy machine are noise worth noting; errors or a flow of rejected orders
    (the stock lost with a recreated container) mean the services did not do their normal work."""
    if not load:
        return ["no load figures"], True
    why, severe = [], False
    if load.get("dropped_iterations"):
        why.append(f"{load['dropped_iterations']} dropped iterations")
    err = load.get("error_rate")
    if err is not None and err > 0.01:
        why.append(f"error rate {err * 100:.1f}%")
        severe = True
    outcomes = load.get("outcomes") or {}
    placed = sum(outcomes.values())
    if placed and outcomes.get("rejected", 0) > 0.5 * placed:
        why.append(f"{outcomes['rejected']} of {placed} orders rejected (out of stock: sample data lost?)")
        severe = True
    return why, severe


# =========================================================================== run directories
def load_run(run_dir: Path) -> tuple[dict, list]:
    """(manifest, CaptureData list) of a run directory written by `inv profile`."""
    from flamekit.analysis.captures import load_captures
    from flamekit.runs import read_manifest
    manifest = read_manifest(run_dir)
    return manifest, load_captures(run_dir, manifest, repo_root=ROOT)


# =========================================================================== output
def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else ("---" if a == "l" else ":---:") for a in align]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    for r in rows:
        out.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |")
    return "\n".join(out)


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with the part between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` set to
    ``body`` (markers kept); appended at the end when the markers are missing."""
    start, end = _markers(name)
    block = f"{start}\n{body.strip()}\n{end}"
    i = text.find(start)
    j = text.find(end, i + len(start)) if i >= 0 else -1
    if i >= 0 and j >= 0:
        return text[:i] + block + text[j + len(end):]
    if i >= 0 or j >= 0:  # half a pair: drop the stray marker, then append
        text = text.replace(start, "").replace(end, "")
    return text.rstrip("\n") + "\n\n" + block + "\n"


def new_document() -> str:
    text = HEADER
    for name in SECTIONS:
        start, end = _markers(name)
        text += f"\n{start}\n_(not run yet: `bench/{'run_all' if name == 'summary' else name}.py`)_\n{end}\n"
    return text


def write_section(path: Path, name: str, body: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text(encoding="utf-8") if path.is_file() else new_document()
    new = replace_section(text, name, body)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(path)
    return path


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(dict(data)), indent=2, default=str) + "\n", encoding="utf-8")
    return path


class Bench:
    """One benchmark script's run: machine facts, noise monitor, elapsed time, output files.

    Use as a context manager around the measurements; then :meth:`finish` writes the JSON and
    the Markdown section."""

    def __init__(self, name: str, title: str, args: argparse.Namespace):
        self.name = name
        self.title = title
        self.args = args
        self.mode = "quick" if args.quick else "full"
        self.workdir = Path(args.workdir) if args.workdir else OUT_DIR / f"{name}-{stamp()}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.json_path = Path(args.json) if args.json else OUT_DIR / f"{name}.json"
        self.facts: dict[str, Any] = {}
        self.noise: NoiseMonitor | None = None
        self.noise_report: dict[str, Any] = {}
        self.started = now_utc()
        self.t0 = time.monotonic()
        self.elapsed_s = 0.0
        self.problems: list[str] = []
        self.stack: dict[str, Any] = {}

    def own_prefix(self) -> str:
        return self.args.project or f"fkbench{self.name.replace('_', '')}{os.getpid()}"

    def __enter__(self) -> "Bench":
        say(f"== {self.title} ({self.mode} mode); work directory {self.workdir}")
        self.facts = machine_facts()
        say("machine: " + facts_line(self.facts))
        self.noise = NoiseMonitor(self.own_prefix()).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.noise is not None:
            self.noise.__exit__(*exc)
            self.noise_report = self.noise.report()
        self.elapsed_s = time.monotonic() - self.t0

    def head(self) -> str:
        """The lines every section starts with: mode, date, duration, machine, noise."""
        return (f"_{self.mode.capitalize()} mode, {self.started.strftime('%Y-%m-%d %H:%M')} UTC, took "
                f"{hms(self.elapsed_s)}. Machine: {facts_line(self.facts)}._\n\n"
                f"{noise_line(self.noise_report)}\n")

    def finish(self, figures: Mapping[str, Any], runs: Sequence[Any], body: str,
               settings: Mapping[str, Any] | None = None) -> int:
        data = {
            "bench": self.name, "mode": self.mode, "started": self.started.isoformat(timespec="seconds"),
            "elapsed_s": round(self.elapsed_s, 1), "machine": self.facts, "noise": self.noise_report,
            "settings": dict(settings or {}), "figures": dict(figures), "runs": list(runs),
            "problems": self.problems, "ok": not self.problems, "workdir": str(self.workdir),
            "stack": self.stack,
        }
        write_json(self.json_path, data)
        section = f"## {self.title}\n\n{self.head()}\n{body.strip()}\n"
        if self.problems:
            section += "\nProblems during this run:\n\n" + "\n".join(f"- {p}" for p in self.problems) + "\n"
        write_section(self.args.out, self.name, section)
        say(f"\n{self.title}: took {hms(self.elapsed_s)}; JSON {self.json_path}; section '{self.name}' of {self.args.out}")
        say(noise_line(self.noise_report))
        for p in self.problems:
            say(f"problem: {p}")
        return 0 if not self.problems else 1
