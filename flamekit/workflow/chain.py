"""The chain and the stack: images, up (with the profiling override), checks, reports, and
`profile_all`, which runs every step and always tears down what it started."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

from .. import runs, ui
from ..capture.session import parse_events
from ..config import Settings
from ..errors import CaptureError, FlamekitError
from .profile import print_outcome, run_profile

# ------------------------------------------------------------------ the stack
def ensure_images(settings: Settings, mode: str | None = None, rebuild: bool = False):
    from ..setup.images import ensure_images as _ensure
    return _ensure(mode or settings.images, (settings.build_image, settings.base_image),
                   (settings.offline_build_image, settings.offline_base_image), settings.debian_mirror,
                   say=ui.say, rebuild=rebuild)


def compose_target(settings: Settings, profiling: bool = False, images=None, prepare: bool = False,
                   scale: dict[str, int] | None = None):
    """The project as a Target: compose (with the profiling override when ``profiling``,
    generated first when ``prepare``: it needs the images' ENV and the installed profiler), or a
    Swarm stack when ``settings.target`` is swarm (it makes its own override)."""
    from ..targets import override as fkoverride
    from ..targets.compose import ComposeTarget
    env = images.compose_env() if images is not None else {}
    if settings.target == "swarm":
        from ..profiler.install import require_profiler
        from ..targets.swarm import SwarmTarget
        if profiling:
            require_profiler(settings.profiler.dir)
        return SwarmTarget(settings, env=env, scale=scale, profiling=profiling, nodes=settings.swarm_nodes)
    if not profiling:
        return ComposeTarget(settings, env=env, scale=scale)
    path = (fkoverride.prepare(settings, ComposeTarget(settings, env=env), say=ui.say) if prepare
            else fkoverride.override_path(settings))
    return ComposeTarget(settings, override=path, env=env, scale=scale)


def _swarm_marker(settings: Settings) -> Path:
    return settings.output_dir / f"swarm-initialised.{settings.project_name}"


def stack_up(settings: Settings, profiling: bool, build: bool, scale: dict[str, int] | None = None) -> object:
    images = ensure_images(settings) if settings.demo else None
    target = compose_target(settings, profiling, images, prepare=profiling, scale=scale)
    files = getattr(target, "files", settings.compose_files)
    ui.say(f"starting {settings.project_name} on {target.kind} ({', '.join(str(f) for f in files)})")
    if build:
        ui.say("building the service images if needed (javac inside the build image; about a minute the first time)")
    t0 = time.monotonic()
    target.up(build=build, timeout=settings.wait_timeout)
    if getattr(target, "initialised_swarm", False):  # `inv down` undoes the swarm init it made
        from ..util import atomic_write
        atomic_write(_swarm_marker(settings), "flamekit initialised this swarm\n")
    ui.ok(f"stack healthy in {time.monotonic() - t0:.1f}s")
    return target


def stack_down(settings: Settings, target=None) -> None:
    target = target or compose_target(settings)
    target.down()
    marker = _swarm_marker(settings)
    if settings.target == "swarm" and marker.is_file():
        target.initialised_swarm = True  # by an earlier `inv up`: the marker says so
        target.leave_swarm()
        marker.unlink(missing_ok=True)
        ui.ok("left the swarm flamekit had initialised")
    ui.ok(f"{settings.project_name} is down")


def print_status(target) -> None:
    rows = [(x.service, x.container, x.state, x.health or "-", x.ports or "-") for x in target.ps()]
    ui.say(ui.table(rows, ("service", "container", "state", "health", "ports")) if rows else "no containers")


def sample_data(settings: Settings) -> None:
    from ..load import sample as fksample
    if settings.sample_data is None:
        ui.say("no sample data configured (flamekit.sample_data); nothing to load")
        return
    for line in fksample.load_sample_data(settings.gateway_url, settings.sample_data).lines():
        ui.say(line)
    ui.ok("sample data loaded")


def show_override(settings: Settings, write: Path | None) -> None:
    """The override flamekit would apply: printed, or written to ``write``."""
    from ..targets import override as fkoverride
    target = compose_target(settings)
    resolved = target.config()
    envs = fkoverride.image_envs(settings, target, resolved)
    if write:
        fkoverride.write_override(settings, resolved, write, envs)
        ui.ok(f"wrote {write} for {', '.join(settings.jvm_services)}")
    else:
        ui.say(fkoverride.render(fkoverride.generate(settings, resolved, envs)).rstrip("\n"))


def profiling_checks(settings: Settings, target, lines: list[str] | None = None) -> None:
    """Print the profiling checks (run them now unless their ``lines`` are given)."""
    from ..capture.checks import verify
    for line in verify(target, settings) if lines is None else lines:
        (ui.warn if line.startswith("warning") else ui.say)(line)


# ------------------------------------------------------------------ reports
def write_reports(settings: Settings, run_dir: Path) -> Path:
    from ..analysis.captures import load_captures
    from ..analysis.validity import run_warnings
    from ..render.html import write_index
    from ..render.markdown import write_report
    from ..render.report_html import write_html_report
    from ..analysis.replicas import merge_run
    from ..capture.convert import host_converter
    merged = merge_run(run_dir, host_converter(settings.profiler.dir / "bin" / "jfrconv"))
    out = write_report(run_dir, runs.report_path(settings.reports_dir, run_dir.name), settings.root)
    tables = [table.markdown() for _, table in merged if table is not None]
    if tables:  # scaled services: the merged view and how the replicas compare
        from ..util import atomic_write
        atomic_write(out, out.read_text() + "\n## Replicas\n\n" + "\n\n".join(tables) + "\n")
    html = write_html_report(run_dir, runs.report_path(settings.reports_dir, run_dir.name, "html"), settings.root)
    ui.ok(f"HTML report: {html}")
    write_index(settings.runs_dir, settings.flamegraph_dir, settings.reports_dir)
    manifest = runs.read_manifest(run_dir)
    for w in run_warnings(manifest, load_captures(run_dir, manifest, settings.root)):
        ui.warn(w)
    return out


# ------------------------------------------------------------------ the whole chain
def profile_all(settings: Settings, services: Sequence[str], events: Sequence[str], keep_up: bool = False) -> Path | None:
    """Profiler, engine, images, up --profiling, sample data, capture, report, down: the stack
    is torn down whatever happens (try/finally), after the report is written."""
    from ..profiler.install import installed_profiler
    from ..setup.engine import ensure_engine
    for svc in services:
        settings.check_service(svc)
    events = parse_events(events)
    total, t0 = 8, time.monotonic()
    steps: dict[str, float] = {}

    def step(n: int, title: str) -> None:
        steps[title] = time.monotonic()
        ui.banner(n, total, title)

    step(1, "async-profiler")
    if installed_profiler(settings.profiler.dir) is None:
        from .setup import download_profiler
        download_profiler(settings, prove=False)
    else:
        ui.ok(f"async-profiler installed in {settings.profiler.dir}")
    step(2, "engine and images")
    ui.say(ensure_engine(say=ui.say))
    images = ensure_images(settings) if settings.demo else None
    step(3, "stack up with profiling")
    target = compose_target(settings, True, images, prepare=True)
    report: Path | None = None
    capture_error: BaseException | None = None
    try:
        if settings.demo:
            ui.say("building the demo images if needed (about a minute the first time), then starting")
        target.up(build=settings.demo, timeout=settings.wait_timeout)
        step(4, "wait until healthy")
        states = target.wait_healthy(settings.wait_timeout)
        ui.ok(f"healthy in {time.monotonic() - steps['stack up with profiling']:.1f}s: "
              + ", ".join(dict.fromkeys(x.service for x in states)))
        step(5, "sample data and profiling checks")
        from ..capture.checks import verify
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="checks") as ex:
            checking = ex.submit(verify, target, settings)  # docker execs, while the gateway takes the data
            sample_data(settings)
            profiling_checks(settings, target, checking.result())
        step(6, f"capture {', '.join(events)} of {', '.join(services)} in one load window")
        run_dir = None
        try:
            outcome = run_profile(settings, target, list(services), events, duration=settings.duration,
                                  tps=settings.tps, warmup=settings.warmup, interval=settings.interval)
            run_dir = outcome.run_dir
            print_outcome(outcome)
        except BaseException as exc:
            capture_error = exc
            run_dir = getattr(exc, "run_dir", None)
            raise
        finally:
            if not isinstance(capture_error, KeyboardInterrupt):
                step(7, "report")
                try:
                    if run_dir is None:
                        raise CaptureError("the capture failed before a run directory existed")
                    report = write_reports(settings, run_dir)
                    ui.ok(f"report: {report}")
                except (FlamekitError, OSError) as exc:  # never hide the capture's own error
                    ui.warn(f"no report: {exc}")
    finally:
        if not keep_up:
            step(8, "stack down")
            try:
                stack_down(settings, target)
            except FlamekitError as exc:
                ui.warn(f"teardown failed: {exc}")
        else:
            ui.banner(8, total, "stack left up (--keep-up); `inv down` stops it")
    marks = list(steps.items()) + [("end", time.monotonic())]
    ui.say("step times: " + ", ".join(f"{name} {t2 - t1:.1f}s" for (name, t1), (_, t2) in zip(marks, marks[1:])))
    ui.say(f"profile-all took {time.monotonic() - t0:.0f}s")
    return report
