"""Install async-profiler: the public entry points and the atomic swap-in.

Three sources give the same result (see ``sources``): a directory laid out
like an official async-profiler release (``bin/asprof``, ``bin/jfrconv``,
``lib/libasyncProfiler.so`` and whatever jfrconv needs) plus a manifest,
``flamekit-profiler.json``, recording where it came from.

``auto`` tries github, then maven. Only "could not get it" failures of
github (connection refused, DNS, timeout, HTTP error, cut-off body) fall
through to maven; a checksum mismatch or an unsafe archive is never papered
over by trying elsewhere.

Safety: downloads go to a temporary file beside the install directory,
archives are unpacked (see ``archive``) into a temporary directory beside
it, and the result replaces the old install by rename only once it is
complete. The previous install is kept until then and restored if the final
rename fails; temporary files are removed on every path, KeyboardInterrupt
included.

The package never prints: it logs to ``flamekit.profiler.*`` and reports
download progress through a ``progress(done, total)`` callback (the terminal
display is ``flamekit.ui.download_progress``).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import struct
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import requests

from ..errors import ProfilerError
from .aploader import unpack_ap_loader
from .archive import check_top_dir, unpack_archive
from .base import (
    ARCHES,
    HINT_ALL_FAILED,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    REQUIRED_FILES,
    SOURCES,
    DownloadError,
    InstallResult,
    Progress,
    ProfilerRequest,
    arch_from_platform,
    file_sha256,
)
from .http import new_session
from .sources import fetch_archive, fetch_github, fetch_maven

# callers use ``from flamekit.profiler import install as fkprofiler`` too: these names are its API
__all__ = ["DownloadError", "InstallResult", "ProfilerRequest", "arch_from_platform", "install_profiler",
           "installed_profiler", "require_profiler"]

log = logging.getLogger(__name__)

_ELF_MACHINES = {62: "x64", 183: "arm64"}
_VERSION_RE = re.compile(r"^[0-9][0-9A-Za-z.+_-]*$")


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
            actual = file_sha256(target)
        except OSError as exc:
            return None, f"{rel} is unreadable: {exc}"
        if actual != digest:
            return None, f"{rel} was modified"
        if rel.startswith("bin/") and not os.access(target, os.X_OK):
            return None, f"{rel} is not executable"
    return manifest, None


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
    sess = session if session is not None else new_session()
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


def _install_from(source: str, req: ProfilerRequest, install_dir: Path, sess: requests.Session,
                  progress: Progress | None, notes: tuple[str, ...]) -> InstallResult:
    with _Workspace(install_dir) as ws:
        if source == "maven":
            fetched = fetch_maven(req, sess, ws.download, progress)
            fetched.details["members"] = unpack_ap_loader(ws.download, ws.staging, req.version, req.arch, fetched.url)
        else:  # github or archive: a release archive, its top directory naming version and arch
            if source == "github":
                fetched = fetch_github(req, sess, ws.download, progress)
                label = fetched.url
            else:
                fetched = fetch_archive(req, ws.download, progress)
                label = str(req.archive)
            top = unpack_archive(ws.download, ws.staging, label=label)
            check_top_dir(top, req.version, req.arch, label)

        _check_tree(ws.staging, req.arch, fetched.url)
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
            files[rel] = file_sha256(path)
    return files


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False
