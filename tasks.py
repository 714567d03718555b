"""flamekit: async-profiler flame graphs of JVM compose stacks under fixed-rate k6 load.

Thin tasks: flags -> Settings -> one core call -> print. Run `inv --list`.
"""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from invoke import Collection, Exit, task

from flamekit import config as fkconfig
from flamekit import ui
from flamekit.errors import FlamekitError

ROOT = Path(__file__).resolve().parent


def settings(c, **flags) -> fkconfig.Settings:
    return fkconfig.build_settings(c.config.get("flamekit", {}), ROOT, **flags)


def user_errors(fn):
    """One place turns domain errors into a one-line message and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(c, *args, **kwargs):
        verbose = bool(kwargs.get("verbose"))
        ui.setup_logging(verbose)
        try:
            return fn(c, *args, **kwargs)
        except FlamekitError as exc:
            raise Exit(f"error: {exc}", code=exc.exit_code) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None

    return wrapper


VERBOSE = "show each docker command and debug logging"


# ------------------------------------------------------------------ engine and images
@task(help={"verbose": VERBOSE})
@user_errors
def engine(c, verbose=False):
    """Make a Docker engine and `docker compose` available (installs docker.io as root on Debian)."""
    from flamekit.setup import engine as fkengine
    ui.say(fkengine.ensure_engine(say=ui.say))


def _images(s: fkconfig.Settings, mode: str | None = None, rebuild: bool = False):
    from flamekit.setup import engine as fkengine
    return fkengine.ensure_images(
        mode or s.images,
        (s.build_image, s.base_image),
        (s.offline_build_image, s.offline_base_image),
        s.debian_mirror,
        say=ui.say,
        rebuild=rebuild,
    )


@task(help={
    "offline": "build local Debian bookworm + OpenJDK 17 equivalents with debootstrap instead of pulling",
    "rebuild": "rebuild the offline images even when they exist",
    "verbose": VERBOSE,
})
@user_errors
def base_images(c, offline=False, rebuild=False, verbose=False):
    """Ensure the demo's build and runtime base images (pulled, or built offline)."""
    s = settings(c)
    choice = _images(s, "offline" if offline else None, rebuild)
    ui.ok(f"build image {choice.build_image}, runtime image {choice.base_image} ({choice.how})")


# ------------------------------------------------------------------ the stack
def _stack(s: fkconfig.Settings, profiling: bool = False, images=None):
    from flamekit.targets import compose as fkstack
    override = None
    if profiling:
        from flamekit.targets import override as fkoverride
        override = fkoverride.override_path(s)
    env = images.compose_env() if images is not None else {}
    return fkstack.Stack(s, override=override, env=env)


@task(help={
    "profiling": "apply the profiling override (profiler mount, SYS_PTRACE, seccomp, JVM flags)",
    "build": "rebuild the service images",
    "timeout": "seconds to wait for the services to become healthy",
    "privileges": "seed (SYS_PTRACE + seccomp:unconfined) or minimal (adds PERFMON instead)",
    "verbose": VERBOSE,
})
@user_errors
def up(c, profiling=False, build=False, timeout=None, privileges=None, verbose=False):
    """Start the compose stack (waits until healthy)."""
    s = settings(c, wait_timeout=timeout, privileges=privileges)
    images = _images(s) if s.demo else None
    if profiling:
        from flamekit.targets import override as fkoverride
        fkoverride.prepare(s)
    st = _stack(s, profiling, images)
    ui.say(f"starting {s.project_name} ({', '.join(str(f) for f in st.files)})")
    import time
    t0 = time.monotonic()
    if build:
        ui.say("building the service images (javac inside the build image; about a minute the first time)")
    st.up(build=build, timeout=s.wait_timeout)
    ui.ok(f"stack healthy in {time.monotonic() - t0:.1f}s")
    _print_status(st)
    if profiling:
        from flamekit.targets import override as fkoverride
        for line in fkoverride.verify(st, s):
            ui.say(line)


@task(help={"verbose": VERBOSE})
@user_errors
def down(c, verbose=False):
    """Stop and remove the stack's containers, networks and volumes."""
    s = settings(c)
    st = _stack(s)
    st.down()
    ui.ok(f"{s.project_name} is down")


def _print_status(st) -> None:
    rows = [(x.service, x.state, x.health or "-", x.ports or "-") for x in st.ps()]
    ui.say(ui.table(rows, ("service", "state", "health", "ports")) if rows else "no containers")


@task(help={"verbose": VERBOSE})
@user_errors
def status(c, verbose=False):
    """Show the stack's services, their health and published ports."""
    _print_status(_stack(settings(c)))


@task(help={"timeout": "seconds to wait (default flamekit.wait_timeout)", "verbose": VERBOSE})
@user_errors
def wait_healthy(c, timeout=None, verbose=False):
    """Wait until every container of the stack is running and healthy."""
    s = settings(c, wait_timeout=timeout)
    st = _stack(s)
    states = st.wait_healthy(s.wait_timeout)
    ui.ok("healthy: " + ", ".join(x.service for x in states))


@task(help={"file": "sample data JSON (default flamekit.sample_data)", "verbose": VERBOSE})
@user_errors
def sample_data(c, file=None, verbose=False):
    """Load products with stock, customers and a few orders through the gateway (idempotent)."""
    from flamekit.load.k6 import sample as sample
    s = settings(c, sample_data=file)
    if s.sample_data is None:
        ui.say("no sample data configured (flamekit.sample_data); nothing to load")
        return
    summary = sample.load_sample_data(s.gateway_url, s.sample_data)
    for line in summary.lines():
        ui.say(line)
    ui.ok("sample data loaded")


# ------------------------------------------------------------------ async-profiler
def _engine_arch() -> str:
    from flamekit.profiler import install as fkprofiler
    from flamekit.targets import compose as fkstack
    return fkprofiler.arch_from_platform(fkstack.engine_facts()["architecture"])


def _download(s: fkconfig.Settings, version=None, source=None, archive=None, arch=None, force=False,
              prove=True):
    from flamekit.profiler import install as fkprofiler
    req = fkprofiler.ProfilerRequest(
        version=version or s.profiler.version,
        arch=arch or _engine_arch(),
        source=source or s.profiler.source,
        archive=Path(archive).resolve() if archive else None,
        github_url_template=s.profiler.github_url,
        maven_repo_url=s.profiler.maven_repo,
        pins=s.profiler.pins,
        force=force,
    )
    bar = fkprofiler.ProgressBar(sys.stdout) if hasattr(fkprofiler, "ProgressBar") else None
    res = fkprofiler.install_profiler(req, s.profiler.dir, progress=bar)
    if res.status == "already-installed":
        ui.ok(f"async-profiler {res.version} linux-{res.arch} already installed in {res.install_dir}; "
              "nothing to do (--force reinstalls)")
    else:
        ui.ok(f"installed async-profiler {res.version} linux-{res.arch} from {res.source} "
              f"({res.size:,} bytes, sha256 {res.sha256[:16]}..., {res.seconds:.1f}s) in {res.install_dir}")
    if prove:
        _prove_profiler(s)
    return res


def _prove_profiler(s: fkconfig.Settings) -> None:
    """asprof --version in a throwaway container of the stack's runtime image."""
    from flamekit.setup import engine as fkengine
    from flamekit.targets import compose as fkstack
    image = s.base_image if fkengine.image_present(s.base_image) else s.offline_base_image
    if not fkengine.image_present(image):
        ui.warn(f"no {s.base_image} or {s.offline_base_image} image yet: run `inv base-images` "
                "to check asprof inside a container")
        return
    cp = s.profiler.container_path
    out = fkstack.run_throwaway(image, [f"{cp}/bin/asprof", "--version"],
                                volumes=[(str(s.profiler.dir), cp, "ro")])
    ui.ok(f"asprof in a {image} container reports: {out.strip()}")


@task(help={
    "version": "async-profiler version (default flamekit.profiler.version, 4.3)",
    "source": "github, maven or archive; default: github, then maven",
    "archive": "a .tar.gz or .zip of an async-profiler release you already have (implies --source archive)",
    "arch": "x64 or arm64; default: the Docker engine's architecture",
    "force": "download and install again even when installed and verified",
    "verbose": VERBOSE,
})
@user_errors
def download_profiler(c, version=None, source=None, archive=None, arch=None, force=False, verbose=False):
    """Download, verify and install async-profiler for the containers' architecture."""
    s = settings(c)
    if archive and not source:
        source = "archive"
    _download(s, version, source, archive, arch, force)


@task(help={
    "write": "write the override to this path (default: print it)",
    "privileges": "seed (SYS_PTRACE + seccomp:unconfined) or minimal (PERFMON)",
    "verbose": VERBOSE,
})
@user_errors
def profiling_override(c, write=None, privileges=None, verbose=False):
    """Generate the profiling override for the configured compose project."""
    from flamekit.targets import override as fkoverride
    from flamekit.targets import compose as fkstack
    s = settings(c, privileges=privileges)
    resolved = fkstack.Stack(s).config()
    doc = fkoverride.generate(s, resolved)
    if write:
        path = fkoverride.write_override(s, resolved, Path(write))
        ui.ok(f"wrote {path} for {', '.join(s.jvm_services)}")
    else:
        sys.stdout.write(fkoverride.render(doc))


# ------------------------------------------------------------------ capture
def _countdown(label, seconds):
    return ui.Countdown(label, seconds)


def _print_outcome(s, outcome) -> None:
    m = outcome.manifest
    load = m.get("load") or {}
    if load:
        ui.say(f"load: target {load.get('target_tps')} TPS, achieved {load.get('achieved_tps')} TPS, "
               f"p95 {load.get('p95_ms')} ms, errors {load.get('error_rate')}, "
               f"dropped iterations {load.get('dropped_iterations')}")
    for cap in outcome.captures:
        if cap.get("error"):
            ui.warn(f"{cap['service']} {cap['event']}: {cap['error']}")
            continue
        engine = f", engine {cap.get('engine')}" if cap.get("event") == "cpu" else ""
        ui.say(f"{cap['service']} {cap['event']}: {cap.get('samples'):,} samples{engine} -> {cap.get('flamegraph')}")
    ui.say(f"run directory: {outcome.run_dir}")


@task(help={
    "service": "compose service to profile (default flamekit.service, order-service)",
    "event": "cpu, alloc, wall, lock, or all (all four from one load window)",
    "duration": "capture seconds (default 60)",
    "tps": "k6 target rate, iterations per second (default 25)",
    "warmup": "seconds of load before capturing (default 15)",
    "interval": "sampling interval passed to asprof -i (e.g. 10ms; default: async-profiler's)",
    "pid": "the JVM's PID inside the container, when several JVMs run there",
    "no_load": "capture without running k6",
    "verbose": VERBOSE,
})
@user_errors
def profile(c, service=None, event=None, duration=None, tps=None, warmup=None, interval=None, pid=None,
            no_load=False, verbose=False):
    """Warm up, hold the rate with k6, capture a flame graph and copy it out."""
    from flamekit.capture import session as fkcapture
    from flamekit.profiler import install as fkprofiler
    from flamekit import workflow
    s = settings(c, service=service, event=event, duration=duration, tps=tps, warmup=warmup, interval=interval)
    s.check_service(s.service)
    events = fkcapture.parse_events(s.event)
    fkprofiler.require_profiler(s.profiler.dir)
    st = _stack(s)  # exec/ps need only the project; the override matters for `up`
    outcome = workflow.run_profile(s, st, [s.service], events, duration=s.duration, tps=s.tps,
                                   warmup=s.warmup, interval=s.interval, pid=int(pid) if pid else None,
                                   load=not no_load, say=ui.say, countdown=_countdown)
    _print_outcome(s, outcome)


# ------------------------------------------------------------------ report
def _write_report(s: fkconfig.Settings, run_dir: Path) -> Path:
    from flamekit.analysis import report as fkreport
    stamp = run_dir.name
    out = fkreport.write_report(run_dir, s.reports_dir / f"flamegraph-analysis-{stamp}.md", s.root)
    fkreport.write_index(s.runs_dir, s.flamegraph_dir, s.reports_dir)
    return out


@task(help={"run": "run directory or stamp (default: the newest run)", "verbose": VERBOSE})
@user_errors
def report(c, run=None, verbose=False):
    """Write the analysis report of a run (and refresh docs/perf/flamegraphs/index.html)."""
    from flamekit.analysis import report as fkreport
    s = settings(c)
    run_dir = fkreport.resolve_run(s.runs_dir, run)
    out = _write_report(s, run_dir)
    for w in fkreport.validity_warnings(fkreport.read_manifest(run_dir)):
        ui.warn(w)
    ui.ok(f"report: {out}")


@task(help={
    "run_a": "the earlier run (directory or stamp)",
    "run_b": "the later run (directory or stamp)",
    "top": "methods listed per direction (default 10)",
    "verbose": VERBOSE,
})
@user_errors
def compare(c, run_a, run_b, top=10, verbose=False):
    """Compare two runs: what got hotter or cooler, load deltas, differential flame graphs."""
    from flamekit.analysis import report as fkreport
    s = settings(c)
    cmp = fkreport.compare_runs(run_a, run_b, s.runs_dir, top=int(top))
    text = fkreport.comparison_markdown(cmp)
    out_dir = s.reports_dir / "comparisons"
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"compare-{cmp.stamp_a}-vs-{cmp.stamp_b}.md"
    diffs = []
    for cc in cmp.captures:
        if cc.profile_a is None or cc.profile_b is None:
            continue
        html = s.flamegraph_dir / f"diff-{cc.service}-{cc.event}-{cmp.stamp_a}-vs-{cmp.stamp_b}.html"
        fkreport.write_diff_flamegraph(cc.profile_a, cc.profile_b, html,
                                       title=f"{cc.service} {cc.event}: {cmp.stamp_a} -> {cmp.stamp_b}",
                                       label_a=cmp.stamp_a, label_b=cmp.stamp_b, event=cc.event)
        diffs.append(html)
    md.write_text(text + "".join(f"\n- differential flame graph: `{d}`" for d in diffs) + "\n")
    sys.stdout.write(text)
    for d in diffs:
        ui.say(f"differential flame graph: {d}")
    ui.ok(f"comparison: {md}")


@task(help={"run": "run directory or stamp (default: the newest)",
            "flamegraph": "open a flame graph of the run instead of its report",
            "print_only": "only print the path, do not start a browser",
            "verbose": VERBOSE})
@user_errors
def view(c, run=None, flamegraph=False, print_only=False, verbose=False):
    """Open the newest report (or flame graph) in a browser, or print its path."""
    from flamekit.analysis import report as fkreport
    s = settings(c)
    run_dir = fkreport.resolve_run(s.runs_dir, run)
    if flamegraph:
        m = fkreport.read_manifest(run_dir)
        paths = [s.root / cap["flamegraph"] for cap in m.get("captures", []) if cap.get("flamegraph")]
        if not paths:
            raise fkconfig.ConfigError(f"run {run_dir.name} has no flame graph", "run `inv profile` again")
        target = paths[0]
    else:
        target = s.reports_dir / f"flamegraph-analysis-{run_dir.name}.md"
        if not target.is_file():
            target = _write_report(s, run_dir)
    ui.say(str(target))
    if not print_only and (os.environ.get("DISPLAY") or sys.platform == "darwin"):
        import webbrowser
        webbrowser.open(target.resolve().as_uri())


# ------------------------------------------------------------------ the whole chain
@task(help={
    "services": "comma-separated JVM services to capture (default: every configured JVM service)",
    "events": "comma-separated events (default cpu,alloc,wall,lock)",
    "duration": "capture seconds (default 60)",
    "tps": "k6 target rate (default 25)",
    "warmup": "seconds of load before capturing (default 15)",
    "interval": "cpu sampling interval for asprof -i (default async-profiler's)",
    "keep_up": "leave the stack running at the end",
    "verbose": VERBOSE,
})
@user_errors
def profile_all(c, services=None, events=None, duration=None, tps=None, warmup=None, interval=None,
                keep_up=False, verbose=False):
    """The whole workflow: profiler, engine, images, up --profiling, sample data, capture, report, down."""
    import time
    from flamekit.capture import session as fkcapture
    from flamekit.setup import engine as fkengine
    from flamekit.targets import override as fkoverride
    from flamekit.profiler import install as fkprofiler
    from flamekit import workflow
    s = settings(c, duration=duration, tps=tps, warmup=warmup, interval=interval)
    chosen = fkconfig.split_list(services, "services") if services else s.jvm_services
    for svc in chosen:
        s.check_service(svc)
    evs = fkcapture.parse_events(events or "cpu,alloc,wall,lock")
    total = 8
    t0 = time.monotonic()
    ui.banner(1, total, "async-profiler")
    if fkprofiler.installed_profiler(s.profiler.dir) is None:
        _download(s, prove=False)
    else:
        ui.ok(f"async-profiler installed in {s.profiler.dir}")
    ui.banner(2, total, "engine and images")
    ui.say(fkengine.ensure_engine(say=ui.say))
    images = _images(s) if s.demo else None
    ui.banner(3, total, "stack up with profiling")
    fkoverride.prepare(s)
    st = _stack(s, profiling=True, images=images)
    started = False
    outcome = None
    try:
        started = True
        t_up = time.monotonic()
        if s.demo:
            ui.say("building the demo images if needed (about a minute the first time), then starting")
        st.up(build=s.demo, timeout=s.wait_timeout)
        ui.banner(4, total, "wait until healthy")
        states = st.wait_healthy(s.wait_timeout)
        ui.ok(f"healthy in {time.monotonic() - t_up:.1f}s: " + ", ".join(x.service for x in states))
        for line in fkoverride.verify(st, s):
            ui.say(line)
        ui.banner(5, total, "sample data")
        if s.sample_data is not None:
            from flamekit.load.k6 import sample as sample
            for line in sample.load_sample_data(s.gateway_url, s.sample_data).lines():
                ui.say(line)
        else:
            ui.say("no sample data configured")
        ui.banner(6, total, f"capture {', '.join(evs)} of {', '.join(chosen)} in one load window")
        run_dir = None
        try:
            outcome = workflow.run_profile(s, st, list(chosen), evs, duration=s.duration, tps=s.tps,
                                           warmup=s.warmup, interval=s.interval, say=ui.say,
                                           countdown=_countdown)
            run_dir = outcome.run_dir
            _print_outcome(s, outcome)
        except FlamekitError as exc:
            run_dir = getattr(exc, "run_dir", None)
            raise
        finally:
            ui.banner(7, total, "report")
            from flamekit.analysis import report as fkreport
            try:
                if run_dir is None:
                    raise FlamekitError("the capture failed before a run directory existed")
                rep = _write_report(s, run_dir)
                for w in fkreport.validity_warnings(fkreport.read_manifest(run_dir)):
                    ui.warn(w)
            except FlamekitError as exc:
                rep = None
                ui.warn(f"no report: {exc}")
    finally:
        if started and not keep_up:
            ui.banner(8, total, "stack down")
            try:
                st.down()
                ui.ok(f"{s.project_name} is down")
            except FlamekitError as exc:
                ui.warn(f"teardown failed: {exc}")
        elif keep_up:
            ui.banner(8, total, "stack left up (--keep-up); `inv down` stops it")
    ui.say(f"profile-all took {time.monotonic() - t0:.0f}s")
    ui.say(f"report: {rep}")


ns = Collection(engine, base_images, up, down, status, wait_healthy, sample_data, download_profiler,
                profiling_override, profile, profile_all, report, compare, view)
ns.configure({"flamekit": fkconfig.defaults()})
