"""The orchestrations: one profiling run (`profile`) and the whole chain (`profile_all`).

One run: find each JVM, warm up, start k6 at the fixed rate, start every profiler in
parallel, hold the window, stop every profiler in parallel, collect, convert, count, and
write the manifest -- whatever happens. SIGINT/SIGTERM stop the run after its cleanup
(profilers stopped, k6 stopped, files in the containers removed, manifest written) and
the command exits 130. Everything here works against a Target, so unit tests use a fake.
"""
from __future__ import annotations

import contextlib
import logging
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .. import runs, ui
from ..analysis.collapsed import count_samples
from ..capture import convert as fkconvert
from ..capture.session import Profilers, parse_events
from ..config import Settings
from ..errors import CaptureError, FlamekitError, Interrupted
from ..load import k6 as fkload
from ..load import workers as fkworkers
from ..signals import SignalGuard

log = logging.getLogger(__name__)

# k6 runs this much longer than the capture window: the profilers start after k6 (0.1 s for
# one JVM, 0.6 s for four, measured) and stop at the end of the window, so the whole window
# is under load. Whatever is left of it after the collection is time the user waits.
LOAD_MARGIN_S = 2
PARALLEL = 4


@dataclass
class Outcome:
    run_dir: Path
    manifest: dict
    seconds: dict = field(default_factory=dict)

    @property
    def captures(self) -> list[dict]:
        return runs.captures(self.manifest)


def environment_facts(settings: Settings, target, k6_path: str | None) -> dict:
    from ..profiler.install import installed_profiler

    facts: dict = {"host": platform.node(), "python": platform.python_version(), "target": target.kind}
    with contextlib.suppress(FlamekitError):
        e = target.facts()
        facts.update({"engine": f"dockerd {e['server_version']}", "architecture": e["architecture"],
                      "cgroup_version": e["cgroup_version"], "cpus": e["cpus"]})
    prof = installed_profiler(settings.profiler.dir) or {}
    facts["async_profiler"] = prof.get("version")
    facts["async_profiler_source"] = prof.get("source")
    if k6_path:
        with contextlib.suppress(Exception):
            facts["k6"] = fkload.k6_version(k6_path)
    return facts


def _plan(settings: Settings, tps: float, duration: int, phase: str, summary: Path) -> fkload.LoadPlan:
    extra = {"FK_TARGET_URL": settings.target_url} if settings.target_url else {}
    return fkload.LoadPlan(script=settings.k6_script, base_url=settings.gateway_url, tps=tps, duration_s=duration,
                           phase=phase, extra_env=extra, summary_path=summary)


def run_settings(settings: Settings, services, events, duration, warmup, tps, load: bool, target) -> dict:
    return {"duration": duration, "warmup": warmup, "tps": tps, "interval": settings.interval or None,
            "cpu_engine": settings.cpu_engine, "events": list(events), "services": list(services),
            "privileges": settings.privileges,
            "jvm_flags": list(settings.jvm_flags), "project_name": settings.project_name,
            "compose_files": [str(f) for f in settings.compose_files], "load": load, "target": target.kind,
            "load_workers": settings.load_workers if load else 0}


def select_replicas(target, services: Sequence[str], replica: int | None):
    chosen = []
    for svc in services:
        found = target.replicas(svc)
        if replica is not None:
            found = [r for r in found if r.index == replica]
            if not found:
                raise CaptureError(f"{svc} has no replica {replica}",
                                   f"its replicas: {', '.join(str(r.index) for r in target.replicas(svc))}")
        chosen.extend(found)
    return chosen


def run_profile(settings: Settings, target, services: Sequence[str], events: Sequence[str], *,
                duration: int, tps: float, warmup: int, interval: str = "", pid: int | None = None,
                replica: int | None = None, load: bool = True) -> Outcome:
    for svc in services:
        settings.check_service(svc)
    events = parse_events(events)
    if pid is not None and len(services) != 1:
        raise CaptureError("--pid needs exactly one service", "pass one --service with --pid")
    k6_path = fkload.find_k6(settings.k6 or None) if load else None
    if load:
        fkload.check_reachable(settings.target_url or settings.gateway_url)

    run_dir, stamp = runs.make_run_dir(settings.runs_dir)
    pool = ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="asprof")
    # the engine and k6 versions (docker info, k6 version) are for the manifest: gathered meanwhile
    facts = pool.submit(environment_facts, settings, target, k6_path)
    manifest = runs.base_manifest(stamp, run_settings(settings, services, events, duration, warmup, tps, load, target),
                                  {"host": platform.node(), "python": platform.python_version(), "target": target.kind})
    try:
        runs.write_manifest(run_dir, manifest)
    except BaseException:
        pool.shutdown(wait=True)
        raise
    profs = Profilers(target, settings.profiler.container_path, stamp, settings.jvm_flags, settings.cpu_engine)
    timeline = manifest["timeline"]
    k6run: fkload.K6Run | None = None
    failure: BaseException | None = None
    t0 = time.monotonic()
    with SignalGuard() as guard:
        try:
            replicas = select_replicas(target, services, replica)
            # finding the JVMs (a few docker execs each) overlaps the warm-up: k6 needs none of it
            preparing = [pool.submit(profs.prepare, r, events, pid) for r in replicas]
            if load and warmup > 0:
                timeline["warmup_started"] = runs.now_iso()
                cd = ui.Countdown("warm-up", warmup)

                def tick(*args) -> None:
                    cd.tick(*args)
                    for f in preparing:  # a JVM that cannot be profiled stops the warm-up at once
                        if f.done() and f.exception() is not None:
                            raise f.exception()
                warm = _plan(settings, tps, warmup, "warmup", run_dir / "k6-warmup-summary.json")
                if settings.load_workers > 1:
                    fkworkers.run_workers(warm, settings.load_workers, run_dir, k6_path, tick=tick, preflight=False)
                else:
                    fkload.run_load(warm, k6_path, tick=tick, log_path=run_dir / "k6-warmup.log", preflight=False)
                cd.done()
                timeline["warmup_ended"] = runs.now_iso()
            profs.sessions.extend(f.result() for f in preparing)
            with contextlib.suppress(Exception):  # versions for the record, never a reason to fail
                manifest["environment"] = facts.result()
            for sess in profs.sessions:
                ui.say(f"{sess.label}: JVM pid {sess.pid} ({sess.jvm.version or 'version unknown'})"
                       + (f"; missing flags: {' '.join(sess.jvm.flags_missing)}" if sess.jvm.flags_missing else ""))
            if load:
                measure = _plan(settings, tps, duration + LOAD_MARGIN_S, "measure", run_dir / "k6-summary.json")
                k6run = (fkworkers.K6Workers(measure, settings.load_workers, run_dir, k6_path)
                         if settings.load_workers > 1 else fkload.K6Run(measure, k6_path, run_dir / "k6.log"))
                k6run.start()
                timeline["load_started"] = k6run.started_at or runs.now_iso()
            list(pool.map(lambda s: profs.start(s, duration, interval), profs.sessions))
            timeline["profilers_started"] = runs.now_iso()
            ui.say(f"profiling {', '.join(s.label for s in profs.sessions)} for {duration}s: {', '.join(events)}"
                   + (f" at {tps:g} TPS" if load else " (no load)"))
            runs.write_manifest(run_dir, manifest)
            cd = ui.Countdown("capture", duration)
            end = min(s.started_mono for s in profs.sessions) + duration
            while time.monotonic() < end:
                cd.tick()
                time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            cd.done()
            list(pool.map(lambda s: profs.stop(s, count_allocations=True), profs.sessions))
            timeline["profilers_stopped"] = runs.now_iso()
            ui.say(f"converting {len(profs.sessions) * len(events)} profile(s) with jfrconv")
            # collect while k6 finishes its last seconds: the window is over, the load no longer matters
            collecting = pool.submit(collect_all, settings, target, profs, run_dir, stamp)
            if k6run is not None:
                k6run.wait()
                timeline["load_ended"] = k6run.ended_at or runs.now_iso()
                manifest["load"] = k6run.result().to_dict()
            manifest["captures"].extend(collecting.result())
            errors = [c for c in manifest["captures"] if c.get("error")]
            if errors:
                failure = CaptureError(
                    f"{len(errors)} of {len(manifest['captures'])} captures failed "
                    f"(first: {errors[0]['service']} {errors[0]['event']}: {errors[0]['error']})",
                    f"what was captured is kept in {run_dir}")
        except BaseException as exc:  # a failure, an interrupt or a bug: clean up and record first
            failure = exc
            raise
        finally:
            with guard.shielded():
                _cleanup(profs, pool, k6run, manifest, timeline, failure, settings, target, run_dir, stamp)
                with contextlib.suppress(Exception):  # also when the run failed before it was read
                    manifest["environment"] = facts.result()
                manifest["wall_seconds"] = round(time.monotonic() - t0, 1)
                _finish(run_dir, manifest, failure)
    if failure is not None:
        failure.run_dir = run_dir  # type: ignore[attr-defined]
        raise failure
    return Outcome(run_dir, manifest)


def _cleanup(profs: Profilers, pool: ThreadPoolExecutor, k6run, manifest: dict, timeline: dict,
             failure: BaseException | None, settings: Settings, target, run_dir: Path, stamp: str) -> None:
    pool.shutdown(wait=True)        # a start still in flight finishes before it is stopped
    for problem in profs.stop_all():
        ui.warn(f"profiler stop: {problem}")
    if k6run is not None:
        k6run.stop()
        timeline.setdefault("load_ended", runs.now_iso())
        if manifest.get("load") is None:
            with contextlib.suppress(Exception):
                manifest["load"] = k6run.result().to_dict()
    if failure is not None and not manifest["captures"] and not isinstance(failure, Interrupted):
        # keep whatever the profilers wrote before the failure
        with contextlib.suppress(Exception):
            manifest["captures"].extend(collect_all(settings, target, profs, run_dir, stamp,
                                                    only=[s for s in profs.sessions if s.started_at]))
    profs.remove_files()


def _finish(run_dir: Path, manifest: dict, failure: BaseException | None) -> None:
    manifest["finished"] = runs.now_iso()
    if failure is None:
        manifest["status"], manifest["error"] = "ok", None
    else:
        manifest["status"] = "failed"
        manifest["error"] = str(failure) if not isinstance(failure, Interrupted) else \
            f"{failure} (profilers and k6 stopped; what was captured is kept)"
    try:
        runs.write_manifest(run_dir, manifest)
    except OSError as exc:  # a full disk is the cause to name, whatever failed first
        log.error("could not write the manifest of %s: %s", run_dir, exc)
        raise disk_error(exc, run_dir) from None


def collect_all(settings: Settings, target, profs: Profilers, run_dir: Path, stamp: str,
                only=None) -> list[dict]:
    """Collect every session, containers in parallel; results in session order; a failed
    container becomes error entries, not an exception."""
    sessions = list(only if only is not None else profs.sessions)

    def one(sess) -> list[dict]:
        try:
            entries = capture_entries(settings, target, sess, run_dir, stamp)
        except OSError as exc:
            raise disk_error(exc, run_dir) from None
        except FlamekitError as exc:
            return [_entry(sess, e, error=str(_explain(target, sess, exc))) for e in sess.events]
        if any(e.get("error") for e in entries):
            why = _explain(target, sess, None)
            if why is not None:  # a restart explains every failed event of this container
                for e in entries:
                    e["error"] = e["error"] and str(why)
        return entries

    with ThreadPoolExecutor(max_workers=max(1, min(PARALLEL, len(sessions))), thread_name_prefix="collect") as pool:
        return [c for chunk in pool.map(one, sessions) for c in chunk]


def _explain(target, sess, exc: FlamekitError | None) -> FlamekitError | None:
    """A capture that failed because its container restarted, its JVM changed or its container
    went away says so; otherwise the original error (None when there was none)."""
    from ..capture import jvm as fkjvm
    try:
        started = target.started_at(sess.replica)
        now = fkjvm.jvm_of(target, sess.replica, ())
    except FlamekitError as gone:
        return CaptureError(f"{sess.label} went away during the capture ({gone.message})")
    if sess.container_started and started and started != sess.container_started:
        return CaptureError(f"the container of {sess.label} restarted during the capture "
                            f"(started {sess.container_started}, again {started}): its JVM and recording are new")
    if now.pid != sess.pid:
        return CaptureError(f"the JVM of {sess.label} restarted during the capture (pid {sess.pid} -> {now.pid})")
    return exc


def disk_error(exc: OSError, where: Path) -> CaptureError:
    import errno
    if exc.errno == errno.ENOSPC:
        return CaptureError(f"no space left on the device of {where}",
                            "free space in flamekit.runs_dir (and flamegraph_dir) and run again")
    return CaptureError(f"could not write in {where}: {exc.strerror or exc}")


def _entry(sess, event: str, **extra) -> dict:
    r = sess.replica
    out = {"service": r.service, "replica": r.index, "replicas": r.of, "container": r.container,
           "event": event, "samples": 0, "pid": sess.pid, "image_id": sess.image_id, "jvm": sess.jvm.to_dict(),
           "profiler_started": sess.started_at, "profiler_stopped": sess.stopped_at,
           "cgroup_cpu_s": sess.cgroup_cpu_seconds, "error": None}
    out.update(extra)
    return out


def _interval(given: str, event: str, events) -> str | None:
    """The sampling interval this event really ran with (-i applies to cpu, or to the one event)."""
    from ..capture.session import WALL_INTERVAL
    if event == "wall":
        return (given or WALL_INTERVAL) if len(events) == 1 else WALL_INTERVAL
    return (given or None) if event == "cpu" or len(events) == 1 else None


def capture_entries(settings: Settings, target, sess, run_dir: Path, stamp: str) -> list[dict]:
    dest = runs.service_dir(run_dir, sess.label)
    got = fkconvert.collect(target, sess, dest, f"{sess.label} {run_dir.name}",
                            host_jfrconv=fkconvert.host_converter(settings.profiler.dir / "bin" / "jfrconv"))
    rel = lambda p: str(runs.relative(p, run_dir))  # noqa: E731
    entries = []
    for event in sess.events:
        files = got["files"].get(event, {})
        e = _entry(sess, event, engine=got["engine"] if event == "cpu" else event, notes=got["notes"] if event == "cpu" else [],
                   interval=_interval(settings.interval, event, sess.events), jfr=rel(got["jfr"]),
                   weight=fkconvert.WEIGHTS.get(event, "samples"))
        if event == "cpu":
            e["engine_asked"], e["engine_why"] = sess.cpu_engine, sess.cpu_engine_why
        counted = sess.jvm_allocated if event == "alloc" else None
        if counted is not None:
            e["jvm_allocated_bytes"], e["jvm_threads_ended"] = counted
        if event in got["errors"] or "collapsed" not in files or "html" not in files:
            e["error"] = got["errors"].get(event, f"no {event} output")
            entries.append(e)
            continue
        collapsed_text = files["collapsed"].read_text(errors="replace")
        counts = files.get("samples.collapsed")
        e["samples"] = count_samples(counts.read_text(errors="replace") if counts else collapsed_text)
        e["weight_total"] = count_samples(collapsed_text)
        if event == "cpu" and e["engine"] == "perf_events":
            # perf_events without kernel profiling (perf_event_paranoid >= 2, no CAP_PERFMON)
            # samples user mode only: the profile then holds no kernel frame
            e["kernel_frames"] = fkconvert.KERNEL_FRAME in collapsed_text
        e["collapsed"], e["html"] = rel(files["collapsed"]), rel(files["html"])
        for key, suffix in (("samples_collapsed", "samples.collapsed"), ("pprof", "pb.gz"),
                            ("threads_collapsed", "threads.collapsed"), ("heatmap", "heatmap.html")):
            if suffix in files:
                e[key] = rel(files[suffix])
        if e["samples"] == 0:
            e["error"] = (f"the {event} profile of {sess.label} holds no samples: was the service busy? "
                          "check the load figures, or raise --duration")
        else:
            seed = runs.exclusive_copy(files["html"], runs.seed_flamegraph(settings.flamegraph_dir, sess.label,
                                                                           event, stamp))
            e["flamegraph"] = str(runs.relative(seed, settings.root))
        entries.append(e)
    return entries


def print_outcome(outcome: Outcome) -> None:
    load = outcome.manifest.get("load") or {}
    if load:
        ui.say(f"load: target {load.get('target_tps')} TPS, achieved {load.get('achieved_tps')} TPS, "
               f"p95 {load.get('p95_ms')} ms, errors {load.get('error_rate')}, "
               f"dropped iterations {load.get('dropped_iterations')}")
    for cap in outcome.captures:
        who = cap["service"] if cap.get("replicas", 1) == 1 else f"{cap['service']}.{cap.get('replica')}"
        if cap.get("error"):
            ui.warn(f"{who} {cap['event']}: {cap['error']}")
            continue
        engine = f", engine {cap.get('engine')}" if cap.get("event") == "cpu" else ""
        ui.say(f"{who} {cap['event']}: {cap.get('samples'):,} samples{engine} -> {cap.get('flamegraph')}")
    ui.say(f"run directory: {outcome.run_dir}")
