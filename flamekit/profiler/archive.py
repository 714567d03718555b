"""Archive safety: unpack a release ``.tar.gz``/``.zip`` into a staging directory.

Only plain files and directories are accepted (no links, devices or FIFOs, no
absolute or ``..`` paths, no duplicate entries), the archive is capped in
member count and unpacked size, a single top directory is stripped, and a
compressed tar stream is read to its end first so a damaged tail is an error.
Tar members are then written by ``tarfile`` with its ``data`` filter.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import ProfilerError, UnsafeArchiveError
from .base import CHUNK, arch_from_platform, one_line

MAX_UNPACKED_BYTES = 512 << 20       # refuse archives that unpack beyond this
MAX_MEMBERS = 20_000

_HINT_UNSAFE = "nothing was installed; check where the archive came from"
_HINT_TOO_BIG = "nothing was installed; this is not an async-profiler release"
_HINT_DAMAGED = "retry the download or use another source; nothing was installed"
_HINT_DISK = "check free disk space; nothing was installed"


@dataclass
class Member:
    """A tar or zip entry, seen the same way for the checks."""

    name: str
    kind: str  # file | dir | symlink | hardlink | device | fifo | other
    mode: int
    size: int
    opener: Callable[[], IO[bytes]]
    link: str = ""
    tarinfo: tarfile.TarInfo | None = None


def tar_members(tf: tarfile.TarFile) -> Iterator[Member]:
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
        yield Member(m.name, kind, m.mode, m.size, (lambda m=m: tf.extractfile(m)), m.linkname, tarinfo=m)


def zip_members(zf: zipfile.ZipFile) -> Iterator[Member]:
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
        yield Member(info.filename, kind, mode & 0o7777, info.file_size, (lambda info=info: zf.open(info)))


_KIND_WORDS = {
    "symlink": "symbolic link", "hardlink": "hard link", "device": "device file",
    "fifo": "FIFO", "other": "special file",
}


def _unsafe(name: str, reason: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"unsafe archive member {name!r}: {reason}", hint=_HINT_UNSAFE)


def safe_parts(member: Member) -> tuple[str, ...]:
    """The member's path components, or UnsafeArchiveError."""
    name = member.name
    if member.kind not in ("file", "dir"):
        target = f" to {member.link!r}" if member.link else ""
        raise _unsafe(name, f"{_KIND_WORDS[member.kind]}{target} is not allowed")
    if "\x00" in name or "\\" in name:
        raise _unsafe(name, "backslash or NUL in the name")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise _unsafe(name, "absolute path")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise _unsafe(name, "path traversal ('..')")
    if not parts and member.kind == "file":
        raise _unsafe(name, "empty name")
    return parts


def checked_members(members: Iterable[Member]) -> list[tuple[tuple[str, ...], Member]]:
    """Every member with its path components, after the checks and both caps."""
    checked = []
    files: set[tuple[str, ...]] = set()
    total = 0
    for member in members:
        parts = safe_parts(member)
        if not parts:
            continue
        if member.kind == "file":
            if parts in files:
                raise _unsafe(member.name, "duplicate entry")
            files.add(parts)
            total += member.size
        if len(checked) >= MAX_MEMBERS or total > MAX_UNPACKED_BYTES:
            raise UnsafeArchiveError(f"archive member {member.name!r} takes the archive past "
                                     f"{MAX_MEMBERS} members or {MAX_UNPACKED_BYTES >> 20} MiB", hint=_HINT_TOO_BIG)
        checked.append((parts, member))
    return checked


def archive_kind(path: Path) -> str | None:
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")):
        return "tar"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return None


def unpack_archive(archive: Path, dest: Path, label: str) -> str | None:
    """Unpack a release archive into ``dest`` (stripping a single top
    directory); return that top directory's name, if any."""
    kind = archive_kind(archive)
    if kind is None:
        raise ProfilerError(f"{label} is not a .tar.gz or .zip archive",
                            hint="check the URL or file; nothing was installed")
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                checked = checked_members(zip_members(zf))
                top = _top_dir(checked)
                _write_zip_members(checked, dest, strip=top is not None)
                return top
        _check_compressed_stream(archive, label)
        with tarfile.open(archive, "r:*") as tf:
            checked = checked_members(tar_members(tf))
            top = _top_dir(checked)
            _extract_tar_members(tf, checked, dest, strip=top is not None)
            return top
    except tarfile.FilterError as exc:
        raise _unsafe(exc.tarinfo.name, str(exc)) from None
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, gzip.BadGzipFile, lzma.LZMAError) as exc:
        raise ProfilerError(f"{label} is a damaged {'zip' if kind == 'zip' else 'tar'} archive ({one_line(exc)})",
                            hint=_HINT_DAMAGED) from None
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        raise UnsafeArchiveError(f"{label} has conflicting members (a name used both as file and directory)",
                                 hint=_HINT_UNSAFE) from None
    except OSError as exc:
        raise ProfilerError(f"cannot unpack {label}: {exc.strerror or exc}", hint=_HINT_DISK) from None


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
                raise ProfilerError(f"{label} is a damaged compressed archive ({one_line(exc)})",
                                    hint=_HINT_DAMAGED) from None
            return


def _top_dir(members: list[tuple[tuple[str, ...], Member]]) -> str | None:
    """The single top directory everything sits in, if there is one."""
    tops = {parts[0] for parts, _ in members}
    if len(tops) == 1 and all(len(parts) > 1 or m.kind == "dir" for parts, m in members):
        return next(iter(tops))
    return None


def _install_mode(rel: tuple[str, ...], member: Member) -> int:
    if member.kind == "dir" or member.mode & 0o111 or rel[0] == "bin":
        return 0o755
    return 0o644


def _extract_tar_members(tf: tarfile.TarFile, members: list[tuple[tuple[str, ...], Member]], dest: Path,
                         strip: bool) -> None:
    # tarfile's data filter resolves each path against dest and drops owners and odd mode bits;
    # the checks above stay because the filter allows links inside dest, duplicates and any size.
    renamed = []
    for parts, member in members:
        rel = parts[1:] if strip else parts
        if rel:
            renamed.append(member.tarinfo.replace(name="/".join(rel), mode=_install_mode(rel, member), deep=False))
    tf.extractall(dest, members=renamed, filter="data")


def _write_zip_members(members: list[tuple[tuple[str, ...], Member]], dest: Path, strip: bool) -> None:
    # zipfile has no extraction filter (it rewrites bad names silently and ignores modes): own writer.
    for parts, member in members:
        rel = parts[1:] if strip else parts
        if not rel:
            continue
        target = dest.joinpath(*rel)
        if member.kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
            os.chmod(target, 0o755)
        else:
            write_file(target, member.opener, _install_mode(rel, member), member.name)


def write_file(target: Path, opener: Callable[[], IO[bytes]], mode: int, name: str) -> None:
    """Write one member to a new file (never through an existing name or link), capped in size."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        raise _unsafe(name, "duplicate entry") from None
    written = 0
    with os.fdopen(fd, "wb") as out, opener() as src:
        for chunk in iter(lambda: src.read(CHUNK), b""):
            written += len(chunk)
            if written > MAX_UNPACKED_BYTES:
                raise UnsafeArchiveError(f"archive member {name!r} unpacks beyond {MAX_UNPACKED_BYTES >> 20} MiB",
                                         hint=_HINT_TOO_BIG)
            out.write(chunk)
    os.chmod(target, mode)


def check_top_dir(top: str | None, version: str, arch: str, label: str) -> None:
    """An official archive names its version and arch in its top directory: hold them to the request."""
    if not top:
        return
    m = re.fullmatch(r"async-profiler-(.+)-linux-(x64|arm64|aarch64|amd64|x86_64)", top)
    if not m:
        return
    found_version, found_arch = m.group(1), arch_from_platform(m.group(2))
    if (found_version, found_arch) != (version, arch):
        raise ProfilerError(f"{label} holds async-profiler {found_version} {found_arch}, not the requested {version} {arch}",
                            hint="ask for the version and arch the archive has, or use the matching archive")
