"""Load from several k6 processes: one constant-arrival-rate scenario split with k6 execution
segments, figures merged from the workers' summaries and raw samples.

Worker ``i`` of ``n`` runs the same script with the same plan (the *global* rate, VUs and
duration) plus execution segment ``i/n:(i+1)/n`` and the sequence ``0,1/n,...,1``: k6 divides
the rate and the VUs itself (DESIGN.md §5). There is no coordinator, so the workers start
within a few milliseconds of each other, not at the same instant, and thresholds hold per
worker. Merged figures:

* achieved TPS, iterations, requests, dropped iterations, VUs: summed over the workers;
* error rate: failed requests over all requests; failed checks: over all checks;
* p50/p90/p95/p99/avg/max of ``http_req_duration`` (and p95 of ``iteration_duration``): from
  the merged raw points each worker wrote with ``--out json`` -- never averaged percentiles.

How the segment reaches k6: :func:`flamekit.load.k6.k6_command` takes no extra arguments, and
``K6_EXECUTION_SEGMENT`` is not an environment option of k6 1.x (checked: ignored), but k6 reads
``executionSegment``/``executionSegmentSequence`` from its JSON config file (``K6_CONFIG``),
equivalent to the flags :func:`segment_flags` returns. The raw output is ``K6_OUT=json=FILE``.
Both travel in the plan's ``extra_env``, so each worker is an ordinary :class:`K6Run`.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import statistics
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..errors import ConfigError, LoadError
from .k6 import K6Run, LoadPlan, Tick, check_reachable, find_k6
from .summary import LoadResult

log = logging.getLogger(__name__)

#: The most workers flamekit starts on one machine (each k6 is a Go runtime of its own).
MAX_WORKERS = 16


# --------------------------------------------------------------------------------------------
# segments and commands
# --------------------------------------------------------------------------------------------

def _frac(f: Fraction) -> str:
    return "0" if f == 0 else "1" if f == 1 else f"{f.numerator}/{f.denominator}"


def check_workers(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_WORKERS:
        raise ConfigError(f"load workers must be a whole number from 1 to {MAX_WORKERS}, got {n!r}",
                          hint="pass e.g. --load-workers 2")
    return n


def segment(i: int, n: int) -> str:
    """Execution segment of worker ``i`` (0-based) of ``n``: ``"i/n:(i+1)/n"``, reduced."""
    check_workers(n)
    if not 0 <= i < n:
        raise ValueError(f"worker index {i} outside 0..{n - 1}")
    return f"{_frac(Fraction(i, n))}:{_frac(Fraction(i + 1, n))}"


def segment_sequence(n: int) -> str:
    """The sequence every worker gets: ``"0,1/n,...,1"`` (k6 needs it to split VUs fairly)."""
    check_workers(n)
    return ",".join(_frac(Fraction(i, n)) for i in range(n + 1))


def segment_flags(i: int, n: int) -> list[str]:
    """The k6 flags of worker ``i``: what :func:`segment_options` gives k6 through K6_CONFIG."""
    return ["--execution-segment", segment(i, n), "--execution-segment-sequence", segment_sequence(n)]


def segment_options(i: int, n: int) -> dict[str, str]:
    """k6 config-file options of worker ``i`` (the same as :func:`segment_flags`)."""
    return {"executionSegment": segment(i, n), "executionSegmentSequence": segment_sequence(n)}


@dataclasses.dataclass(frozen=True)
class WorkerFiles:
    config: Path    # k6 JSON config holding the segment
    raw: Path       # --out json points
    summary: Path
    log: Path


def worker_files(out_dir: Path, i: int, phase: str) -> WorkerFiles:
    base = Path(out_dir) / f"k6-{phase}-worker{i + 1}"
    return WorkerFiles(config=base.with_suffix(".config.json"), raw=base.with_suffix(".points.json"),
                       summary=base.with_suffix(".summary.json"), log=base.with_suffix(".log"))


def worker_plan(plan: LoadPlan, files: WorkerFiles) -> LoadPlan:
    """The plan of one worker: the global plan, its own summary, K6_CONFIG and K6_OUT."""
    env = dict(plan.extra_env)
    env.update({"K6_CONFIG": str(files.config.resolve()), "K6_OUT": f"json={files.raw.resolve()}"})
    return dataclasses.replace(plan, extra_env=env, summary_path=files.summary)


# --------------------------------------------------------------------------------------------
# merging
# --------------------------------------------------------------------------------------------

def raw_points(path: Path, metrics: Sequence[str] = ("http_req_duration", "iteration_duration")
               ) -> dict[str, list[float]]:
    """Values of the chosen metrics' ``Point`` lines in a k6 ``--out json`` file (streamed)."""
    out: dict[str, list[float]] = {m: [] for m in metrics}
    try:
        fh = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return out
    with fh:
        for line in fh:
            if '"Point"' not in line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line cut short by a killed k6
            values = out.get(rec.get("metric"))
            if values is not None and rec.get("type") == "Point":
                v = (rec.get("data") or {}).get("value")
                if isinstance(v, (int, float)) and math.isfinite(v):
                    values.append(float(v))
    return out


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """k6's percentile: linear interpolation between closest ranks (``statistics.quantiles``
    'inclusive' method), on already sorted values."""
    n = len(sorted_values)
    if n == 0:
        return None
    if n == 1:
        return sorted_values[0]
    if p >= 100:
        return sorted_values[-1]
    if p <= 0:
        return sorted_values[0]
    if float(p).is_integer():
        return statistics.quantiles(sorted_values, n=100, method="inclusive")[int(p) - 1]
    rank = p / 100 * (n - 1)
    lo = math.floor(rank)
    return sorted_values[lo] + (sorted_values[min(lo + 1, n - 1)] - sorted_values[lo]) * (rank - lo)


def _checks(summary: Mapping[str, Any]) -> tuple[int, int]:
    values = ((summary.get("metrics") or {}).get("checks") or {}).get("values") or {}
    return int(values.get("passes") or 0), int(values.get("fails") or 0)


def merge_results(results: Sequence[LoadResult], target_tps: float,
                  durations: Sequence[float] = (), iteration_durations: Sequence[float] = (),
                  checks: Iterable[tuple[int, int]] = (), phase: str | None = None) -> LoadResult:
    """One LoadResult of several workers: counts summed, latencies from the merged raw points
    (``durations``: every http_req_duration of every worker, ms)."""
    if not results:
        raise LoadError("no k6 worker produced a result")
    reqs = sum(r.http_reqs for r in results)
    failed = sum((r.error_rate or 0.0) * r.http_reqs for r in results)
    passes = fails = 0
    for p, f in checks:
        passes, fails = passes + p, fails + f
    d = sorted(durations)
    it = sorted(iteration_durations)
    outcomes: dict[str, int] = {}
    for r in results:
        for k, v in r.outcomes.items():
            outcomes[k] = outcomes.get(k, 0) + v
    bad = [r.exit_code for r in results if r.exit_code != 0]
    return LoadResult(
        target_tps=float(target_tps),
        achieved_tps=sum(r.achieved_tps for r in results),
        iterations=sum(r.iterations for r in results),
        dropped_iterations=sum(r.dropped_iterations for r in results),
        http_reqs=reqs,
        p50_ms=percentile(d, 50), p95_ms=percentile(d, 95), p99_ms=percentile(d, 99),
        avg_ms=statistics.fmean(d) if d else None, max_ms=d[-1] if d else None,
        error_rate=round(failed / reqs, 6) if reqs else None,
        checks_failed_rate=fails / (passes + fails) if passes + fails else None,
        duration_s=max(r.duration_s for r in results),
        vus_max=sum(r.vus_max for r in results),
        exit_code=max(bad) if bad else 0,
        summary_path=None,
        p90_ms=percentile(d, 90),
        iteration_p95_ms=percentile(it, 95),
        transport_errors=sum(r.transport_errors for r in results),
        phase=phase if phase is not None else results[0].phase,
        outcomes=outcomes,
    )


# --------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------

class K6Workers:
    """``n`` k6 processes sharing one plan; the same lifecycle as :class:`K6Run` (start, wait,
    stop, result, started_at/ended_at), so a workflow can hold either. Files go to ``out_dir``:
    per worker its config, raw points, summary and log (``k6-<phase>-workerN.*``)."""

    def __init__(self, plan: LoadPlan, n: int, out_dir: Path, k6: str | None = None, *,
                 grace_s: float = 10.0, env: Mapping[str, str] | None = None):
        self.n = check_workers(n)
        self.plan = plan
        self.out_dir = Path(out_dir)
        self.k6 = find_k6(k6)
        self.files = [worker_files(self.out_dir, i, plan.phase) for i in range(n)]
        self.runs = [K6Run(worker_plan(plan, f), self.k6, f.log, grace_s=grace_s, env=env) for f in self.files]
        self.started_at: str | None = None
        self.ended_at: str | None = None

    @property
    def running(self) -> bool:
        return any(r.running for r in self.runs)

    @property
    def pids(self) -> list[int]:
        return [r.pid for r in self.runs if r.pid is not None]

    def start(self) -> "K6Workers":
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(self.files):
            f.config.write_text(json.dumps(segment_options(i, self.n)), encoding="utf-8")
            f.raw.unlink(missing_ok=True)
        try:
            for r in self.runs:
                r.start()
        except BaseException:
            self.stop()
            raise
        self.started_at = self.runs[0].started_at
        log.info("k6: %d workers, segments %s", self.n, ", ".join(segment(i, self.n) for i in range(self.n)))
        return self

    def wait(self, tick: Tick | None = None, timeout_s: float | None = None) -> int:
        """Wait for every worker; the largest exit code (0 when all succeeded)."""
        if timeout_s is None:
            timeout_s = self.plan.duration_s + 120.0
        deadline = time.monotonic() + timeout_s
        codes = []
        try:
            for i, r in enumerate(self.runs):
                codes.append(r.wait(tick=tick if i == 0 else None,
                                    timeout_s=max(1.0, deadline - time.monotonic())))
        except BaseException:
            self.stop()
            raise
        self.ended_at = max(r.ended_at or "" for r in self.runs) or None
        return max(codes)

    def stop(self) -> None:
        for r in self.runs:
            r.stop()
        if self.ended_at is None and any(r.ended_at for r in self.runs):
            self.ended_at = max(r.ended_at or "" for r in self.runs)

    def __enter__(self) -> "K6Workers":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def worker_results(self) -> list[LoadResult]:
        return [r.result() for r in self.runs]

    def result(self) -> LoadResult:
        results = self.worker_results()
        durations: list[float] = []
        iterations: list[float] = []
        checks = []
        for f in self.files:
            pts = raw_points(f.raw)
            durations += pts["http_req_duration"]
            iterations += pts["iteration_duration"]
            try:
                checks.append(_checks(json.loads(f.summary.read_text(encoding="utf-8"))))
            except (OSError, ValueError):
                pass
        if sum(r.http_reqs for r in results) and not durations:
            raise LoadError("the k6 workers wrote no raw http_req_duration points",
                            hint=f"see {self.files[0].raw} and {self.files[0].log}")
        return merge_results(results, self.plan.tps, durations, iterations, checks, self.plan.phase)


def run_workers(plan: LoadPlan, n: int, out_dir: Path, k6: str | None = None, tick: Tick | None = None,
                *, preflight: bool = True) -> LoadResult:
    """Run ``plan`` split over ``n`` k6 workers to the end; the merged result (blocking)."""
    if preflight:
        check_reachable(plan.target_url)
    with K6Workers(plan, n, out_dir, k6) as group:
        group.wait(tick=tick)
    result = group.result()
    if not result.rate_held:
        log.warning("%d k6 workers did not hold %s TPS: achieved %.2f, dropped %d iterations",
                    n, plan.tps, result.achieved_tps, result.dropped_iterations)
    return result


__all__ = ["K6Workers", "run_workers", "merge_results", "raw_points", "percentile", "segment",
           "segment_sequence", "segment_flags", "segment_options", "worker_plan", "worker_files",
           "check_workers", "MAX_WORKERS"]
