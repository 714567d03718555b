"""Everything flamekit writes to the terminal: lines, step banners, tables,
countdowns and download progress, all on rich.

The core modules log and report progress through callbacks; only this module
writes to the terminal. When the output is not a terminal every function
writes plain lines (no escape codes, no carriage returns); NO_COLOR
(https://no-color.org) turns off colour and styles; warnings go to stderr.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from io import StringIO
from typing import TextIO

from rich import box
from rich.console import Console
from rich.control import Control
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.segment import ControlType
from rich.table import Table
from rich.text import Text

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader went away


def no_color() -> bool:
    return os.environ.get("NO_COLOR", "") != ""


class _Console(Console):
    def on_broken_pipe(self) -> None:
        _stop_on_broken_pipe()


def console(stream: TextIO | None = None, *, stderr: bool = False, tty: bool | None = None) -> Console:
    """A Console on ``stream`` (default: the current sys.stdout, or sys.stderr).

    ``tty`` forces terminal behaviour on or off; None asks the stream (and
    rich's FORCE_COLOR / TTY_COMPATIBLE). No markup, highlighting or emoji
    codes are interpreted in messages, and long lines are never wrapped."""
    file = stream if stream is not None else (sys.stderr if stderr else sys.stdout)
    return _Console(file=file, force_terminal=tty, color_system=None if no_color() else "auto",
                    no_color=no_color(), markup=False, highlight=False, emoji=False, soft_wrap=True)


def color_enabled(stream: TextIO | None = None) -> bool:
    return console(stream).color_system is not None


def _text(msg: str) -> Text:
    return Text.from_ansi(msg) if "\x1b" in msg else Text(msg)


def say(msg: str) -> None:
    console().print(_text(msg))


def ok(msg: str) -> None:
    console().print(Text.assemble(("ok", "green"), "  ", _text(msg)))


def warn(msg: str) -> None:
    console(stderr=True).print(Text.assemble(("warning", "yellow"), ": ", _text(msg)))


def banner(n: int, total: int, title: str) -> None:
    console().print(Text(f"==> [{n}/{total}] {title}", style="bold cyan"))


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """The rows under the header as text: plain ASCII columns unless stdout is
    a terminal, where it is a rich table as wide as the terminal."""
    out = console()
    if not out.is_terminal:
        return _plain_table(rows, header)
    t = Table(*header, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for row in rows:
        t.add_row(*map(str, row))
    buf = StringIO()
    Console(file=buf, width=out.width, force_terminal=True, color_system=out.color_system,
            no_color=no_color(), markup=False, highlight=False, emoji=False).print(t)
    return buf.getvalue().rstrip("\n")


def _plain_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    cells = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    lines = [fmt.format(*cells[0]), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*r) for r in cells[1:]]
    return "\n".join(lines)


def _redraw(con: Console, text: Text) -> None:
    """Rewrite the current terminal line in place."""
    con.control(Control((ControlType.CARRIAGE_RETURN,), (ControlType.ERASE_IN_LINE, 2)))
    con.print(text, end="")


class Countdown:
    """A countdown for a fixed wait: one line redrawn in place on a terminal,
    a plain line about every 10 s otherwise. ``tick()`` as often as you like,
    ``done()`` at the end (it clears the line on a terminal)."""

    def __init__(self, label: str, seconds: float, stream: TextIO | None = None, *, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.label = label
        self.seconds = seconds
        self._console = console(stream, tty=tty)
        self.tty = self._console.is_terminal and not self._console.is_dumb_terminal
        self._clock = clock
        self.start = clock()
        self._last_left = -1
        self._last_bucket = -1

    def tick(self, *_args: object) -> None:
        left = max(0, int(round(self.seconds - (self._clock() - self.start))))
        if self.tty:
            # own line drawing, not rich's Live: callers do not always reach done() (Ctrl-C), and
            # Live would leave the cursor hidden
            if left != self._last_left:
                self._last_left = left
                _redraw(self._console, Text.assemble((self.label, "bold"), f": {left:4d}s left "))
            return
        bucket = left // 10
        if bucket != self._last_bucket:
            self._last_bucket = bucket
            self._console.print(f"{self.label}: {left}s left")

    def done(self) -> None:
        if self.tty and self._last_left >= 0:
            self._console.control(Control((ControlType.CARRIAGE_RETURN,), (ControlType.ERASE_IN_LINE, 2)))
            self._last_left = -1

    def __enter__(self) -> Countdown:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.done()


class ProgressBar:
    """Download progress for the core's ``progress(done_bytes, total_bytes_or_None)`` callback.

    On a terminal: a rich progress bar (bytes, speed, time left; a pulsing bar
    when the size is unknown), ended when the download completes. Elsewhere
    (CI logs, pipes) a plain line at each 10 %, or each MiB when the size is
    unknown. A call with fewer bytes than the last starts a new download (the
    installer moving on to another source). Use it as a context manager, or
    call ``close()``, so an interrupted bar is ended too.
    """

    def __init__(self, stream: TextIO | None = None, label: str = "download", *, tty: bool | None = None):
        self.label = label
        self._console = console(stream, tty=tty)
        self.tty = self._console.is_terminal and not self._console.is_dumb_terminal
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._last_done = -1
        self._last_step = -1
        self._finished = False

    def __call__(self, done: int, total: int | None) -> None:
        if done < self._last_done:
            self.close()
            self._last_step = -1
            self._finished = False
        self._last_done = done
        if self._finished:
            return
        if self.tty:
            self._draw(done, total)
        else:
            self._line(done, total)
        self._finished = total is not None and done >= total

    def _draw(self, done: int, total: int | None) -> None:
        if self._progress is None:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(binary_units=True),
                                      TransferSpeedColumn(), TimeRemainingColumn(), console=self._console)
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=total)
        self._progress.update(self._task, completed=done, total=total)
        if total is not None and done >= total:
            self.close()

    def _line(self, done: int, total: int | None) -> None:
        # rich draws nothing on a non-terminal until a bar stops; a log wants a line per step
        step = (min(done, total) * 10 // total) if total else done >> 20
        if step > self._last_step:
            self._last_step = step
            if total:
                self._console.print(f"{self.label}: {step * 10:3d}% ({_mib(done)} of {_mib(total)})")
            else:
                self._console.print(f"{self.label}: {_mib(done)}")

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def download_progress(label: str, stream: TextIO | None = None) -> ProgressBar:
    """``with ui.download_progress("async-profiler") as progress: install_profiler(..., progress=progress)``."""
    return ProgressBar(stream, label)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def _stop_on_broken_pipe() -> None:
    # point stdout at /dev/null so the interpreter's final flush cannot fail a second time
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    raise SystemExit(EXIT_BROKEN_PIPE)


@contextlib.contextmanager
def quiet_broken_pipe() -> Iterator[None]:
    """For ``inv ... | head``: when the reader goes away, exit with 141 and no traceback.

    A context manager and a decorator; wrap each task's body in it."""
    try:
        yield
    except BrokenPipeError:
        _stop_on_broken_pipe()


class _StderrHandler(logging.StreamHandler):
    """Logs to whatever sys.stderr is at the time, so lines go above a live progress bar."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def setup_logging(verbose: bool) -> None:
    """-v: every logger at DEBUG with level and name (python-on-whales logs each
    docker command at DEBUG: that is what -v shows); else flamekit's INFO
    messages as bare lines and warnings from everything else."""
    level = logging.DEBUG if verbose else logging.WARNING
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        root.addHandler(handler)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s"))
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.setLevel(level)
    logging.getLogger("python_on_whales").setLevel(level)
    logging.getLogger("flamekit").setLevel(logging.DEBUG if verbose else logging.INFO)
