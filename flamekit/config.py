"""Settings: one frozen object built from invoke's config (defaults < invoke.yaml < env < flags).

Every key lives under the ``flamekit`` config key so that invoke maps
``INVOKE_FLAMEKIT_<KEY>`` environment variables onto it. Invoke can only cast an
environment variable to the type of an existing default, and it refuses lists;
so list-valued keys default to comma-separated strings and accept either a list
(YAML) or a comma-separated string (environment, flags).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

EVENTS = ("cpu", "alloc", "wall", "lock")
PRIVILEGES = ("seed", "minimal", "none")
#: what `-e` asks async-profiler for when the event is cpu: ``auto`` (flamekit's choice per
#: container, capture/session.py ``resolve_cpu_engine``), async-profiler's own choice ``cpu``
#: (perf_events, else ctimer), or one engine named.
CPU_ENGINES = ("auto", "cpu", "cpu-clock", "ctimer", "itimer")
DEFAULT_JVM_FLAGS = "-XX:+PreserveFramePointer,-XX:+UnlockDiagnosticVMOptions,-XX:+DebugNonSafepoints"

# The single source of defaults. tasks.py hands this to ns.configure().
DEFAULTS: dict[str, Any] = {
    # the compose project: files relative to project_dir (default: the flamekit checkout)
    "project_dir": "",
    "compose_files": "docker/docker-compose.yml",
    "project_name": "flamekit-demo",
    "profiling_override": "docker/docker-compose-profiling.yml",
    "jvm_services": "gateway,order-service,inventory-service,payment-service",
    "gateway_url": "http://127.0.0.1:8080",
    # a string, not a bool: invoke casts an environment string to a bool default by truthiness,
    # so INVOKE_FLAMEKIT_DEMO=false would mean true; parsed by _bool below
    "demo": "true",
    "wait_timeout": 240,
    # where the JVMs run: compose (docker compose up) or swarm (docker stack deploy)
    "target": "compose",
    "swarm_nodes": {},
    # images: auto uses the eclipse-temurin defaults when they are present or pullable,
    # else builds offline equivalents with debootstrap
    "images": "auto",
    "base_image": "eclipse-temurin:17-jre-jammy",
    "build_image": "eclipse-temurin:17-jdk-jammy",
    "offline_base_image": "flamekit/jre17:bookworm",
    "offline_build_image": "flamekit/jdk17:bookworm",
    "debian_mirror": "http://deb.debian.org/debian",
    # load
    "k6": "",
    "k6_script": "scripts/perf/order-flow.js",
    "load_workers": 1,
    "target_url": "",
    "sample_data": "scripts/perf/sample-data.json",
    # profiling
    "service": "order-service",
    "event": "cpu",
    "duration": 60,
    "tps": 25.0,
    "warmup": 15,
    "interval": "",
    "cpu_engine": "auto",
    "jvm_flags": DEFAULT_JVM_FLAGS,
    "privileges": "seed",
    "profiler": {
        "version": "4.3",
        "source": "auto",
        "dir": "docker/profiling/async-profiler",
        "container_path": "/opt/async-profiler",
        "github_url": (
            "https://github.com/async-profiler/async-profiler/releases/download/"
            "v{version}/async-profiler-{version}-linux-{arch}.tar.gz"
        ),
        "maven_repo": "https://repo1.maven.org/maven2",
        "pins": {},
    },
    # outputs, relative to the flamekit checkout
    "output_dir": "docker/profiling/output",
    "flamegraph_dir": "docs/perf/flamegraphs",
    "runs_dir": "docs/perf/runs",
    "reports_dir": "docs/perf",
}


def defaults() -> dict[str, Any]:
    return copy.deepcopy(DEFAULTS)


def split_list(value: Any, key: str) -> tuple[str, ...]:
    """A list from YAML or a comma-separated string from env/flags."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:
            if not isinstance(v, (str, int, float)):
                raise ConfigError(f"flamekit.{key} must be a list of strings, got {v!r}")
            out.append(str(v).strip())
        return tuple(v for v in out if v)
    raise ConfigError(f"flamekit.{key} must be a list or a comma-separated string, got {value!r}")


@dataclass(frozen=True)
class ProfilerSettings:
    version: str
    source: str
    dir: Path
    container_path: str
    github_url: str
    maven_repo: str
    pins: Mapping[str, str]


@dataclass(frozen=True)
class Settings:
    root: Path
    project_dir: Path
    compose_files: tuple[Path, ...]
    project_name: str
    profiling_override: Path | None
    jvm_services: tuple[str, ...]
    gateway_url: str
    demo: bool
    wait_timeout: int
    target: str
    swarm_nodes: Mapping[str, str]
    images: str
    base_image: str
    build_image: str
    offline_base_image: str
    offline_build_image: str
    debian_mirror: str
    k6: str
    k6_script: Path
    load_workers: int
    target_url: str
    sample_data: Path | None
    service: str
    event: str
    duration: int
    tps: float
    warmup: int
    interval: str
    cpu_engine: str
    jvm_flags: tuple[str, ...]
    privileges: str
    profiler: ProfilerSettings
    output_dir: Path
    flamegraph_dir: Path
    runs_dir: Path
    reports_dir: Path
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def check_service(self, service: str) -> str:
        if service not in self.jvm_services:
            known = ", ".join(self.jvm_services) or "(none)"
            raise ConfigError(
                f"unknown service {service!r}",
                f"choose one of the configured JVM services: {known} (flamekit.jvm_services)",
            )
        return service


def _path(base: Path, value: Any, key: str) -> Path:
    if not isinstance(value, (str, Path)) or str(value) == "":
        raise ConfigError(f"flamekit.{key} must be a path, got {value!r}")
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else (base / p)


def _label(key: str) -> str:
    return key if key.startswith("-") else f"flamekit.{key}"


def check_number(value: Any, key: str, kind=float, minimum: float | None = None):
    """The one value check for numbers, from config (``key``) or a flag (``--key``)."""
    try:
        n = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{_label(key)} must be a {'whole ' if kind is int else ''}number, got {value!r}") from None
    if minimum is not None and n < minimum:
        raise ConfigError(f"{_label(key)} must be at least {minimum}, got {value!r}")
    return n


def check_bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{_label(key)} must be true or false, got {value!r}")


def _plain(value: Any) -> Any:
    """invoke's DataProxy (and any mapping) as plain dicts, recursively."""
    if hasattr(value, "keys") and hasattr(value, "__getitem__") and not isinstance(value, (str, bytes)):
        return {str(k): _plain(value[k]) for k in value.keys()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def build_settings(config: Mapping[str, Any] | None, root: Path = ROOT, **flags: Any) -> Settings:
    """Merge the ``flamekit`` config mapping with flags (None means: not given)."""
    raw = defaults()
    if config:
        for k, v in _plain(config).items():
            if k == "profiler" and isinstance(v, dict):
                raw["profiler"] = {**raw["profiler"], **dict(v)}
            else:
                raw[k] = v
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise ConfigError(
            f"unknown configuration key flamekit.{unknown[0]}",
            "see the README's configuration table for the known keys",
        )
    given = {k: v for k, v in flags.items() if v is not None}
    for k, v in given.items():
        if k.startswith("profiler_"):
            raw["profiler"][k[len("profiler_"):]] = v
        else:
            raw[k] = v

    project_dir = _path(root, raw["project_dir"] or str(root), "project_dir")
    compose_files = tuple(_path(project_dir, f, "compose_files") for f in split_list(raw["compose_files"], "compose_files"))
    if not compose_files:
        raise ConfigError("flamekit.compose_files is empty", "name at least one compose file")
    override = raw["profiling_override"]
    jvm_services = split_list(raw["jvm_services"], "jvm_services")
    if not jvm_services:
        raise ConfigError("flamekit.jvm_services is empty", "list the compose services that run a JVM")
    event = str(raw["event"])
    if not event or any(e.strip() not in EVENTS + ("all",) for e in event.split(",")):
        raise ConfigError(f"unknown event {event!r}", f"use one of {', '.join(EVENTS)} or all")
    cpu_engine = str(raw["cpu_engine"])
    if cpu_engine not in CPU_ENGINES:
        raise ConfigError(f"unknown cpu_engine {cpu_engine!r}", f"use {', '.join(CPU_ENGINES)}")
    privileges = str(raw["privileges"])
    if privileges not in PRIVILEGES:
        raise ConfigError(f"unknown privileges {privileges!r}", f"use {', '.join(PRIVILEGES)}")
    target = str(raw["target"])
    if target not in ("compose", "swarm"):
        raise ConfigError(f"unknown target {target!r}", "use compose or swarm")
    nodes = raw["swarm_nodes"] or {}
    if not isinstance(nodes, Mapping):
        raise ConfigError("flamekit.swarm_nodes must map node names to Docker hosts")
    images = str(raw["images"])
    if images not in ("auto", "default", "offline"):
        raise ConfigError(f"unknown images mode {images!r}", "use auto, default or offline")
    prof = raw["profiler"]
    if str(prof.get("source")) not in ("auto", "github", "maven", "archive"):
        raise ConfigError(f"unknown profiler source {prof.get('source')!r}", "use auto, github, maven or archive")
    sample = raw["sample_data"]
    return Settings(
        root=root,
        project_dir=project_dir,
        compose_files=compose_files,
        project_name=str(raw["project_name"]),
        profiling_override=_path(project_dir, override, "profiling_override") if override else None,
        jvm_services=jvm_services,
        gateway_url=str(raw["gateway_url"]).rstrip("/"),
        demo=check_bool(raw["demo"], "demo"),
        wait_timeout=check_number(raw["wait_timeout"], "wait_timeout", int, 1),
        target=target,
        swarm_nodes={str(k): str(v) for k, v in dict(nodes).items()},
        images=images,
        base_image=str(raw["base_image"]),
        build_image=str(raw["build_image"]),
        offline_base_image=str(raw["offline_base_image"]),
        offline_build_image=str(raw["offline_build_image"]),
        debian_mirror=str(raw["debian_mirror"]),
        k6=str(raw["k6"] or ""),
        k6_script=_path(root, raw["k6_script"], "k6_script"),
        load_workers=check_number(raw["load_workers"], "load_workers", int, 1),
        target_url=str(raw["target_url"] or ""),
        sample_data=_path(root, sample, "sample_data") if sample else None,
        service=str(raw["service"]),
        event=event,
        duration=check_number(raw["duration"], "duration", int, 1),
        tps=check_number(raw["tps"], "tps", float, 0.1),
        warmup=check_number(raw["warmup"], "warmup", int, 0),
        interval=str(raw["interval"] or ""),
        cpu_engine=cpu_engine,
        jvm_flags=split_list(raw["jvm_flags"], "jvm_flags"),
        privileges=privileges,
        profiler=ProfilerSettings(
            version=str(prof["version"]),
            source=str(prof["source"]),
            dir=_path(root, prof["dir"], "profiler.dir"),
            container_path=str(prof["container_path"]),
            github_url=str(prof["github_url"]),
            maven_repo=str(prof["maven_repo"]).rstrip("/"),
            pins=dict(prof.get("pins") or {}),
        ),
        output_dir=_path(root, raw["output_dir"], "output_dir"),
        flamegraph_dir=_path(root, raw["flamegraph_dir"], "flamegraph_dir"),
        runs_dir=_path(root, raw["runs_dir"], "runs_dir"),
        reports_dir=_path(root, raw["reports_dir"], "reports_dir"),
        overrides=given,
    )


def parse_scale(items) -> dict[str, int]:
    """``--scale order-service=3`` (repeatable) as {"order-service": 3}."""
    out: dict[str, int] = {}
    for item in items:
        name, sep, n = str(item).partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--scale takes SERVICE=N, got {item!r}", "for example --scale order-service=3")
        out[name.strip()] = check_number(n, "--scale", int, 1)
    return out
