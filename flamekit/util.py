"""Small helpers every stage shares: atomic writes and the last line of a process's output.

Kept here (the bottom layer, next to config and errors) so no stage has to import a later one
to get them. Standard library only.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one, never a part.

    A temp file in the same directory, fsync'ed, then ``os.replace``; the temp file is removed
    when anything fails (a full disk included).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def last_line(text: str | bytes | None, default: str = "(no output)") -> str:
    """The last non-blank line of a process's output: what a one-line error should quote."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else default
