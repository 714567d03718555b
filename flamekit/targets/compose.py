"""The one Docker seam: compose up/down/ps, exec and copy, through python-on-whales.

Nothing else in flamekit imports python_on_whales. Every DockerException is
turned into a StackError carrying the last line docker printed.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

try:  # moved between versions
    from python_on_whales.exceptions import ClientNotFoundError
except ImportError:  # pragma: no cover
    from python_on_whales.client_config import ClientNotFoundError  # type: ignore

from ..config import Settings
from ..errors import EngineError, StackError

log = logging.getLogger(__name__)


def _why(exc: DockerException) -> str:
    text = (getattr(exc, "stderr", None) or "")
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    if lines:
        return lines[-1]
    return f"`{' '.join(map(str, exc.docker_command))}` exited with {exc.return_code}"


@contextlib.contextmanager
def docker_errors(what: str, hint: str | None = None) -> Iterator[None]:
    try:
        yield
    except ClientNotFoundError:
        raise EngineError("the docker CLI was not found", "install Docker, or run `inv engine` as root") from None
    except DockerException as exc:
        raise StackError(f"{what} failed: {_why(exc)}", hint) from None


@contextlib.contextmanager
def compose_environment(env: dict[str, str] | None) -> Iterator[None]:
    """Variables compose interpolates (image choice, hotspot costs) without touching the user's files."""
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass(frozen=True)
class ServiceState:
    service: str
    container: str
    state: str
    health: str | None
    ports: str
    image: str


class Stack:
    """A compose project: base files, optionally plus the profiling override."""

    def __init__(self, settings: Settings, override: Path | None = None,
                 env: dict[str, str] | None = None):
        self.settings = settings
        self.override = override
        self.env = dict(env or {})
        missing = [f for f in settings.compose_files if not f.is_file()]
        if missing:
            raise StackError(f"compose file not found: {missing[0]}",
                             "check flamekit.compose_files (and project_dir) in your invoke.yaml")
        files = list(settings.compose_files) + ([override] if override else [])
        self.files = files
        self.docker = DockerClient(
            compose_files=files,
            compose_project_name=settings.project_name,
            compose_project_directory=settings.compose_files[0].parent,
        )

    # ------------------------------------------------------------- lifecycle
    def config(self) -> dict:
        with compose_environment(self.env), docker_errors("docker compose config", "fix the compose files"):
            return self.docker.compose.config(return_json=True)

    def up(self, build: bool = False, wait: bool = True, timeout: int | None = None,
           quiet: bool = True) -> None:
        timeout = timeout or self.settings.wait_timeout
        with compose_environment(self.env), docker_errors(
            "docker compose up",
            f"see `docker compose -p {self.settings.project_name} logs`; `inv status` shows what is unhealthy",
        ):
            self.docker.compose.up(build=build, detach=True, wait=wait, wait_timeout=timeout,
                                   quiet=quiet, remove_orphans=True)

    def build(self, quiet: bool = True) -> None:
        with compose_environment(self.env), docker_errors("docker compose build", "see the build output with -v"):
            self.docker.compose.build(quiet=quiet)

    def down(self, volumes: bool = True) -> None:
        with compose_environment(self.env), docker_errors("docker compose down"):
            # no timeout of ours: each service's stop_grace_period applies (the demo's is 2 s,
            # since sh as PID 1 ignores SIGTERM; a forced 10 s here cost ~30 s per teardown)
            self.docker.compose.down(volumes=volumes, remove_orphans=True, quiet=True)

    def ps(self) -> list[ServiceState]:
        with docker_errors("docker compose ps"):
            containers = self.docker.compose.ps(all=True)
        out = []
        for c in containers:
            labels = c.config.labels or {}
            health = c.state.health.status if c.state.health else None
            ports = []
            for priv, binds in (c.network_settings.ports or {}).items():
                for b in binds or []:
                    ports.append(f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}->{priv}")
            out.append(ServiceState(
                service=labels.get("com.docker.compose.service", c.name),
                container=c.name, state=c.state.status, health=health,
                ports=", ".join(sorted(set(ports))), image=c.config.image,
            ))
        return sorted(out, key=lambda s: s.service)

    def running(self) -> bool:
        return any(s.state == "running" for s in self.ps())

    def wait_healthy(self, timeout: int, services: Sequence[str] | None = None,
                     tick: Callable[[list[ServiceState]], None] | None = None) -> list[ServiceState]:
        """Wait until every (chosen) container is running and, if it has a health check, healthy."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.ps()
            if services:
                states = [s for s in states if s.service in services]
            if not states:
                raise StackError(f"no containers in project {self.settings.project_name}",
                                 "start the stack with `inv up`")
            bad = [s for s in states if s.state != "running" or (s.health not in (None, "healthy"))]
            if tick:
                tick(states)
            if not bad:
                return states
            dead = [s for s in bad if s.state in ("exited", "dead")]
            if dead:
                raise StackError(f"{dead[0].service} is {dead[0].state}",
                                 f"see `docker logs {dead[0].container}`")
            if time.monotonic() > deadline:
                names = ", ".join(f"{s.service} ({s.health or s.state})" for s in bad)
                raise StackError(f"not healthy after {timeout}s: {names}",
                                 f"see `docker logs {bad[0].container}` or raise --timeout")
            time.sleep(1)

    # ------------------------------------------------------------- containers
    def container(self, service: str):
        with docker_errors(f"finding the container of {service}"):
            found = self.docker.compose.ps([service])
        running = [c for c in found if c.state.running]
        if not running:
            raise StackError(f"service {service} has no running container",
                             "start the stack with `inv up --profiling`")
        return running[0]

    def exec(self, service: str, command: Sequence[str], what: str | None = None,
             user: str | None = None) -> str:
        c = self.container(service)
        with docker_errors(what or f"`{' '.join(command)}` in {service}"):
            return c.execute(list(command), tty=False, user=user)

    def exec_result(self, service: str, command: Sequence[str]) -> tuple[int, str, str]:
        """Run a command and return (exit code, stdout, stderr) instead of raising."""
        c = self.container(service)
        try:
            out = c.execute(list(command), tty=False)
            return 0, out, ""
        except DockerException as exc:
            so = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            se = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
            return exc.return_code, so, se

    def copy_from(self, service: str, src: str, dest: Path) -> Path:
        c = self.container(service)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with docker_errors(f"copying {src} out of {service}"):
            c.copy_from(src, dest)
        return dest

    def image_id(self, service: str) -> str:
        return self.container(service).image

    def inspect(self, service: str):
        return self.container(service)


def engine_facts() -> dict[str, str]:
    """Server version, OS/arch and cgroup version of the engine, for manifests and arch choice."""
    from python_on_whales import docker
    with docker_errors("docker info", "start the engine with `inv engine`"):
        info = docker.system.info()
    return {
        "server_version": str(info.server_version),
        "architecture": str(info.architecture),
        "os": str(info.operating_system),
        "cgroup_version": str(getattr(info, "cgroup_version", "") or ""),
        "cpus": str(info.n_cpu),
        "memory": str(info.mem_total),
    }


def run_throwaway(image: str, command: Sequence[str], volumes: Sequence[tuple[str, str, str]] = (),
                  entrypoint: str | None = None) -> str:
    """`docker run --rm` one command in ``image`` and return its output."""
    from python_on_whales import docker
    with docker_errors(f"running {command[0]} in a throwaway {image} container"):
        return docker.run(image, list(command), remove=True, volumes=list(volumes),
                          entrypoint=entrypoint)
