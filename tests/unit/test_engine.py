"""Engine and image decisions with an injected runner: no Docker needed."""
from __future__ import annotations

import pytest

from flamekit.setup import engine as engine
from flamekit.setup.engine import Result
from flamekit.errors import EngineError, ImageError

DEBIAN = {"ID": "debian", "VERSION_CODENAME": "bookworm"}


class FakeRunner:
    def __init__(self, answers):
        self.answers = answers  # list of (prefix tuple, Result)
        self.calls = []

    def __call__(self, args, timeout=None, input=None):
        self.calls.append(list(args))
        for prefix, res in self.answers:
            if tuple(args[:len(prefix)]) == prefix:
                return res
        return Result(0, "", "")


def test_working_engine_is_left_alone():
    r = FakeRunner([(("docker", "info"), Result(0, "20.10.24\n"))])
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


def test_images_default_present(monkeypatch):
    r = FakeRunner([])
    choice = engine.ensure_images("auto", ("b:1", "r:1"), ("ob", "or"), "m", r)
    assert choice.how == "default" and choice.compose_env() == {"FLAMEKIT_BUILD_IMAGE": "b:1",
                                                                "FLAMEKIT_BASE_IMAGE": "r:1"}


def test_images_fall_back_to_offline_when_pull_fails(monkeypatch):
    r = FakeRunner([(("docker", "image", "inspect", "--format", "{{.Id}}", "b:1"), Result(1, "", "no such image")),
                    (("docker", "pull"), Result(1, "", "dial tcp: lookup registry: no such host"))])
    r.answers.append((("docker", "image", "inspect", "--format", "{{.Id}}", "ob"), Result(1, "", "no such image")))
    built = []
    monkeypatch.setattr(engine, "build_offline_image", lambda kind, tag, *a, **k: built.append(tag) or 1.0)
    choice = engine.ensure_images("auto", ("b:1", "r:1"), ("ob", "or"), "m", r)
    assert choice.how == "offline" and (choice.build_image, choice.base_image) == ("ob", "or")
    assert any(c[:2] == ["docker", "pull"] for c in r.calls)
    assert built == ["ob"]  # "or" is present per the fake runner: reused, not rebuilt


def test_auto_reuses_offline_images_without_pulling():
    r = FakeRunner([(("docker", "image", "inspect", "--format", "{{.Id}}", "b:1"), Result(1, "", "no such image"))])
    choice = engine.ensure_images("auto", ("b:1", "r:1"), ("ob", "or"), "m", r)
    assert choice.how == "offline"
    assert not any(c[:2] == ["docker", "pull"] for c in r.calls)


def test_images_default_mode_fails_clearly(monkeypatch):
    r = FakeRunner([(("docker", "image"), Result(1)), (("docker", "pull"), Result(1, "", "no such host"))])
    with pytest.raises(ImageError) as e:
        engine.ensure_images("default", ("b:1", "r:1"), ("ob", "or"), "m", r)
    assert "inv base-images --offline" in str(e.value)


def test_offline_builds_missing_images(monkeypatch):
    r = FakeRunner([(("docker", "image"), Result(1))])
    built = []
    monkeypatch.setattr(engine, "build_offline_image", lambda kind, tag, *a, **k: built.append((kind, tag)) or 1.0)
    engine.ensure_images("offline", ("b", "r"), ("ob", "or"), "m", r)
    assert built == [("jdk", "ob"), ("jre", "or")]


class FakeProc:
    pid = 4242
    returncode = None

    def poll(self):
        return None


def test_root_on_debian_starts_dockerd_and_waits(monkeypatch, tmp_path):
    answers = iter([Result(1, "", "Cannot connect to the Docker daemon"), Result(1, "", "still starting"),
                    Result(0, "20.10.24\n")])
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
    assert "dockerd started (pid 4242" in msg and str(tmp_path / "dockerd.log") in msg
    assert (tmp_path / "dockerd.pid").read_text() == "4242"
    assert not any(c[0] == "apt-get" for c in calls)  # dockerd was already installed


def test_root_on_debian_installs_docker_io_when_missing(monkeypatch, tmp_path):
    answers = iter([Result(127, "", "docker: command not found"), Result(0, "20.10.24\n")])

    def runner(args, timeout=None, input=None):
        if args[:2] == ["docker", "info"]:
            return next(answers)
        return Result(0, "", "")

    r_calls = []
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    monkeypatch.setattr(engine.time, "sleep", lambda s: None)
    monkeypatch.setattr(engine.platform, "system", lambda: "Linux")

    def tracking(args, timeout=None, input=None):
        r_calls.append(list(args))
        return runner(args, timeout, input)

    engine.ensure_engine(tracking, is_root=True, release=DEBIAN, log_path=tmp_path / "l", pid_path=tmp_path / "p",
                         popen=lambda args, **kw: FakeProc())
    assert ["apt-get", "update", "-qq"] in r_calls
    assert any("docker.io" in c for c in r_calls)
