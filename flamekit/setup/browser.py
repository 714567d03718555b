"""Chromium for the browser tests (flame graph pages, the HTML report): installed as root on
Debian, the way `inv engine` installs the engine; elsewhere one line says what to install.

Run as ``python -m flamekit.setup.browser`` (``make test`` does)."""
from __future__ import annotations

import os
import shutil
import sys

from ..errors import FlamekitError
from .engine import Runner, apt_install, is_debian_family, os_release, run

NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    return next((p for p in map(shutil.which, NAMES) if p), None)


def ensure_chromium(runner: Runner = run, is_root: bool | None = None) -> str:
    found = find_chromium()
    if found:
        return f"chromium: {found}"
    root = os.geteuid() == 0 if is_root is None else is_root
    if not (root and is_debian_family(os_release())):
        raise FlamekitError("no Chromium for the browser tests",
                            "install Chromium (Debian/Ubuntu: apt-get install chromium) and run again")
    apt_install("chromium", runner, FlamekitError, "install Chromium by hand", update=True)
    return f"chromium: installed {find_chromium() or '(not on PATH?)'}"


def main() -> int:
    from .. import ui
    try:
        ui.ok(ensure_chromium())
    except FlamekitError as exc:
        ui.warn(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
