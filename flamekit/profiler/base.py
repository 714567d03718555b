"""What every profiler module shares: defaults, the request and result types,
the one error ``auto`` falls through on, and a few small helpers."""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ProfilerError

DEFAULT_VERSION = "4.3"
DEFAULT_GITHUB_URL_TEMPLATE = (
    "https://github.com/async-profiler/async-profiler/releases/download/"
    "v{version}/async-profiler-{version}-linux-{arch}.tar.gz"
)
DEFAULT_MAVEN_REPO_URL = "https://repo1.maven.org/maven2"

ARCHES = ("x64", "arm64")
SOURCES = ("auto", "github", "maven", "archive")
MANIFEST_NAME = "flamekit-profiler.json"
MANIFEST_FORMAT = 1
REQUIRED_FILES = ("bin/asprof", "bin/jfrconv", "lib/libasyncProfiler.so")

CHUNK = 64 * 1024

# progress(done_bytes, total_bytes_or_None): how the core reports a download; the terminal is ui's business
Progress = Callable[[int, "int | None"], None]

HINT_NETWORK = "check the network or proxy settings and retry, or pick another source (--source maven|github|archive)"
HINT_ALL_FAILED = "check the network or proxy settings and retry, or install from a local file with --source archive"
HINT_CHECKSUM = ("the download was deleted; retry, and if it fails again check the pin in profiler.pins "
                 "and do not use this source until the mismatch is explained")


class DownloadError(ProfilerError):
    """The artifact could not be fetched (connection, DNS, timeout, HTTP status, cut-off body).

    The only failure after which ``auto`` moves on to the next source.
    """


@dataclass(frozen=True)
class ProfilerRequest:
    """What to install. ``pins`` maps ``"<version>/<arch>/<source>"`` to a SHA-256 hex digest."""

    version: str = DEFAULT_VERSION
    arch: str = "x64"
    source: str = "auto"  # auto | github | maven | archive
    archive: Path | None = None
    github_url_template: str = DEFAULT_GITHUB_URL_TEMPLATE
    maven_repo_url: str = DEFAULT_MAVEN_REPO_URL
    pins: Mapping[str, str] = field(default_factory=dict)
    force: bool = False
    timeout: float = 60


@dataclass(frozen=True)
class InstallResult:
    """Outcome of ``install_profiler``.

    ``seconds`` is the time spent downloading in this call (0.0 when nothing
    was downloaded); ``sha256``/``size`` describe the downloaded artifact (for
    "already-installed", the one recorded in the manifest). ``verified_by``
    is "pin", "sha512"/"sha256"/"sha1" (published by the repository),
    "tls-only" or "unverified" (local archive without a pin). ``notes`` says
    e.g. why ``auto`` fell through from github to maven.
    """

    status: str  # "installed" | "already-installed"
    install_dir: Path
    version: str
    arch: str
    source: str
    url: str
    sha256: str
    size: int
    seconds: float
    verified_by: str = ""
    notes: tuple[str, ...] = ()


def arch_from_platform(machine: str) -> str:
    """Map a machine/architecture name (docker ``Architecture``, ``uname -m``,
    ``linux/amd64``) to async-profiler's ``x64`` or ``arm64``."""
    name = (machine or "").strip().lower()
    if name.startswith("linux/"):
        name = name[len("linux/"):]
    name = name.split("/")[0]  # arm64/v8 -> arm64
    if name in ("x86_64", "amd64", "x64", "x86-64"):
        return "x64"
    if name in ("aarch64", "arm64", "armv8", "armv8l", "arm64e"):
        return "arm64"
    raise ProfilerError(
        f"unsupported architecture {machine!r} for async-profiler",
        hint="async-profiler for Linux ships x64 and arm64 builds only; pass --arch x64 or --arch arm64",
    )


def pin_key(version: str, arch: str, source: str) -> str:
    """The key under which a SHA-256 pin is looked up, e.g. ``"4.3/x64/maven"``."""
    return f"{version}/{arch}/{source}"


def pin_for(req: ProfilerRequest, source: str) -> str | None:
    """The pinned SHA-256 for ``source`` (lower case, no ``sha256:`` prefix), or None."""
    value = req.pins.get(pin_key(req.version, req.arch, source))
    if value is None:
        return None
    value = value.strip().lower()
    return value.removeprefix("sha256:")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
