"""The compose target: a Docker Compose project (base files, optionally plus the profiling
override), reached through python-on-whales.

Only this package imports python_on_whales. Every DockerException becomes a StackError
carrying the last line docker printed.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException, NoSuchImage

try:  # moved between versions
    from python_on_whales.exceptions import ClientNotFoundError
except ImportError:  # pragma: no cover
    from python_on_whales.client_config import ClientNotFoundError  # type: ignore

from ..config import Settings
from ..errors import EngineError, StackError
from ..util import last_line
from .base import ContainerPrivileges, Replica, ServiceState, Target

log = logging.getLogger(__name__)


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value or "")


def _why(exc: DockerException) -> str:
    return last_line(_text(getattr(exc, "stderr", None)),
                     f"`{' '.join(map(str, exc.docker_command))}` exited with {exc.return_code}")


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


class EngineContainers:
    """What any target whose replicas are Docker engine containers shares: inspections through
    ``self._inspect(where)`` (a python-on-whales Container) and images through ``self.docker``.
    ``self._engine(replica)`` is the DockerClient of the engine that runs the replica."""

    def exec_result(self, where: Replica | str, command: Sequence[str]) -> tuple[int, str, str]:
        r = self.replica(where)
        try:
            return 0, self._engine(r).container.execute(r.id, list(command), tty=False), ""
        except DockerException as exc:
            return exc.return_code, _text(exc.stdout), _text(exc.stderr)

    def copy_from(self, where: Replica | str, src: str, dest: Path) -> Path:
        r = self.replica(where)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with docker_errors(f"copying {src} out of {r.label}"):
            self._engine(r).copy((r.id, src), dest)
        return dest

    def _inspect(self, where: Replica | str):
        r = self.replica(where)
        with docker_errors(f"inspecting {r.label}"):
            return self._engine(r).container.inspect(r.id)

    def image_id(self, where: Replica | str) -> str:
        return self._inspect(where).image

    def started_at(self, where: Replica | str) -> str:
        return str(self._inspect(where).state.started_at or "")

    def image_env(self, image: str) -> dict[str, str] | None:
        try:
            img = self.docker.image.inspect(image)
        except NoSuchImage:
            return None
        except DockerException as exc:
            raise StackError(f"docker image inspect {image} failed: {_why(exc)}") from None
        out = {}
        for item in img.config.env or []:
            k, _, v = item.partition("=")
            out[k] = v
        return out

    def privileges(self, where: Replica | str, mount_path: str) -> ContainerPrivileges:
        c = self._inspect(where)
        # the engine may normalise SYS_PTRACE to CAP_SYS_PTRACE
        caps = frozenset(x.upper().removeprefix("CAP_") for x in (c.host_config.cap_add or []))
        mounts = [m for m in (c.mounts or []) if m.destination == mount_path]
        return ContainerPrivileges(cap_add=caps, security_opt=frozenset(c.host_config.security_opt or []),
                                   profiler_mount_ro=(not mounts[0].rw) if mounts else None)


class ComposeTarget(EngineContainers, Target):
    """A compose project: base files, optionally plus the profiling override."""

    kind = "compose"

    def __init__(self, settings: Settings, override: Path | None = None,
                 env: dict[str, str] | None = None, scale: dict[str, int] | None = None):
        self.settings = settings
        self.project = settings.project_name
        self.override = override
        self.env = dict(env or {})
        self.scale = dict(scale or {})
        missing = [f for f in settings.compose_files if not f.is_file()]
        if missing:
            raise StackError(f"compose file not found: {missing[0]}",
                             "check flamekit.compose_files (and project_dir) in your invoke.yaml")
        self.files = list(settings.compose_files) + ([override] if override else [])
        self.docker = DockerClient(
            compose_files=self.files,
            compose_project_name=settings.project_name,
            compose_project_directory=settings.compose_files[0].parent,
        )

    # ------------------------------------------------------------- lifecycle
    def config(self) -> dict:
        with compose_environment(self.env), docker_errors("docker compose config", "fix the compose files"):
            return self.docker.compose.config(return_json=True)

    def build(self, services: Sequence[str] | None = None) -> None:
        with compose_environment(self.env), docker_errors("docker compose build", "see the build output with -v"):
            self.docker.compose.build(list(services) if services else None, quiet=True)

    def up(self, build: bool = False, timeout: int | None = None) -> None:
        timeout = timeout or self.settings.wait_timeout
        with compose_environment(self.env), docker_errors(
            "docker compose up",
            f"see `docker compose -p {self.project} logs`; `inv status` shows what is unhealthy",
        ):
            self.docker.compose.up(build=build, detach=True, wait=True, wait_timeout=timeout,
                                   quiet=True, remove_orphans=True, scales=self.scale or {})

    def down(self) -> None:
        with compose_environment(self.env), docker_errors("docker compose down"):
            # no timeout of ours: each service's stop_grace_period applies (a forced 10 s here
            # cost ~30 s per teardown of a stack whose PID 1 ignores SIGTERM)
            self.docker.compose.down(volumes=True, remove_orphans=True, quiet=True)

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
        return sorted(out, key=lambda s: (s.service, s.container))

    def wait_healthy(self, timeout: int, services: Sequence[str] | None = None,
                     tick: Callable[[list[ServiceState]], None] | None = None) -> list[ServiceState]:
        """Wait until every (chosen) container is running and, if it has a health check, healthy."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.ps()
            if services:
                states = [s for s in states if s.service in services]
            if not states:
                raise StackError(f"no containers in project {self.project}", "start the stack with `inv up`")
            bad = [s for s in states if s.state != "running" or (s.health not in (None, "healthy"))]
            if tick:
                tick(states)
            if not bad:
                return states
            dead = [s for s in bad if s.state in ("exited", "dead")]
            if dead:
                raise StackError(f"{dead[0].service} is {dead[0].state}", f"see `docker logs {dead[0].container}`")
            if time.monotonic() > deadline:
                names = ", ".join(f"{s.service} ({s.health or s.state})" for s in bad)
                raise StackError(f"not healthy after {timeout}s: {names}",
                                 f"see `docker logs {bad[0].container}` or raise --timeout")
            time.sleep(1)

    # ------------------------------------------------------------- containers
    def replicas(self, service: str) -> list[Replica]:
        with docker_errors(f"finding the containers of {service}"):
            found = [c for c in self.docker.compose.ps([service]) if c.state.running]
        if not found:
            raise StackError(f"service {service} has no running container",
                             "start the stack with `inv up --profiling`")

        def number(c) -> int:
            n = (c.config.labels or {}).get("com.docker.compose.container-number", "1")
            return int(n) if str(n).isdigit() else 1

        found.sort(key=number)
        return [Replica(service=service, index=number(c), container=c.name, id=c.id, of=len(found))
                for c in found]

    def _engine(self, replica: Replica) -> DockerClient:
        return self.docker

    def facts(self) -> dict[str, str]:
        from ..setup.engine import engine_facts
        return engine_facts()


def run_throwaway(image: str, command: Sequence[str], volumes: Sequence[tuple[str, str, str]] = (),
                  cap_add: Sequence[str] = ()) -> str:
    """`docker run --rm` one command in ``image`` and return its output."""
    from python_on_whales import docker
    with docker_errors(f"running {command[0]} in a throwaway {image} container"):
        return docker.run(image, list(command), remove=True, volumes=list(volumes), cap_add=list(cap_add))


def capability_known(cap: str, image: str) -> bool:
    """Whether the engine accepts ``--cap-add cap``: `docker create` validates capabilities
    without starting anything (dockerd 20.10 from Debian rejects PERFMON)."""
    from python_on_whales import docker
    try:
        c = docker.container.create(image, ["true"], cap_add=[cap])
    except DockerException as exc:
        if "capability" in _text(exc.stderr).lower():
            return False
        raise StackError(f"checking --cap-add {cap} failed: {_why(exc)}") from None
    with contextlib.suppress(DockerException):
        docker.container.remove(c)
    return True
