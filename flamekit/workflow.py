"""One profiling run: warm up, hold the rate with k6, capture every chosen service and
event in ONE load window, collect, and write the manifest -- whatever happens.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .capture import session as fkcapture
from .load import k6 as fkload
from .config import Settings
from .errors import CaptureError, FlamekitError

log = logging.getLogger(__name__)

Say = Callable[[str], None]
CountdownFactory = Callable[[str, float], object]  # -> object with tick(*a) and done()


@dataclass
class Outcome:
    run_dir: Path
    manifest: dict

    @property
    def captures(self) -> list[dict]:
        return self.manifest.get("captures") or []


def environment_facts(settings: Settings, k6_path: str | None) -> dict:
    from .profiler.install import installed_profiler
    from .targets.compose import engine_facts

    facts: dict = {"host": platform.node(), "python": platform.python_version()}
    with contextlib.suppress(FlamekitError):
        e = engine_facts()
        facts.update({"engine": f"dockerd {e['server_version']}", "architecture": e["architecture"],
                      "cgroup_version": e["cgroup_version"], "cpus": e["cpus"]})
    prof = installed_profiler(settings.profiler.dir) or {}
    facts["async_profiler"] = prof.get("version")
    facts["async_profiler_source"] = prof.get("source")
    if k6_path:
        with contextlib.suppress(Exception):
            facts["k6"] = fkload.k6_version(k6_path)
    return facts


def _plan(settings: Settings, tps: float, duration: int, phase: str, summary: Path | None) -> fkload.LoadPlan:
    extra = {}
    script = settings.k6_script
    if settings.target_url:
        extra["FK_TARGET_URL"] = settings.target_url
    return fkload.LoadPlan(script=script, base_url=settings.gateway_url, tps=tps, duration_s=duration,
                           phase=phase, extra_env=extra, summary_path=summary)


def run_profile(
    settings: Settings,
    stack,
    services: Sequence[str],
    events: Sequence[str],
    *,
    duration: int,
    tps: float,
    warmup: int,
    interval: str = "",
    pid: int | None = None,
    load: bool = True,
    say: Say = lambda s: None,
    countdown: CountdownFactory | None = None,
) -> Outcome:
    for svc in services:
        settings.check_service(svc)
    events = fkcapture.parse_events(list(events))
    if pid is not None and len(services) != 1:
        raise CaptureError("--pid needs exactly one service", "pass one --service with --pid")
    k6_path = fkload.find_k6(settings.k6 or None) if load else None
    if load:
        fkload.check_reachable(settings.target_url or settings.gateway_url)

    stamp = fkcapture.new_stamp()
    run_dir, stamp = fkcapture.make_run_dir(settings.runs_dir, stamp)
    manifest = fkcapture.base_manifest(settings, stamp, services, events, duration, warmup, tps,
                                       environment_facts(settings, k6_path))
    manifest["settings"]["load"] = load
    fkcapture.write_manifest(run_dir, manifest)
    cap = fkcapture.Capture(stack, settings, run_dir, stamp, say)
    k6run: fkload.K6Run | None = None
    failure: FlamekitError | None = None
    t0 = time.monotonic()
    try:
        with fkcapture.stop_on_signals():
            for svc in services:
                sess = cap.prepare(svc, events, pid)
                say(f"{svc}: JVM pid {sess.pid} ({sess.jvm.version or 'version unknown'})"
                    + (f"; missing flags: {' '.join(sess.jvm.flags_missing)}" if sess.jvm.flags_missing else ""))
            if load and warmup > 0:
                cd = countdown("warm-up", warmup) if countdown else None
                fkload.run_load(_plan(settings, tps, warmup, "warmup", run_dir / "k6-warmup-summary.json"),
                                k6_path, tick=(cd.tick if cd else None), log_path=run_dir / "k6-warmup.log",
                                preflight=False)
                if cd:
                    cd.done()
            if load:
                # k6 runs a little longer than the capture so the rate is held for the whole window
                k6run = fkload.K6Run(_plan(settings, tps, duration + 2, "measure", run_dir / "k6-summary.json"),
                                     k6_path, run_dir / "k6.log")
                k6run.start()
                time.sleep(1.0)
            for sess in cap.sessions:
                cap.start(sess, duration, interval)
            say(f"profiling {', '.join(services)} for {duration}s: {', '.join(events)}"
                + (f" at {tps:g} TPS" if load else " (no load)"))
            cd = countdown("capture", duration) if countdown else None
            end = time.monotonic() + duration
            while time.monotonic() < end:
                if cd:
                    cd.tick()
                time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            if cd:
                cd.done()
            cap.stop_all()
            if k6run is not None:
                k6run.wait()
                result = k6run.result()
                manifest["load"] = result.to_dict()
            say(f"converting {len(cap.sessions) * len(events)} profile(s) with jfrconv")
            manifest["captures"].extend(collect_all(cap))
            errors = [c for c in manifest["captures"] if c.get("error")]
            if errors:
                failure = CaptureError(
                    f"{len(errors)} of {len(manifest['captures'])} captures failed "
                    f"(first: {errors[0]['service']} {errors[0]['event']}: {errors[0]['error']})",
                    f"what was captured is kept in {run_dir}")
    except FlamekitError as exc:
        failure = exc
        exc.run_dir = run_dir  # type: ignore[attr-defined]
        raise
    except BaseException as exc:  # KeyboardInterrupt and bugs: still stop and record
        failure = CaptureError(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        cap.stop_all()
        if k6run is not None:
            k6run.stop()
            if manifest.get("load") is None:
                with contextlib.suppress(Exception):
                    manifest["load"] = k6run.result().to_dict()
        if failure is not None and not manifest["captures"]:
            # keep whatever the profilers wrote before the failure
            for sess in cap.sessions:
                if sess.started:
                    with contextlib.suppress(Exception):
                        manifest["captures"].extend(cap.collect(sess))
        cap.cleanup()
        manifest["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        manifest["wall_seconds"] = round(time.monotonic() - t0, 1)
        manifest["status"] = "ok" if failure is None else "failed"
        manifest["error"] = None if failure is None else str(failure)
        fkcapture.write_manifest(run_dir, manifest)
    if failure is not None:
        failure.run_dir = run_dir  # type: ignore[attr-defined]
        raise failure
    return Outcome(run_dir, manifest)


def collect_all(cap: "fkcapture.Capture") -> list[dict]:
    """Collect every session, services in parallel (jfrconv starts a JVM per conversion),
    results in session order; a failed service becomes an error entry, not an exception."""
    from concurrent.futures import ThreadPoolExecutor

    def one(sess) -> list[dict]:
        try:
            return cap.collect(sess)
        except FlamekitError as exc:
            return [{"service": sess.service, "event": ",".join(sess.events), "error": str(exc), "samples": 0}]

    if len(cap.sessions) <= 1:
        return [c for sess in cap.sessions for c in one(sess)]
    with ThreadPoolExecutor(max_workers=min(4, len(cap.sessions)), thread_name_prefix="collect") as pool:
        return [c for chunk in pool.map(one, cap.sessions) for c in chunk]


def read_manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())
