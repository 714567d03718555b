"""Presentation for the task layer: step banners, countdowns, one-line errors, tables.

The core modules log; only tasks.py and this module write to the terminal.
Respects NO_COLOR (https://no-color.org) and non-terminal output.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from typing import Sequence, TextIO


def color_enabled(stream: TextIO = sys.stdout) -> bool:
    return not os.environ.get("NO_COLOR") and hasattr(stream, "isatty") and stream.isatty()


def _c(code: str, text: str, stream: TextIO = sys.stdout) -> str:
    return f"\033[{code}m{text}\033[0m" if color_enabled(stream) else text


def say(msg: str) -> None:
    print(msg, flush=True)


def ok(msg: str) -> None:
    print(_c("32", "ok") + "  " + msg, flush=True)


def warn(msg: str) -> None:
    print(_c("33", "warning") + ": " + msg, file=sys.stderr, flush=True)


def banner(n: int, total: int, title: str) -> None:
    line = f"==> [{n}/{total}] {title}"
    print(_c("1;36", line), flush=True)


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    cols = list(zip(*([list(header)] + [list(map(str, r)) for r in rows]))) if rows else [[h] for h in header]
    widths = [max(len(x) for x in col) for col in cols]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    lines = [fmt.format(*header), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*map(str, r)) for r in rows]
    return "\n".join(lines)


class Countdown:
    """A ticking countdown: `\r`-updated on a terminal, a line every ~10 s otherwise."""

    def __init__(self, label: str, seconds: float, stream: TextIO = sys.stdout):
        self.label = label
        self.seconds = seconds
        self.stream = stream
        self.start = time.monotonic()
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self._last_line = -1

    def tick(self, *_args) -> None:
        left = max(0, int(round(self.seconds - (time.monotonic() - self.start))))
        if self.tty:
            self.stream.write(f"\r{self.label}: {left:4d}s left ")
            self.stream.flush()
        else:
            bucket = left // 10
            if bucket != self._last_line:
                self._last_line = bucket
                self.stream.write(f"{self.label}: {left}s left\n")
                self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\r" + " " * (len(self.label) + 16) + "\r")
            self.stream.flush()


def setup_logging(verbose: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger().setLevel(level)
    # python-on-whales logs each docker command at DEBUG: that is what -v shows
    logging.getLogger("python_on_whales").setLevel(level)
    if not verbose:
        logging.getLogger("flamekit").setLevel(logging.INFO)
        handler_ok = any(isinstance(h, logging.StreamHandler) for h in logging.getLogger().handlers)
        if handler_ok:
            for h in logging.getLogger().handlers:
                h.setFormatter(logging.Formatter("%(message)s"))
                h.setLevel(logging.INFO)
