"""Where the JVMs run: the Target interface every orchestration talks to.

A target knows a project's services, the running containers (replicas) of each, and how to
run a command in one, copy a file out of one, and read its image and CPU counters. The
compose target (``compose.py``) is today's only one; a Swarm or Kubernetes target implements
the same methods. Capture and workflow code never import python_on_whales or call ``docker``:
they get a Target. Unit tests hand them a fake one.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..errors import StackError


@dataclass(frozen=True)
class Replica:
    """One running container of a service: what a capture attaches to."""

    service: str
    index: int          # 1-based, stable order (compose: container number; swarm: task slot)
    container: str      # name, for messages
    id: str = ""        # engine id
    node: str = ""      # the engine that runs it ("" = the local one)
    of: int = 1         # how many replicas the service had when listed

    @property
    def label(self) -> str:
        """``order-service`` for a single container, ``order-service.2`` for a replica."""
        return self.service if self.of == 1 else f"{self.service}.{self.index}"


@dataclass(frozen=True)
class ServiceState:
    service: str
    container: str
    state: str
    health: str | None
    ports: str
    image: str


@dataclass(frozen=True)
class ContainerPrivileges:
    cap_add: frozenset[str] = field(default_factory=frozenset)
    security_opt: frozenset[str] = field(default_factory=frozenset)
    profiler_mount_ro: bool | None = None


class Target(ABC):
    """The seam between flamekit and an orchestrator."""

    kind = "abstract"
    project: str = ""

    # ------------------------------------------------------------- lifecycle
    @abstractmethod
    def config(self) -> dict:
        """The project's resolved configuration (compose model: ``{"services": {...}}``)."""

    @abstractmethod
    def up(self, build: bool = False, timeout: int | None = None) -> None: ...

    @abstractmethod
    def down(self) -> None: ...

    @abstractmethod
    def ps(self) -> list[ServiceState]: ...

    @abstractmethod
    def wait_healthy(self, timeout: int, services: Sequence[str] | None = None,
                     tick: Callable[[list[ServiceState]], None] | None = None) -> list[ServiceState]: ...

    # ------------------------------------------------------------- containers
    @abstractmethod
    def replicas(self, service: str) -> list[Replica]:
        """The running containers of ``service``, in index order; StackError if none."""

    @abstractmethod
    def exec_result(self, where: Replica | str, command: Sequence[str]) -> tuple[int, str, str]:
        """Run a command; (exit code, stdout, stderr), never raising for a non-zero exit."""

    @abstractmethod
    def copy_from(self, where: Replica | str, src: str, dest: Path) -> Path: ...

    @abstractmethod
    def image_id(self, where: Replica | str) -> str: ...

    @abstractmethod
    def image_env(self, image: str) -> dict[str, str] | None:
        """The environment an image gives its containers (``ENV`` lines); None if not present."""

    @abstractmethod
    def privileges(self, where: Replica | str, mount_path: str) -> ContainerPrivileges: ...

    def started_at(self, where: Replica | str) -> str:
        """When the container last started (changes on a restart, while the JVM's PID may not)."""
        return ""

    @abstractmethod
    def facts(self) -> dict[str, str]:
        """The engine's version, architecture, cgroup version, CPUs: for manifests."""

    # ------------------------------------------------------------- shared behaviour
    def replica(self, where: Replica | str) -> Replica:
        """A Replica as given, or the only running container of a service."""
        if isinstance(where, Replica):
            return where
        found = self.replicas(where)
        if len(found) > 1:
            raise StackError(f"service {where} runs {len(found)} replicas",
                             "name one (--replica N) or profile them all")
        return found[0]

    def exec(self, where: Replica | str, command: Sequence[str], what: str | None = None) -> str:
        rc, out, err = self.exec_result(where, command)
        if rc != 0:
            from ..util import last_line
            name = where.label if isinstance(where, Replica) else where
            raise StackError(f"{what or '`' + ' '.join(command) + '` in ' + name} failed: "
                             f"{last_line(err or out, f'exit code {rc}')}")
        return out
