"""Reasons to distrust a run's figures: run status, load held or not, sample counts,
profiling engine, JVM flags. One sentence a reason; [] for a clean run.

Also: profiler windows outside the load window, CPU profiles covering under 80 % of the
cgroup CPU, JIT compilation over 15 % of a service's CPU (:mod:`flamekit.analysis.costs`).

ctimer and itimer sample CPU time with a timer when perf_events is blocked; they are
never wall-clock (only ``-e wall`` shows off-CPU time), and every sentence here says so.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from ..runs import captures as manifest_captures
from .captures import CaptureData, label_of
from .costs import analyse, cost_warnings, parse_time
from .events import PERF_ENGINES, event_kind
from .stats import MIN_SAMPLES, worst_case_points
from .values import error_fraction, get, number

#: achieved/target below this means the arrival rate was not held.
MIN_RATE_FRACTION = 0.95
#: error rate (fraction) above this makes the load figures suspect.
MAX_ERROR_RATE = 0.01
#: engines that sample CPU time with a timer instead of perf_events.
TIMER_ENGINES = ("ctimer", "itimer")


def engine_note(engine: str | None, kernel_frames: bool | None = None) -> str:
    """What a CPU engine name means, for the report's set-up table. ``kernel_frames``: whether
    a perf_events capture held kernel frames (False: user mode only; None: not recorded)."""
    if not engine:
        return "not recorded"
    e = engine.lower()
    if e in TIMER_ENGINES:
        return (f"{engine} (CPU time sampled by a timer, not by perf_events: kernel stacks need "
                "perf_event_paranoid <= 1)")
    if e in PERF_ENGINES and kernel_frames is False:
        return (f"{engine}, user mode only (the kernel allows no kernel profiling here: "
                "time the threads spent in the kernel is not in the profile)")
    if e in PERF_ENGINES:
        return f"{engine} (CPU time from perf_events, kernel stacks included)"
    return engine


def _status_warnings(m: Mapping) -> list[str]:
    status = m.get("status")
    if status == "failed" or (status not in (None, "ok") and status):
        err = m.get("error")
        return [f"run status is {status}" + (f": {err}" if err else "") + "; figures may be partial"]
    if m.get("error"):
        return [f"run recorded an error: {m.get('error')}"]
    return []


def load_warnings(load: Mapping | None, target_tps: object = None) -> list[str]:
    """The load checks: figures present, arrival rate held (no dropped iterations,
    achieved >= 95 % of target), error rate and failed k6 checks at most 1 %.
    ``target_tps`` is the run's setting, used when the load figures lack a target."""
    if not load:
        return ["no load figures recorded (k6 summary missing); the load during the capture is unknown"]
    warnings = []
    target = number(load.get("target_tps")) or number(target_tps)
    achieved = number(load.get("achieved_tps"))
    dropped = number(load.get("dropped_iterations"))
    reasons = []
    if dropped and dropped > 0:
        reasons.append(f"{int(dropped):,} dropped iterations")
    if target and achieved is not None and achieved < MIN_RATE_FRACTION * target:
        reasons.append(f"achieved {achieved:.1f} TPS of {target:g} target "
                       f"({achieved / target:.0%}, under {MIN_RATE_FRACTION:.0%})")
    if reasons:
        warnings.append("rate not held: " + "; ".join(reasons)
                        + "; latency figures are suspect and the profile is not of the planned load")
    err_rate = error_fraction(load.get("error_rate"))
    if err_rate is not None and err_rate > MAX_ERROR_RATE:
        warnings.append(f"error rate {err_rate:.2%} is over {MAX_ERROR_RATE:.0%}: "
                        "the profile partly shows error handling, not the normal path")
    checks = error_fraction(load.get("checks_failed_rate"))
    if checks is not None and checks > MAX_ERROR_RATE:
        warnings.append(f"{checks:.2%} of the k6 checks failed (wrong status or body): "
                        "the stack did not answer as the script expects; see the run's k6.log")
    return warnings


def _capture_warnings(caps: Sequence[Mapping]) -> list[str]:
    if not caps:
        return ["no captures recorded"]
    warnings = []
    timer_engines: dict[str, list[str]] = {}
    for cap in caps:
        svc = cap.get("service") or "unknown-service"
        ev = cap.get("event") or "cpu"
        label = f"{svc} {ev}"
        if cap.get("error"):
            warnings.append(f"{label}: capture failed: {cap.get('error')}")
        samples = number(cap.get("samples"))
        if samples is not None and samples <= 0:
            warnings.append(f"{label}: no samples captured")
        elif samples is not None and samples < MIN_SAMPLES:
            warnings.append(
                f"{label}: only {int(samples):,} samples (under ~{MIN_SAMPLES:,}); "
                f"shares uncertain by ±{worst_case_points(int(samples)):.1f} points at 95%")
        engine = cap.get("engine")
        if event_kind(ev) == "cpu" and str(ev).lower() != "wall":
            if engine and str(engine).lower() in TIMER_ENGINES:
                timer_engines.setdefault(str(engine), []).append(svc)
            elif not engine and not cap.get("error"):
                warnings.append(f"{label}: profiling engine not recorded; "
                                "the sampling method is unknown")
        missing = get(cap, "jvm", "flags_missing")
        if isinstance(missing, list) and missing:
            flags = ", ".join(str(f) for f in missing)
            why = (" (without -XX:+DebugNonSafepoints inlined frames go missing)"
                   if any("DebugNonSafepoints" in str(f) for f in missing) else "")
            warnings.append(f"{svc}: JVM flags missing: {flags}{why}")
    for engine, services in timer_engines.items():
        warnings.append(
            f"CPU time sampled by a timer ({engine}), not by perf_events (kernel stacks need "
            f"perf_event_paranoid <= 1); "
            f"it is CPU time, not wall-clock; use -e wall for off-CPU time "
            f"({', '.join(dict.fromkeys(services))})")
    return warnings


def window_warnings(m: Mapping) -> list[str]:
    """Each profiler's window (``profiler_started``..``profiler_stopped``) must lie inside the
    timeline's load window (``load_started``..``load_ended``): else part of the profile is
    of a JVM without the planned load."""
    timeline = m.get("timeline") if isinstance(m.get("timeline"), Mapping) else {}
    load_a, load_b = parse_time(timeline.get("load_started")), parse_time(timeline.get("load_ended"))
    if not (load_a and load_b):
        return []
    out = []
    for cap in manifest_captures(m):
        a, b = parse_time(cap.get("profiler_started")), parse_time(cap.get("profiler_stopped"))
        if not (a and b):
            continue
        early, late = (load_a - a).total_seconds(), (b - load_b).total_seconds()
        if early > 0 or late > 0:
            side = (f"started {early:.1f} s before the load" if early > 0 else
                    f"stopped {late:.1f} s after the load ended")
            out.append(f"{label_of(cap)} {cap.get('event') or 'cpu'}: the profiler's window is not inside "
                       f"the load window ({side}): part of the profile is not of the planned load")
    return out


def validity_warnings(manifest: Mapping | None) -> list[str]:
    """Reasons to distrust a run's figures, one sentence each; [] for a clean run.

    Checks: run status failed / run error; no captures; no load figures; arrival rate
    not held (dropped iterations, or achieved < 95 % of target); error rate > 1 %;
    no warm-up; per capture: capture error, fewer than 1,000 samples, CPU sampled by
    a timer engine (ctimer/itimer: CPU time, not wall-clock), engine not recorded,
    JVM flags missing.
    """
    m: Mapping = manifest if isinstance(manifest, Mapping) else {}
    load = m.get("load") if isinstance(m.get("load"), Mapping) else None
    warnings = _status_warnings(m) + load_warnings(load, get(m, "settings", "tps"))
    warmup = number(get(m, "settings", "warmup"))
    if warmup is not None and warmup <= 0:
        warnings.append("no warm-up: JIT compilation and class loading may dominate the profile")
    warnings += _capture_warnings(manifest_captures(m))
    warnings += window_warnings(m)
    return list(dict.fromkeys(warnings))


def run_warnings(manifest: Mapping, caps: Iterable[CaptureData]) -> list[str]:
    """:func:`validity_warnings` of a run read back from its directory: the captures found
    on disk stand in for the manifest's (sample counts filled in from the profiles), and
    missing collapsed stacks, flame graphs and sample counts of weighted captures are
    reasons too."""
    caps = list(caps)
    checked_caps = []
    for cap in caps:
        entry = dict(cap.meta)
        entry.setdefault("service", cap.service)
        entry.setdefault("event", cap.event)
        if number(entry.get("samples")) is None and cap.samples is not None:
            entry["samples"] = cap.samples
        checked_caps.append(entry)
    warnings = validity_warnings({**manifest, "captures": checked_caps})
    for cap in caps:
        if cap.profile is None and not cap.error:
            warnings.append(f"{cap.service} {cap.event}: no collapsed stacks in the run directory")
        if cap.flamegraph is None and cap.html is None:
            warnings.append(f"{cap.service} {cap.event}: flame graph HTML missing")
        if cap.profile is not None and cap.profile.weighted and not cap.samples:
            warnings.append(f"{cap.service} {cap.event}: weighted by {cap.weight} but the number "
                            "of samples was not recorded; the uncertainty of its shares is unknown")
    _, services = analyse(manifest, caps)
    return list(dict.fromkeys(warnings + cost_warnings(services)))
