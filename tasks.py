"""flamekit: async-profiler flame graphs of JVM compose stacks under fixed-rate k6 load.

Thin tasks: flags -> Settings -> one core call -> print. Run `inv --list`; `inv TASK --help`.
"""
from __future__ import annotations

import functools
from pathlib import Path

from invoke import Collection, Exit, task

from flamekit import config as fkconfig
from flamekit import ui
from flamekit.errors import FlamekitError

ROOT = Path(__file__).resolve().parent
HELP = {  # flags several tasks share
    "verbose": "show each docker command and debug logging",
    "privileges": "seed (SYS_PTRACE + seccomp:unconfined, default), minimal (PERFMON where the engine knows it) or none",
    "jvm_flags": "comma-separated JVM flags appended to JAVA_TOOL_OPTIONS (default flamekit.jvm_flags)",
    "duration": "capture seconds (default 60)",
    "tps": "k6 target rate, iterations per second (default 25)",
    "warmup": "seconds of load before capturing (default 15)",
    "interval": "cpu sampling interval for asprof -i (e.g. 10ms; default: async-profiler's)",
    "run": "run directory or stamp (default: the newest run)",
}


def helps(*shared: str, **own: str) -> dict:
    return {**{k: HELP[k] for k in shared + ("verbose",)}, **own}


def settings(c, **flags) -> fkconfig.Settings:
    return fkconfig.build_settings(c.config.get("flamekit", {}), ROOT, **flags)


def user_errors(fn):
    """One place turns domain errors and interrupts into one line and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(c, *args, **kwargs):
        ui.setup_logging(bool(kwargs.get("verbose")))
        with ui.quiet_broken_pipe():
            try:
                return fn(c, *args, **kwargs)
            except FlamekitError as exc:
                raise Exit(f"error: {exc}", code=exc.exit_code) from None
            except KeyboardInterrupt as exc:  # errors.Interrupted too: after cleanup
                raise Exit(f"{exc or 'interrupted'}: profilers and k6 were stopped", code=130) from None

    return wrapper


# ------------------------------------------------------------------ engine and images
@task(help=helps())
@user_errors
def engine(c, verbose=False):
    """Make a Docker engine and `docker compose` available (installs docker.io as root on Debian)."""
    from flamekit.setup.engine import ensure_engine
    ui.say(ensure_engine(say=ui.say))


@task(help=helps(offline="build local Debian bookworm + OpenJDK 17 equivalents with debootstrap instead of pulling",
                 rebuild="rebuild the offline images even when they exist"))
@user_errors
def base_images(c, offline=False, rebuild=False, verbose=False):
    """Ensure the demo's build and runtime base images (pulled, or built offline)."""
    from flamekit.workflow.chain import ensure_images
    choice = ensure_images(settings(c), "offline" if offline else None, rebuild)
    ui.ok(f"build image {choice.build_image}, runtime image {choice.base_image} ({choice.how})")


# ------------------------------------------------------------------ the stack
@task(iterable=["scale"], help=helps("privileges", "jvm_flags", build="rebuild the service images",
                                    profiling="apply the profiling override (profiler mount, privileges, JVM flags)",
                                    timeout="seconds to wait for the services to become healthy",
                                    swarm="deploy as a Docker Swarm stack (swarm init when needed; same as target: swarm)",
                                    scale="SERVICE=N replicas; repeatable"))
@user_errors
def up(c, profiling=False, build=False, timeout=None, privileges=None, jvm_flags=None, swarm=False, scale=None,
       verbose=False):
    """Start the stack (waits until healthy); with --profiling, check every JVM."""
    from flamekit.workflow import chain
    s = settings(c, wait_timeout=timeout, privileges=privileges, jvm_flags=jvm_flags, target="swarm" if swarm else None)
    target = chain.stack_up(s, profiling, build, fkconfig.parse_scale(scale or []))
    chain.print_status(target)
    if profiling:
        chain.profiling_checks(s, target)


@task(help=helps())
@user_errors
def down(c, verbose=False):
    """Stop and remove the stack's containers, networks and volumes (Swarm: the stack)."""
    from flamekit.workflow.chain import stack_down
    stack_down(settings(c))


@task(help=helps())
@user_errors
def status(c, verbose=False):
    """Show the stack's containers, their health and published ports."""
    from flamekit.workflow.chain import compose_target, print_status
    print_status(compose_target(settings(c)))


@task(help=helps(timeout="seconds to wait (default flamekit.wait_timeout)"))
@user_errors
def wait_healthy(c, timeout=None, verbose=False):
    """Wait until every container of the stack is running and healthy."""
    from flamekit.workflow.chain import compose_target
    s = settings(c, wait_timeout=timeout)
    states = compose_target(s).wait_healthy(s.wait_timeout)
    ui.ok("healthy: " + ", ".join(x.container for x in states))


@task(help=helps(file="sample data JSON (default flamekit.sample_data)"))
@user_errors
def sample_data(c, file=None, verbose=False):
    """Load products with stock, customers and a few orders through the gateway (idempotent)."""
    from flamekit.workflow.chain import sample_data as load
    load(settings(c, sample_data=file))


# ------------------------------------------------------------------ async-profiler
@task(help=helps(version="async-profiler version (default flamekit.profiler.version, 4.3)",
                 source="github, maven or archive; default: github, then maven",
                 archive="a .tar.gz or .zip of an async-profiler release you already have (implies --source archive)",
                 arch="x64 or arm64; default: the Docker engine's architecture",
                 force="download and install again even when installed and verified",
                 no_check="skip running asprof --version in a container of the runtime image"))
@user_errors
def download_profiler(c, version=None, source=None, archive=None, arch=None, force=False, no_check=False,
                      verbose=False):
    """Download, verify and install async-profiler for the containers' architecture."""
    from flamekit.workflow.setup import download_profiler as download
    download(settings(c), version, source, archive, arch, force, prove=not no_check)


@task(help=helps("privileges", "jvm_flags", write="write the override to this path (default: print it)"))
@user_errors
def profiling_override(c, write=None, privileges=None, jvm_flags=None, verbose=False):
    """Generate the profiling override for the configured compose project."""
    from flamekit.workflow.chain import show_override
    show_override(settings(c, privileges=privileges, jvm_flags=jvm_flags), Path(write) if write else None)


# ------------------------------------------------------------------ capture
@task(help=helps("duration", "tps", "warmup", "interval",
                 service="compose service to profile (default flamekit.service, order-service); every replica",
                 event="cpu, alloc, wall, lock, a comma list, or all (all four from one load window)",
                 pid="the JVM's PID inside the container, when several JVMs run there",
                 replica="profile only this replica (1, 2, ...) of a scaled service",
                 load_workers="split the k6 rate over N processes (execution segments)",
                 no_load="capture without running k6"))
@user_errors
def profile(c, service=None, event=None, duration=None, tps=None, warmup=None, interval=None, pid=None,
            replica=None, load_workers=None, no_load=False, verbose=False):
    """Warm up, hold the rate with k6, capture flame graphs and copy them out."""
    from flamekit.profiler.install import require_profiler
    from flamekit.workflow import chain, profile as fkprofile
    s = settings(c, service=service, event=event, duration=duration, tps=tps, warmup=warmup, interval=interval,
                 load_workers=load_workers)
    s.check_service(s.service)
    require_profiler(s.profiler.dir)
    outcome = fkprofile.run_profile(
        s, chain.compose_target(s), [s.service], fkprofile.parse_events(s.event), duration=s.duration,
        tps=s.tps, warmup=s.warmup, interval=s.interval,
        pid=fkconfig.check_number(pid, "--pid", int, 1) if pid is not None else None,
        replica=fkconfig.check_number(replica, "--replica", int, 1) if replica is not None else None,
        load=not no_load)
    fkprofile.print_outcome(outcome)


# ------------------------------------------------------------------ report
@task(help=helps("run"))
@user_errors
def report(c, run=None, verbose=False):
    """Write the analysis report of a run (and refresh docs/perf/flamegraphs/index.html)."""
    from flamekit.workflow import review
    ui.ok(f"report: {review.report(settings(c), run)}")


@task(help=helps(run_a="the earlier run (directory or stamp)", run_b="the later run (directory or stamp)",
                 top="methods listed per direction (default 10)"))
@user_errors
def compare(c, run_a, run_b, top=10, verbose=False):
    """Compare two runs: what got hotter or cooler, load deltas, differential flame graphs."""
    from flamekit.workflow import review
    ui.ok(f"comparison: {review.compare(settings(c), run_a, run_b, fkconfig.check_number(top, '--top', int, 1))}")


@task(help=helps("run", flamegraph="open a flame graph of the run instead of its report",
                 print_only="only print the path, do not start a browser"))
@user_errors
def view(c, run=None, flamegraph=False, print_only=False, verbose=False):
    """Open the newest report (or flame graph) in a browser, or print its path."""
    from flamekit.workflow import review
    review.view(settings(c), run, flamegraph, print_only)


# ------------------------------------------------------------------ the whole chain
@task(help=helps("duration", "tps", "warmup", "interval", "privileges", "jvm_flags",
                 services="comma-separated JVM services to capture (default: every configured JVM service)",
                 events="comma-separated events (default cpu,alloc,wall,lock)",
                 load_workers="split the k6 rate over N processes (execution segments)",
                 keep_up="leave the stack running at the end",
                 baseline="gate the new run against this baseline (exit 1 regression, 2 cannot judge)"))
@user_errors
def profile_all(c, services=None, events=None, duration=None, tps=None, warmup=None, interval=None,
                privileges=None, jvm_flags=None, load_workers=None, keep_up=False, baseline=None, verbose=False):
    """The whole workflow: profiler, engine, images, up --profiling, sample data, capture, report, down."""
    from flamekit.workflow.chain import profile_all as chain_all
    s = settings(c, duration=duration, tps=tps, warmup=warmup, interval=interval, privileges=privileges,
                 jvm_flags=jvm_flags, load_workers=load_workers)
    chosen = fkconfig.split_list(services, "services") if services else s.jvm_services
    if baseline:
        from flamekit.workflow.gate import profile_all_gated
        return profile_all_gated(s, chosen, events or "cpu,alloc,wall,lock", baseline, keep_up=keep_up)
    report_path = chain_all(s, chosen, events or "cpu,alloc,wall,lock", keep_up=keep_up)
    ui.say(f"report: {report_path}")


# ------------------------------------------------------------------ baselines and the gate
@task(positional=["action"], iterable=["run"],
      help=helps(action="save or list", name="baseline name for save (letters, digits, . _ -), e.g. main",
                 run="a run to keep (directory or stamp); repeat --run to pool several runs (default: the newest)",
                 last="keep the newest N complete runs (2-3 runs let the gate learn how much each method "
                      "moves between runs)"))
@user_errors
def baseline(c, action, run=None, name="main", last=0, verbose=False):
    """`inv baseline save [--run RUN]... [--last N] --name NAME` keeps runs for `inv gate`; `inv baseline list`."""
    from flamekit.workflow import gate as fkgate
    if action in ("-h", "--help"):  # invoke hands a positional the --help flag: answer it
        raise Exit("usage: inv baseline save [--run RUN]... [--last N] --name NAME | inv baseline list "
                   "(options: inv --help baseline)", code=0)
    if action not in ("save", "list"):
        raise Exit(f"error: unknown baseline action {action!r}: use save or list", code=1)
    if action == "save":
        fkgate.save_baseline(settings(c), run or None, name, last=int(last or 0))
    else:
        fkgate.list_baselines(settings(c))


@task(iterable=["run"],
      help=helps(baseline="the baseline to compare with (see `inv baseline list`)",
                 run="the run to judge (directory or stamp; default: the newest); repeat --run to pool "
                     "repeats of one build",
                 last="judge the newest N complete runs pooled, as repeats of one build (two cut the "
                      "spread one fresh JVM brings by about 30 %)"))
@user_errors
def gate(c, baseline=None, run=None, last=0, verbose=False):
    """Exit 1 when a method's cost per request or the load got worse than a baseline; 2: cannot judge."""
    from flamekit.workflow import gate as fkgate
    fkgate.gate(settings(c), baseline, run or None, last=int(last or 0))


ns = Collection(engine, base_images, up, down, status, wait_healthy, sample_data, download_profiler,
                profiling_override, profile, profile_all, report, compare, view, baseline, gate)
ns.configure({"flamekit": fkconfig.defaults()})
