"""Orchestration against a fake Target: step order, profilers stopped on every path, the
interrupt after cleanup, failures recorded in the manifest. No Docker, no k6."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

import tasks
from flamekit import config as fkconfig
from flamekit.errors import CaptureError, FlamekitError, Interrupted
from flamekit.workflow import profile as wf
from tests.unit.fakes import SIGINT, SIGTERM, FakeTarget, send


@pytest.fixture
def s(tmp_path):
    return fkconfig.build_settings({"runs_dir": str(tmp_path / "runs"), "flamegraph_dir": str(tmp_path / "fg"),
                                    "reports_dir": str(tmp_path / "rep"), "output_dir": str(tmp_path / "out")},
                                   tasks.ROOT)


class FakeK6:
    instances: list["FakeK6"] = []

    def __init__(self, plan, k6_path, log_path):
        self.plan, self.stopped, self.waited = plan, False, False
        self.started_at = self.ended_at = None
        FakeK6.instances.append(self)

    def start(self):
        pass

    def wait(self):
        self.waited = True

    def stop(self):
        self.stopped = True

    def result(self):
        class R:
            def to_dict(self_inner):
                return {"target_tps": self.plan.tps, "achieved_tps": self.plan.tps, "iterations": 10}
        return R()


@pytest.fixture
def fake_load(monkeypatch):
    FakeK6.instances = []
    monkeypatch.setattr(wf.fkload, "find_k6", lambda *a, **k: "/bin/true")
    monkeypatch.setattr(wf.fkload, "check_reachable", lambda *a, **k: None)
    monkeypatch.setattr(wf.fkload, "k6_version", lambda *a, **k: "k6 fake")
    monkeypatch.setattr(wf.fkload, "run_load", lambda *a, **k: None)
    monkeypatch.setattr(wf.fkload, "K6Run", FakeK6)
    monkeypatch.setattr(wf.time, "sleep", lambda s: None)
    monkeypatch.setattr(wf.fkconvert, "host_converter", lambda p: None)  # convert "in the container"
    return FakeK6


def run(s, target, **kw):
    args = dict(duration=0, tps=5, warmup=0, load=True)
    args.update(kw)
    events = args.pop("events", ["cpu", "alloc"])
    return wf.run_profile(s, target, list(target.services), events, **args)


def actions(target, label=None):
    return [a for (who, a) in target.log if label is None or who == label]


def manifest(s) -> dict:
    run_dir = sorted((s.runs_dir).iterdir())[-1]
    return json.loads((run_dir / "manifest.json").read_text())


def test_steps_run_in_order_and_every_profiler_stops(s, fake_load):
    t = FakeTarget(services=("order-service", "gateway"))
    out = run(s, t)
    for label in ("order-service", "gateway"):
        acts = actions(t, label)
        assert acts.index("start") < acts.index("stop") < min(i for i, a in enumerate(acts) if a.startswith("jfrconv"))
        assert acts.count("start") == 1
    assert not any(t.active.values())
    m = out.manifest
    assert m["status"] == "ok" and {c["event"] for c in m["captures"]} == {"cpu", "alloc"}
    cpu = next(c for c in m["captures"] if c["service"] == "order-service" and c["event"] == "cpu")
    assert cpu["samples"] == 100 and cpu["engine"] == "ctimer" and cpu["cgroup_cpu_s"] > 0
    assert (s.flamegraph_dir / f"order-service-cpu-{out.run_dir.name}.html").is_file()
    tl = m["timeline"]
    assert tl["load_started"] <= tl["profilers_started"] <= tl["profilers_stopped"] <= tl["load_ended"]
    assert fake_load.instances[0].plan.duration_s == 0 + wf.LOAD_MARGIN_S


def test_a_failed_conversion_is_recorded_and_the_profilers_are_stopped(s, fake_load):
    def boom(r):
        raise RuntimeError("converter crashed")  # a bug, not a user error: still cleaned up
    t = FakeTarget(hooks={"convert": boom})
    with pytest.raises(RuntimeError):
        run(s, t)
    assert not any(t.active.values())
    m = manifest(s)
    assert m["status"] == "failed" and "converter crashed" in m["error"]
    assert fake_load.instances[0].stopped


def test_interrupted_is_not_a_flamekit_error():
    assert not issubclass(Interrupted, FlamekitError) and issubclass(Interrupted, KeyboardInterrupt)


@pytest.mark.parametrize("sig", [SIGINT, SIGTERM])
def test_signal_during_start_stops_every_profiler_and_k6_then_interrupts(s, fake_load, sig):
    t = FakeTarget(services=("order-service", "gateway"), hooks={"start": send(sig)})
    # whatever the handlers were (a shell starts background jobs with SIGINT ignored)
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    with pytest.raises(Interrupted) as exc:
        run(s, t)
    assert exc.value.signame == signal.Signals(sig).name
    assert not any(t.active.values()), t.log
    assert fake_load.instances[0].stopped
    m = manifest(s)
    assert m["status"] == "failed" and "interrupted" in m["error"]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # handlers restored


def test_signal_during_cleanup_does_not_cut_it_short(s, fake_load):
    t = FakeTarget(services=("order-service", "gateway", "payment-service"), hooks={"stop": send(SIGTERM)})
    with pytest.raises(Interrupted):
        run(s, t)
    # every profiler got its stop although a SIGTERM arrived during the first one
    for label in ("order-service", "gateway", "payment-service"):
        assert "stop" in actions(t, label)
    assert not any(t.active.values())
    assert fake_load.instances[0].stopped
    assert manifest(s)["status"] == "failed"


def test_a_profiler_already_running_is_refused_and_left_alone(s, fake_load):
    t = FakeTarget()
    t.active["order-service"] = True
    with pytest.raises(CaptureError, match="already being profiled"):
        run(s, t)
    assert t.active["order-service"] is True and "stop" not in actions(t)


def test_every_replica_is_profiled_in_one_window(s, fake_load):
    t = FakeTarget(replicas=3)
    out = run(s, t, events=["cpu"])
    labels = [c["container"] for c in out.captures]
    assert labels == ["fake-order-service-1", "fake-order-service-2", "fake-order-service-3"]
    assert [a for a in actions(t) if a in ("start", "stop")] == ["start"] * 3 + ["stop"] * 3
    one = wf.run_profile(s, FakeTarget(replicas=3), ["order-service"], ["cpu"], duration=0, tps=5, warmup=0,
                         replica=2)
    assert [c["replica"] for c in one.captures] == [2]


def test_a_restarted_container_is_named_as_the_cause(s, fake_load):
    """docker restart keeps the JVM's PID (a new PID namespace): the container's start time tells."""
    t = FakeTarget()
    t.started = iter(["2026-12-01T10:00:00Z", "2026-12-01T10:00:30Z"])
    t.started_at = lambda where: next(t.started, "2026-12-01T10:00:30Z")

    def lose_recording(r):
        t.files.clear()
    t.hooks["stop"] = lose_recording
    with pytest.raises(CaptureError):
        run(s, t, events=["cpu"])
    m = manifest(s)
    assert "restarted during the capture" in m["captures"][0]["error"]


def test_a_full_runs_dir_is_refused_before_anything_starts(s, fake_load, monkeypatch):
    import collections
    from flamekit import runs
    from flamekit.errors import ReportError
    monkeypatch.setattr(runs.shutil, "disk_usage", lambda p: collections.namedtuple("u", "total used free")(1, 1, 1000))
    t = FakeTarget()
    with pytest.raises(ReportError, match="MB free"):
        run(s, t)
    assert t.log == [] and not any(s.runs_dir.iterdir())


def test_the_jvm_search_overlaps_the_warm_up_and_a_failure_ends_it_at_once(s, fake_load, monkeypatch):
    import threading
    from tests.unit.fakes import PROC_LIST_COMMAND

    class NoJava(FakeTarget):
        def exec_result(self, where, command):
            if list(command) == PROC_LIST_COMMAND:
                threading.Event().wait(0.05)  # the search takes a moment, as docker exec does
                return 0, "1\tsh\tsh -c sleep infinity\n", ""
            return super().exec_result(where, command)

    ticks = []

    def warm_up(plan, k6, tick=None, log_path=None, preflight=True):
        for i in range(400):  # a 20 s warm-up at 50 ms a tick, unless a tick raises
            ticks.append(i)
            tick(i * 0.05, 20 - i * 0.05)
            threading.Event().wait(0.05)
    monkeypatch.setattr(wf.fkload, "run_load", warm_up)
    t = NoJava()
    with pytest.raises(CaptureError) as exc:
        run(s, t, warmup=20)
    assert "java" in str(exc.value).lower()
    assert 0 < len(ticks) < 100            # the warm-up began and was cut short
    assert "start" not in actions(t)       # no profiler was started
    assert manifest(s)["status"] == "failed"
