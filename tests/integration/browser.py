"""Load an HTML file in headless Chromium: its script errors and a screenshot.

Used by tests that check flamekit's generated pages (run index, differential flame
graph) really load in a browser. Needs Debian's ``chromium`` (or ``chromium-browser``
/ ``google-chrome``, or the binary named by ``FLAMEKIT_CHROMIUM``); raises
``ChromiumMissing`` without one.

Two headless runs of the page:

1. ``--dump-dom`` of a temporary copy with a small probe script inserted first in
   the document: it records ``window.onerror``, unhandled promise rejections and
   ``console.error`` calls into an attribute of ``<html>``, which the dumped DOM
   carries back. (Chromium's stderr log prints every console message at INFO
   without its level, so it cannot tell ``console.error`` from ``console.log``.)
   Uncaught errors that Chromium logs to stderr are collected as well.
2. ``--screenshot`` of the original file.

Temporary profile directories and the probed copy are always removed.
"""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["ChromiumMissing", "find_chromium", "load_in_chromium"]

_ATTR = "data-flamekit-errors"
_PROBE = (
    "<script>(function(){var E=[];function put(m){E.push(String(m));"
    f"document.documentElement.setAttribute('{_ATTR}',JSON.stringify(E));}}"
    "window.addEventListener('error',function(e){put((e.message||'error')+"
    "(e.filename?' @ '+e.filename+':'+e.lineno:''));});"
    "window.addEventListener('unhandledrejection',function(e){put('unhandled rejection: '+"
    "(e.reason&&e.reason.message||e.reason));});"
    "var ce=console.error;console.error=function(){put('console.error: '+"
    "Array.prototype.map.call(arguments,String).join(' '));return ce.apply(console,arguments);};"
    "})();</script>"
)
_CONSOLE_RE = re.compile(r":CONSOLE[:(]\d*\)?\]\s+\"(?P<msg>.*)\", source: (?P<src>.*)$")
_ATTR_RE = re.compile(_ATTR + r'="(?P<value>[^"]*)"')

_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--enable-logging=stderr", "--v=0",
]


class ChromiumMissing(RuntimeError):
    """No Chromium binary on this machine."""


def find_chromium() -> str:
    """Path of a Chromium binary, or raise ChromiumMissing."""
    override = os.environ.get("FLAMEKIT_CHROMIUM")
    candidates = [override] if override else ["chromium", "chromium-browser", "google-chrome"]
    for name in candidates:
        path = shutil.which(name) if name else None
        if path:
            return path
    raise ChromiumMissing("no chromium binary found: apt-get install -y chromium "
                          "(or set FLAMEKIT_CHROMIUM)")


def _run(binary: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="flamekit-chromium-")
    try:
        return subprocess.run([binary, *_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    finally:
        # Chromium's helper processes may still write briefly after the browser exits
        for _ in range(5):
            shutil.rmtree(profile, ignore_errors=True)
            if not os.path.exists(profile):
                break
            time.sleep(0.2)


def _probed_copy(page: Path) -> Path:
    """A copy of the page next to it (relative links keep working) with the probe first."""
    text = page.read_text(encoding="utf-8", errors="replace")
    m = re.search(r"<head[^>]*>", text, re.IGNORECASE) or re.search(r"<html[^>]*>", text, re.IGNORECASE)
    if m:
        text = text[:m.end()] + _PROBE + text[m.end():]
    else:
        text = _PROBE + text
    fd, name = tempfile.mkstemp(prefix=".probe-", suffix=".html", dir=page.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(name)


def load_in_chromium(html_path: str | os.PathLike[str], screenshot_path: str | os.PathLike[str] | None = None,
                     window_size: str = "1200,800", timeout: float = 90) -> tuple[list[str], Path]:
    """Load ``html_path`` headless; return (console errors, screenshot PNG path).

    ``screenshot_path`` defaults to the page's path with ``.png``. Raises
    ChromiumMissing without a browser, RuntimeError when Chromium writes no
    screenshot or no DOM.
    """
    binary = find_chromium()
    page = Path(html_path).resolve()
    if not page.is_file():
        raise FileNotFoundError(page)
    png = Path(screenshot_path) if screenshot_path else page.with_suffix(".png")
    png = png.resolve()
    png.parent.mkdir(parents=True, exist_ok=True)

    errors: list[str] = []
    probe = _probed_copy(page)
    try:
        res = _run(binary, ["--virtual-time-budget=2000", "--dump-dom", probe.as_uri()], timeout)
    finally:
        probe.unlink(missing_ok=True)
    if "<html" not in res.stdout.lower():
        raise RuntimeError(f"chromium dumped no DOM for {page} (exit {res.returncode}): "
                           f"{res.stderr.strip()[-300:]}")
    m = _ATTR_RE.search(res.stdout)
    if m:
        try:
            errors += [str(e) for e in json.loads(html.unescape(m.group("value")))]
        except json.JSONDecodeError:
            errors.append(html.unescape(m.group("value")))
    for line in res.stderr.splitlines():
        c = _CONSOLE_RE.search(line)
        if c and c.group("msg").startswith("Uncaught"):
            msg = c.group("msg")
            if not any(msg.replace("Uncaught ", "") in e for e in errors):
                errors.append(msg)

    png.unlink(missing_ok=True)
    res = _run(binary, [f"--screenshot={png}", f"--window-size={window_size}",
                        "--hide-scrollbars", page.as_uri()], timeout)
    if not png.is_file() or png.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot of {page} (exit {res.returncode}): "
                           f"{res.stderr.strip()[-300:]}")
    probe_uri, page_uri = probe.as_uri(), page.as_uri()
    return [e.replace(probe_uri, page_uri) for e in errors], png
