"""The Swarm target: the same compose files deployed as a Docker Swarm stack.

``up``: ``docker swarm init`` when the engine is in no swarm; the base files resolved by
``docker compose config`` (interpolation, anchors, ``env_file``s done by compose), turned into
a stack file Swarm accepts (:func:`stack_document`), plus the Swarm variant of the profiling
override (:func:`flamekit.targets.override.generate_swarm`); ``docker stack deploy`` of it;
then a wait until every service has all its tasks running and every task's container healthy.

What the stack file changes, and why (checked on dockerd 20.10 from Debian, a kernel without
IPVS):

* every service gets ``deploy.endpoint_mode: dnsrr``: the default VIP mode needs IPVS, which
  this kernel lacks (no ``/proc/net/ip_vs``): service names resolve to the tasks' addresses;
* published ports get ``mode: host``: the ingress routing mesh needs IPVS too, and dnsrr
  services cannot publish through it; a host-mode port is bound on the node that runs the
  task, so a published service runs one replica per node;
* ``build``, ``depends_on``, ``container_name`` and top-level ``name`` are dropped (stack
  deploy does not build, start in order, or take them); ``mem_limit`` becomes
  ``deploy.resources.limits.memory``; ``security_opt`` is ignored by stack deploy.

Replicas are the tasks of a service (``<stack>_<service>``) whose container runs, indexed by
task slot. There is no ``docker service exec``: commands, copies and inspections go to the
engine of the node the task runs on: the local engine, or the Docker host configured for that
node in ``nodes`` (``{"node-hostname": "ssh://user@host"}``, config ``swarm_nodes``).
``down`` is ``docker stack rm`` plus a wait until the stack's services, tasks, containers and
networks are gone (stack rm returns before they are). ``leave_swarm`` undoes an ``up`` that
initialised the swarm.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import re
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml
from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from ..config import Settings
from ..errors import StackError
from .base import Replica, ServiceState, Target
from .compose import ComposeTarget, EngineContainers, _text, _why, compose_environment, docker_errors

log = logging.getLogger(__name__)

STACK_VERSION = "3.8"
# compose keys a stack file does not take (or that would make it refuse the file)
_DROPPED_KEYS = ("build", "depends_on", "container_name", "profiles", "pull_policy", "platform",
                 "security_opt", "mem_limit", "memswap_limit", "cpus", "mem_reservation")
_STACK_LABEL = "com.docker.stack.namespace"


# --------------------------------------------------------------------------- the stack file

def _merge_service(base: dict, extra: Mapping[str, Any]) -> dict:
    out = dict(base)
    for key in ("cap_add", "volumes"):
        if extra.get(key):
            out[key] = list(out.get(key) or []) + [v for v in extra[key] if v not in (out.get(key) or [])]
    if extra.get("environment"):
        env = dict(out.get("environment") or {})
        env.update(extra["environment"])
        out["environment"] = env
    return out


def _ports(ports: Sequence[Any]) -> list[dict]:
    """Long-syntax ports, published in host mode (no ingress: it needs IPVS)."""
    out = []
    for p in ports or []:
        if isinstance(p, Mapping):
            q = {k: v for k, v in p.items() if k in ("target", "published", "protocol")}
        else:  # "8080:8080" or "8080" (compose config gives mappings; a user file may not)
            parts = str(p).split(":")
            q = {"target": int(parts[-1].split("/")[0])}
            if len(parts) > 1:
                q["published"] = parts[-2]
        if q.get("published") not in (None, ""):
            q["published"] = int(q["published"])
        q["mode"] = "host"
        out.append(q)
    return out


def stack_document(resolved: Mapping[str, Any], override: Mapping[str, Any] | None = None,
                   replicas: Mapping[str, int] | None = None) -> dict[str, Any]:
    """A stack file (``version: "3.8"``) from a ``docker compose config`` model, the Swarm
    override merged in, and the replica counts. Pure: unit-tested without an engine."""
    services: dict[str, Any] = {}
    extra = (override or {}).get("services") or {}
    for name, svc in (resolved.get("services") or {}).items():
        s = copy.deepcopy(dict(svc))
        mem = s.get("mem_limit")
        for key in _DROPPED_KEYS:
            s.pop(key, None)
        s = {k: v for k, v in s.items() if v is not None}  # `entrypoint: null` is refused
        if not s.get("image"):
            raise StackError(f"service {name} has no image: a stack cannot build",
                             "give it an `image:` and build it first (docker compose build)")
        s = _merge_service(s, extra.get(name) or {})
        if s.get("ports"):
            s["ports"] = _ports(s["ports"])
        if isinstance(s.get("networks"), Mapping):  # compose config gives {default: null}
            s["networks"] = list(s["networks"])
        deploy = dict(s.get("deploy") or {})
        deploy["endpoint_mode"] = "dnsrr"
        deploy["replicas"] = int((replicas or {}).get(name, deploy.get("replicas") or 1))
        if mem is not None:
            deploy.setdefault("resources", {}).setdefault("limits", {})["memory"] = str(mem)
        s["deploy"] = deploy
        if isinstance(s.get("environment"), Mapping):  # stack deploy interpolates `$` again
            s["environment"] = {k: (None if v is None else str(v).replace("$", "$$"))
                                for k, v in s["environment"].items()}
        services[name] = s
    doc: dict[str, Any] = {"version": STACK_VERSION, "services": services}
    nets = {k: ({} if v is None else {kk: vv for kk, vv in v.items() if kk not in ("name", "ipam")})
            for k, v in (resolved.get("networks") or {}).items()}
    nets.setdefault("default", {})
    for v in nets.values():
        v.setdefault("driver", "overlay")
    doc["networks"] = nets
    vols = {k: {} for k in (resolved.get("volumes") or {})}
    if vols:
        doc["volumes"] = vols
    return doc


# --------------------------------------------------------------------------- the target

def vanished_in_between(stderr: str) -> bool:
    """Whether a failed ``ls`` only means an object went away between its listing and its
    inspection (the engine says "No such service: x" or "network x not found")."""
    low = stderr.lower()
    return "no such" in low or bool(re.search(r"\b(network|service|container|task)\b.* not found", low))


class SwarmTarget(EngineContainers, Target):
    """A compose project deployed as a Swarm stack named after the project."""

    kind = "swarm"

    def __init__(self, settings: Settings, env: dict[str, str] | None = None,
                 scale: dict[str, int] | None = None, profiling: bool = False,
                 nodes: Mapping[str, str] | None = None, docker: DockerClient | None = None):
        self.settings = settings
        self.project = settings.project_name
        self.env = dict(env or {})
        self.scale = dict(scale or {})
        self.profiling = profiling
        self.nodes = dict(nodes or {})
        self.docker = docker or DockerClient()
        self.compose = ComposeTarget(settings, env=env)   # resolves the files, builds images
        self.initialised_swarm = False
        self.stack_file: Path | None = None
        self._clients: dict[str, DockerClient] = {}
        self._node_names: dict[str, str] = {}

    # ------------------------------------------------------------- swarm
    def swarm_state(self) -> str:
        with docker_errors("docker info"):
            return str(self.docker.info().swarm.local_node_state or "inactive")

    def ensure_swarm(self) -> bool:
        """``docker swarm init`` unless the engine is in a swarm already; True if it initialised."""
        state = self.swarm_state()
        if state == "active":
            return False
        if state not in ("inactive", ""):
            raise StackError(f"this engine's swarm state is {state!r}", "fix it or `docker swarm leave --force`")
        with docker_errors("docker swarm init", "on several addresses: pass --advertise-addr by hand"):
            self.docker.swarm.init()
        self.initialised_swarm = True
        log.info("initialised a single-node swarm")
        return True

    def leave_swarm(self) -> None:
        """``docker swarm leave --force``, only when this target initialised the swarm."""
        if self.initialised_swarm:
            with docker_errors("docker swarm leave"):
                self.docker.swarm.leave(force=True)
            self.initialised_swarm = False
            # swarm init made docker_gwbridge and leave keeps it: remove it too, engine as found
            with contextlib.suppress(DockerException):
                self.docker.network.remove("docker_gwbridge")

    # ------------------------------------------------------------- lifecycle
    def config(self) -> dict:
        return self.compose.config()

    def build(self, services: Sequence[str] | None = None) -> None:
        self.compose.build(services)

    def image_envs(self, resolved: Mapping[str, Any]) -> dict:
        from . import override as fkoverride
        return fkoverride.image_envs(self.settings, self, resolved)

    def document(self) -> dict[str, Any]:
        from . import override as fkoverride
        resolved = self.config()
        ov = None
        if self.profiling:
            from ..profiler.install import require_profiler
            require_profiler(self.settings.profiler.dir)
            ov = fkoverride.generate_swarm(self.settings, resolved, self.image_envs(resolved))
        return stack_document(resolved, ov, self.scale)

    def write_stack_file(self) -> Path:
        from ..util import atomic_write
        out = self.settings.output_dir / f"stack.{self.project}.yml"
        header = "# flamekit: the Swarm stack deployed by `inv up --swarm` (generated; do not edit)\n"
        atomic_write(out, header + yaml.safe_dump(self.document(), sort_keys=False, width=1000))
        self.stack_file = out
        return out

    def up(self, build: bool = False, timeout: int | None = None) -> None:
        if build:
            self.build()
        self.ensure_swarm()
        path = self.write_stack_file()
        with compose_environment(self.env), docker_errors(
                "docker stack deploy", f"see `docker stack ps {self.project} --no-trunc`"):
            self.docker.stack.deploy(self.project, [path], resolve_image="never", prune=True)
        self.wait_healthy(timeout or self.settings.wait_timeout)

    def down(self, timeout: float = 120.0) -> None:
        """``docker stack rm``, then wait until services, containers and networks are gone."""
        if self.swarm_state() != "active":
            return
        with docker_errors("docker stack rm"):
            if any(s.name == self.project for s in self.docker.stack.list()):
                self.docker.stack.remove(self.project)
        deadline = time.monotonic() + timeout
        while True:
            left = self.leftovers()
            if not any(left.values()):
                return
            if time.monotonic() > deadline:
                what = "; ".join(f"{k}: {', '.join(v)}" for k, v in left.items() if v)
                raise StackError(f"stack {self.project} not gone after {timeout:.0f}s ({what})")
            time.sleep(1)

    def leftovers(self) -> dict[str, list[str]]:
        """What of the stack still exists: services, containers (any node's engine we know),
        networks."""
        flt = [("label", f"{_STACK_LABEL}={self.project}")]
        def listed(what: str, lister) -> list[str]:
            try:
                return lister()
            except DockerException as exc:
                # listing inspects each object: one removed in between is "still going", look again
                if vanished_in_between(_text(exc.stderr)):
                    return [f"({what} being removed)"]
                raise StackError(f"listing the stack's {what} failed: {_why(exc)}") from None

        clients = [self.docker] + [self._client_for_host(h) for h in self.nodes.values()]
        return {
            "services": listed("services", lambda: [s.spec.name for s in self.docker.service.list(filters=flt)]),
            "containers": listed("containers", lambda: [c.name for client in clients
                                                        for c in client.container.list(all=True, filters=flt)]),
            "networks": listed("networks", lambda: [n.name for n in self.docker.network.list(filters=flt)]),
        }

    def _services(self) -> dict[str, Any]:
        flt = [("label", f"{_STACK_LABEL}={self.project}")]
        with docker_errors("docker service ls"):
            return {s.spec.name[len(self.project) + 1:]: s for s in self.docker.service.list(filters=flt)}

    def _tasks(self, service: str) -> list:
        with docker_errors(f"docker service ps {service}"):
            return self.docker.service.ps(f"{self.project}_{service}")

    def ps(self) -> list[ServiceState]:
        out = []
        for name, svc in sorted(self._services().items()):
            image = str(svc.spec.task_template.container_spec.image).split("@")[0]
            for t in self._tasks(name):
                if str(t.desired_state) != "running":
                    continue
                cid = t.status.container_status.container_id if t.status.container_status else None
                health = None
                if cid and str(t.status.state) == "running":
                    with contextlib.suppress(DockerException):
                        c = self._client(t.node_id).container.inspect(cid)
                        health = c.state.health.status if c.state.health else None
                out.append(ServiceState(service=name, container=f"{self.project}_{name}.{t.slot}",
                                        state=str(t.status.state), health=health, ports="", image=image))
        return out

    def wait_healthy(self, timeout: int, services: Sequence[str] | None = None,
                     tick: Callable[[list[ServiceState]], None] | None = None) -> list[ServiceState]:
        """Until every service runs all its replicas, each task's container healthy if it has a
        health check; StackError on a task that failed (Swarm would restart it forever)."""
        deadline = time.monotonic() + timeout
        while True:
            want = {n: (s.spec.mode.get("Replicated", {}) or {}).get("Replicas", 1) if isinstance(s.spec.mode, dict)
                    else 1 for n, s in self._services().items()}
            if services:
                want = {k: v for k, v in want.items() if k in services}
            states = [s for s in self.ps() if s.service in want]
            if tick:
                tick(states)
            good = {n: sum(1 for s in states if s.service == n and s.state == "running"
                           and s.health in (None, "healthy")) for n in want}
            if want and all(good[n] >= want[n] for n in want):
                return states
            failed = [t for n in want for t in self._tasks(n)
                      if str(t.status.state) in ("failed", "rejected") and t.status.err]
            if failed and time.monotonic() > deadline - timeout / 2:
                t = failed[0]
                raise StackError(f"a task of stack {self.project} {t.status.state}: {t.status.err}",
                                 f"see `docker stack ps {self.project} --no-trunc`")
            if time.monotonic() > deadline:
                short = ", ".join(f"{n} {good[n]}/{want[n]}" for n in want if good[n] < want[n]) or "no services"
                raise StackError(f"stack {self.project} not healthy after {timeout}s: {short}",
                                 f"see `docker stack ps {self.project} --no-trunc`")
            time.sleep(1)

    # ------------------------------------------------------------- containers
    def _node_name(self, node_id: str) -> str:
        if node_id not in self._node_names:
            with docker_errors("docker node inspect"):
                self._node_names[node_id] = self.docker.node.inspect(node_id).description.hostname
        return self._node_names[node_id]

    def _client_for_host(self, host: str) -> DockerClient:
        if host not in self._clients:
            self._clients[host] = DockerClient(host=host)
        return self._clients[host]

    def _client(self, node: str) -> DockerClient:
        """The engine of a node (by id or hostname): the configured host, else the local one
        when the node is this engine, else a StackError naming the config to set."""
        if not node:
            return self.docker
        name = node if node in self.nodes else self._node_name(node)
        if name in self.nodes:
            return self._client_for_host(self.nodes[name])
        with docker_errors("docker info"):
            local = self.docker.info().swarm.node_id
        if node == local or name == self._node_name(local):
            return self.docker
        raise StackError(f"a task runs on node {name}, whose engine flamekit cannot reach",
                         f"set flamekit.swarm_nodes: {{{name}: ssh://user@{name}}}")

    def replicas(self, service: str) -> list[Replica]:
        found = [t for t in self._tasks(service) if str(t.desired_state) == "running"
                 and str(t.status.state) == "running" and t.status.container_status
                 and t.status.container_status.container_id]
        if not found:
            raise StackError(f"service {service} has no running task in stack {self.project}",
                             "start it with `inv up --swarm --profiling`")
        found.sort(key=lambda t: t.slot or 0)
        out = []
        for t in found:
            node = self._node_name(t.node_id) if t.node_id else ""
            out.append(Replica(service=service, index=int(t.slot or 1),
                               container=f"{self.project}_{service}.{t.slot}.{t.id}",
                               id=t.status.container_status.container_id, node=node, of=len(found)))
        return out

    def _engine(self, replica: Replica) -> DockerClient:
        return self._client(replica.node)

    def facts(self) -> dict[str, str]:
        from ..setup.engine import engine_facts
        out = dict(engine_facts())
        with contextlib.suppress(Exception):
            out["swarm_nodes"] = str(len(self.docker.node.list()))
        return out
