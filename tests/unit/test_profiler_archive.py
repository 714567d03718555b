"""flamekit.profiler.archive: the checks the tarfile data filter does not make, and what unpacking leaves."""
from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from flamekit.errors import UnsafeArchiveError
from flamekit.profiler import archive


def tar_gz(path: Path, members: list[tuple[str, bytes | None, int]]) -> Path:
    """members: (name, data or None for a directory, mode)."""
    with tarfile.open(path, "w:gz") as tf:
        for name, data, mode in members:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def test_tar_strips_the_top_directory_and_sets_install_modes(tmp_path):
    src = tar_gz(tmp_path / "a.tar.gz", [
        ("top", None, 0o700),
        ("top/bin/asprof", b"elf", 0o4777),  # setuid and world-writable in the archive
        ("top/lib/lib.so", b"so", 0o600),
        ("top/tool", b"#!", 0o744),
    ])
    dest = tmp_path / "out"
    dest.mkdir()
    assert archive.unpack_archive(src, dest, "a.tar.gz") == "top"
    modes = {p.relative_to(dest).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in dest.rglob("*")}
    assert modes == {"bin": 0o755, "bin/asprof": 0o755, "lib": 0o755, "lib/lib.so": 0o644, "tool": 0o755}
    assert (dest / "bin/asprof").read_bytes() == b"elf"


def test_no_single_top_directory_means_nothing_is_stripped(tmp_path):
    src = tar_gz(tmp_path / "a.tar.gz", [("bin/asprof", b"x", 0o755), ("LICENSE", b"y", 0o644)])
    dest = tmp_path / "out"
    dest.mkdir()
    assert archive.unpack_archive(src, dest, "a") is None
    assert (dest / "bin/asprof").is_file() and (dest / "LICENSE").is_file()


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_duplicate_entries_are_refused(tmp_path, kind):
    if kind == "tar":
        src = tar_gz(tmp_path / "a.tar.gz", [("top/f", b"one", 0o644), ("top/f", b"two", 0o644)])
    else:
        src = tmp_path / "a.zip"
        with zipfile.ZipFile(src, "w") as zf, pytest.warns(UserWarning):
            zf.writestr("top/f", b"one")
            zf.writestr("top/f", b"two")
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match="duplicate entry"):
        archive.unpack_archive(src, dest, "a")


def test_member_count_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "MAX_MEMBERS", 3)
    src = tar_gz(tmp_path / "a.tar.gz", [(f"top/f{i}", b"x", 0o644) for i in range(4)])
    with pytest.raises(UnsafeArchiveError, match="past 3 members"):
        archive.unpack_archive(src, tmp_path, "a")
    assert not (tmp_path / "f0").exists()  # checked before anything is written


def test_unpacked_size_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "MAX_UNPACKED_BYTES", 1 << 20)
    src = tar_gz(tmp_path / "a.tar.gz", [("top/a", bytes(600 << 10), 0o644), ("top/b", bytes(600 << 10), 0o644)])
    with pytest.raises(UnsafeArchiveError, match="'top/b' takes the archive past"):
        archive.unpack_archive(src, tmp_path, "a")


def test_file_and_directory_of_the_same_name_conflict(tmp_path):
    src = tar_gz(tmp_path / "a.tar.gz", [("top/x", b"file", 0o644), ("top/x/y", b"under it", 0o644)])
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match="conflicting members"):
        archive.unpack_archive(src, dest, "a")
