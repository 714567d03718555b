"""flamekit.ui: plain output off a terminal, NO_COLOR, countdowns, download progress, broken pipes."""
from __future__ import annotations

import io
import logging
import subprocess
import sys
import textwrap

import pytest

from flamekit import ui

SGR_COLOR = ("\x1b[3", "\x1b[9", "\x1b[38;")  # foreground colours, as rich writes them


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def plain_env(monkeypatch):
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")


def on_tty(monkeypatch) -> FakeTTY:
    """Point sys.stdout at a fake terminal (in the test body: pytest's capture resets it after setup)."""
    out = FakeTTY()
    monkeypatch.setattr(sys, "stdout", out)
    return out


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- lines


def test_not_a_terminal_means_plain_lines(capsys):
    ui.say("plain [bold]not markup[/bold] :smile:")
    ui.ok("done")
    ui.banner(2, 6, "engine and images")
    ui.warn("careful")
    out, err = capsys.readouterr()
    assert out == "plain [bold]not markup[/bold] :smile:\nok  done\n==> [2/6] engine and images\n"
    assert err == "warning: careful\n"


def test_ansi_given_to_say_is_dropped_off_a_terminal(capsys):
    ui.say("\x1b[31mred\x1b[0m text")
    assert capsys.readouterr().out == "red text\n"


def test_terminal_gets_colour(monkeypatch):
    tty_stdout = on_tty(monkeypatch)
    ui.ok("done")
    ui.banner(1, 2, "step")
    assert any(code in tty_stdout.getvalue() for code in SGR_COLOR)


def test_no_color_means_no_escape_codes_on_a_terminal(monkeypatch):
    tty_stdout = on_tty(monkeypatch)
    monkeypatch.setenv("NO_COLOR", "1")
    ui.ok("done")
    ui.banner(1, 2, "step")
    ui.say(ui.table([["a", "1"]], ("name", "n")))
    assert "\x1b" not in tty_stdout.getvalue()
    assert "ok  done\n==> [1/2] step\n" in tty_stdout.getvalue()
    assert not ui.color_enabled()


def test_empty_no_color_does_not_count(monkeypatch):
    on_tty(monkeypatch)
    monkeypatch.setenv("NO_COLOR", "")
    assert ui.color_enabled()


def test_table_is_plain_ascii_off_a_terminal():
    text = ui.table([["api", "running", 3], ["db", "exited", ""]], ("service", "state", "n"))
    assert text.splitlines() == [
        "service  state    n",
        "-------  -------  -",
        "api      running  3",
        "db       exited    ",
    ]
    assert ui.table([], ("a", "bb")).splitlines() == ["a  bb", "-  --"]


def test_table_on_a_terminal_is_a_rich_table(monkeypatch):
    on_tty(monkeypatch)
    text = ui.table([["api", "running"]], ("service", "state"))
    assert "service" in text and "api" in text and "running" in text


# --------------------------------------------------------------------------- countdown


def test_countdown_off_a_terminal_prints_a_line_about_every_ten_seconds():
    out, clock = io.StringIO(), Clock()
    cd = ui.Countdown("capture", 30, out, clock=clock)
    for _ in range(31):
        cd.tick(0.0, 0.0)  # load.wait passes (elapsed, left); both are ignored
        clock.now += 1
    cd.done()
    text = out.getvalue()
    assert text.splitlines() == ["capture: 30s left", "capture: 29s left", "capture: 19s left", "capture: 9s left"]
    assert "\r" not in text and "\x1b" not in text


def test_countdown_on_a_terminal_redraws_one_line_and_clears_it(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    out, clock = FakeTTY(), Clock()
    with ui.Countdown("warm-up", 5, out, clock=clock) as cd:
        for _ in range(3):
            cd.tick()
            cd.tick()  # same second: no redraw
            clock.now += 1
    text = out.getvalue()
    assert "\n" not in text and text.count("\r") == 4  # three redraws and the clearing
    assert "warm-up:    5s left" in text and "warm-up:    3s left" in text
    assert text.endswith("\r\x1b[2K")
    assert not any(code in text for code in SGR_COLOR)


# --------------------------------------------------------------------------- download progress


def test_progress_off_a_terminal_writes_a_line_every_ten_percent():
    out = io.StringIO()
    with ui.download_progress("ap", out) as bar:
        for done in range(0, 1001, 7):
            bar(done, 1000)
        bar(1000, 1000)
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == [f"{p}%" for p in range(0, 101, 10)]
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_progress_with_unknown_total_reports_mebibytes():
    out = io.StringIO()
    with ui.ProgressBar(out, label="ap") as bar:
        for done in range(0, 3 * (1 << 20) + 1, 1 << 18):
            bar(done, None)
    assert out.getvalue().splitlines() == ["ap: 0.0 MiB", "ap: 1.0 MiB", "ap: 2.0 MiB", "ap: 3.0 MiB"]


def test_progress_on_a_terminal_with_unknown_total(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    out = FakeTTY()
    with ui.ProgressBar(out, label="ap") as bar:
        assert bar.tty
        bar(0, None)
        bar(3 << 20, None)
    text = out.getvalue()
    assert "ap" in text and "3.0" in text and "MiB" in text and text.endswith("\x1b[?25h")  # cursor shown again
    assert not any(code in text for code in SGR_COLOR)


def test_progress_on_a_terminal_ends_when_complete_and_restarts_for_a_new_download():
    out = FakeTTY()
    bar = ui.ProgressBar(out, label="ap")
    bar(0, 100)
    bar(100, 100)
    first = out.getvalue()
    assert first.endswith("\n\x1b[?25h") and "100/100 bytes" in first
    bar(100, 100)  # repeated completion draws nothing
    assert out.getvalue() == first
    bar(0, 200)  # auto moved on to the next source
    bar(200, 200)
    assert "200/200 bytes" in out.getvalue()[len(first):]
    bar.close()


def test_progress_close_ends_an_interrupted_bar():
    out = FakeTTY()
    with pytest.raises(KeyboardInterrupt), ui.download_progress("ap", out) as bar:
        bar(0, 100)
        raise KeyboardInterrupt
    assert out.getvalue().endswith("\x1b[?25h")


# --------------------------------------------------------------------------- broken pipe, logging


def test_output_into_a_closed_pipe_exits_quietly():
    script = textwrap.dedent("""
        import sys
        from flamekit import ui
        with ui.quiet_broken_pipe():
            for i in range(200000):
                ui.say(f"line {i}")
                sys.stdout.write(f"raw {i}\\n")
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"line 0\n"
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == ui.EXIT_BROKEN_PIPE
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err


def test_setup_logging_writes_to_the_current_stderr(capsys):
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        ui.setup_logging(False)
        ui.setup_logging(False)  # one handler, however often it is called
        logging.getLogger("flamekit.test").info("plain info")
        logging.getLogger("other").info("hidden")
        assert capsys.readouterr().err == "plain info\n"
        ui.setup_logging(True)
        logging.getLogger("other").debug("shown")
        assert capsys.readouterr().err == "DEBUG other: shown\n"
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])
        logging.getLogger("flamekit").setLevel(logging.NOTSET)
        logging.getLogger("python_on_whales").setLevel(logging.NOTSET)
