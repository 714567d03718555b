"""What a k6 run wrote: its summary (what it achieved) and its JSON log (what went wrong).

The scripts in ``scripts/perf/`` write k6's ``handleSummary()`` data unchanged plus a
``flamekit`` block (see ``scripts/perf/lib/flamekit.js``); :func:`parse_summary` turns it into
a :class:`LoadResult`, whose :meth:`LoadResult.to_dict` is the run manifest's ``load`` object.
k6 runs with ``--log-format json``: :func:`parse_log_line` reads one line of its log.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from ..errors import LoadError

# k6 exit code of a run whose thresholds failed: still a result (go.k6.io/k6/errext/exitcodes)
EXIT_THRESHOLDS_FAILED = 99


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
        return {
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


def _round(v: float | None, digits: int = 3) -> float | None:
    return None if v is None else round(v, digits)


# -- figures out of k6's metrics -------------------------------------------------------------

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


# -- k6's log (--log-format json) -------------------------------------------------------------

_ERROR_LEVELS = ("error", "fatal", "panic")


def parse_log_line(line: str) -> dict[str, Any] | None:
    """One line of k6's ``--log-format json`` output as a dict (``level``, ``msg``, ``time`` and
    fields such as ``error`` or ``source``); None for anything else in the log, such as the
    scripts' one-line summary on stdout."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) and "level" in rec else None


def last_error(lines: Iterable[str]) -> str | None:
    """First line of the last error-level message in ``lines``, else their last non-empty line."""
    lines = [ln for ln in lines if ln.strip()]
    for line in reversed(lines):
        rec = parse_log_line(line)
        if rec is not None and rec.get("level") in _ERROR_LEVELS:
            msg = str(rec.get("msg") or "").strip()
            return msg.splitlines()[0].strip() if msg else line.strip()
    return lines[-1].strip() if lines else None


def first_request_failure(lines: Iterable[str]) -> str | None:
    """The ``error`` field of k6's first "Request Failed" warning (why a request got no answer)."""
    for line in lines:
        rec = parse_log_line(line)
        if rec is not None and rec.get("msg") == "Request Failed":
            return str(rec.get("error") or rec["msg"])
    return None
