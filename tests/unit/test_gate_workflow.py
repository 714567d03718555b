"""Baselines and the gate orchestration, with a fake jfrconv (no Java, no Docker)."""
from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

from flamekit import config as fkconfig
from flamekit.analysis.gate import GateRegression, GateUndecided
from flamekit.errors import ConfigError, ReportError
from flamekit.workflow import gate as wg

HOT = "demo/order/PricingEngine.priceOrder"
FLAGS = ["-XX:+PreserveFramePointer", "-Xmx256m"]


def settings(tmp_path: Path):
    return fkconfig.build_settings({"runs_dir": str(tmp_path / "runs"), "flamegraph_dir": str(tmp_path / "fg"),
                                    "reports_dir": str(tmp_path / "reports")}, tmp_path)


def make_run(tmp_path: Path, stamp: str, cost: float, flags=FLAGS, seed=0, other=1.0) -> Path:
    run = tmp_path / "runs" / stamp
    svc = run / "order-service"
    svc.mkdir(parents=True)
    # the fake JFR holds what the fake jfrconv puts in each slice
    (svc / "profile.jfr").write_text(json.dumps({"cost": cost, "seed": seed, "other": other}))
    (svc / "cpu.collapsed").write_text(f"java/lang/Thread.run;{HOT} {int(600 * cost)}\n"
                                       "java/lang/Thread.run;demo/order/Other.work 1000\n")
    caps = [{"service": "order-service", "event": "cpu", "samples": int(600 * cost) + 1000, "engine": "ctimer",
             "jvm": {"version": "17.0.19", "args": list(flags)}, "jfr": "order-service/profile.jfr",
             "collapsed": "order-service/cpu.collapsed",
             "profiler_started": "2026-12-01T20:00:00+00:00", "profiler_stopped": "2026-12-01T20:00:20+00:00"}]
    m = {"stamp": stamp, "status": "ok", "settings": {"tps": 25.0, "duration": 20, "k6_script": "x/order-flow.js"},
         "environment": {"async_profiler": "4.3"},
         "load": {"target_tps": 25.0, "achieved_tps": 25.0, "rate_held": True, "dropped_iterations": 0,
                  "p95_ms": 100.0, "error_rate": 0.0}, "captures": caps}
    (run / "manifest.json").write_text(json.dumps(m))
    return run


def fake_jfrconv(args, **kw):
    """Writes a slice: ~60 x cost samples of priceOrder, ~100 x other of another method, with noise."""
    spec = json.loads(Path(args[-2]).read_text())
    start = int(args[args.index("--from") + 1])
    rng = random.Random(spec["seed"] * 1000 + start)
    hot = int(rng.gauss(60 * spec["cost"], 5))
    other = int(rng.gauss(100 * spec.get("other", 1.0), 6))
    Path(args[-1]).write_text(f"java/lang/Thread.run;{HOT}_[j] {hot}\n"
                              f"java/lang/Thread.run;demo/order/Other.work_[j] {other}\n")
    return SimpleNamespace(returncode=0, stdout="", stderr="")


def test_save_list_and_load_a_baseline(tmp_path):
    s = settings(tmp_path)
    make_run(tmp_path, "20260101-000000", 1.0)
    path = wg.save_baseline(s, None, "main", runner=fake_jfrconv)
    assert path == tmp_path / "docs" / "perf" / "baselines" / "main"
    b = wg.load("main", wg.baselines_dir(s))
    (t,) = b.tables[("order-service", "cpu")]
    assert b.runs == ["20260101-000000"]
    assert t.k == 10 and "demo.order.PricingEngine.priceOrder" in t.methods and t.unit == "CPU ms"
    assert b.profile("order-service", "cpu").total == 1600
    items = wg.list_baselines(s)
    assert [i["name"] for i in items] == ["main"] and items[0]["bytes"] < 2_000_000
    # saving again replaces it
    make_run(tmp_path, "20260102-000000", 1.0, seed=3)
    wg.save_baseline(s, "20260102-000000", "main", runner=fake_jfrconv)
    assert wg.load("main", wg.baselines_dir(s)).data["run"] == "20260102-000000"
    assert sorted(p.name for p in wg.baselines_dir(s).iterdir()) == ["main"]


def test_bad_or_missing_baselines_are_user_errors(tmp_path):
    s = settings(tmp_path)
    with pytest.raises(ConfigError):
        wg.check_name("../x")
    with pytest.raises(ConfigError, match="pass --baseline NAME"):
        wg.check_name(None)
    with pytest.raises(ReportError, match="no baseline 'nope'"):
        wg.load("nope", wg.baselines_dir(s))


def test_gate_finds_the_doubled_cost_and_writes_ci_outputs(tmp_path):
    s = settings(tmp_path)
    make_run(tmp_path, "20260101-000000", 1.0)
    wg.save_baseline(s, "20260101-000000", "main", runner=fake_jfrconv)
    make_run(tmp_path, "20260101-000100", 2.0, seed=1)
    with pytest.raises(GateRegression) as exc:
        wg.gate(s, "main", "20260101-000100", runner=fake_jfrconv)
    assert exc.value.exit_code == 1
    assert str(exc.value).startswith("order-service cpu: demo.order.PricingEngine.priceOrder +")
    assert "CPU ms per order" in str(exc.value)
    out = tmp_path / "reports" / "gate" / "20260101-000100-vs-main"
    root = ET.parse(out / "junit.xml").getroot()
    assert root.find("testsuite").get("failures") == "1"
    assert (out / "summary.md").read_text().startswith("## flamekit gate: FAIL")
    assert (out / "diff-order-service-cpu.html").is_file()


def test_gate_passes_an_equal_run(tmp_path):
    s = settings(tmp_path)
    make_run(tmp_path, "20260101-000000", 1.0)
    wg.save_baseline(s, "20260101-000000", "main", runner=fake_jfrconv)
    make_run(tmp_path, "20260101-000100", 1.0, seed=1)
    outs = wg.gate(s, "main", "20260101-000100", runner=fake_jfrconv)
    assert outs.result.exit_code == 0 and not outs.diffs


def test_gate_cannot_judge_runs_with_other_jvm_flags(tmp_path):
    s = settings(tmp_path)
    make_run(tmp_path, "20260101-000000", 1.0)
    wg.save_baseline(s, "20260101-000000", "main", runner=fake_jfrconv)
    make_run(tmp_path, "20260101-000100", 2.0, flags=FLAGS + ["-XX:+UseParallelGC"], seed=1)
    with pytest.raises(GateUndecided, match="different JVM flags for order-service.*UseParallelGC") as exc:
        wg.gate(s, "main", "20260101-000100", runner=fake_jfrconv)
    assert exc.value.exit_code == 2


def test_a_baseline_of_several_runs_knows_how_much_a_method_moves_between_runs(tmp_path):
    """Other.work moves by tens of percent from run to run (as a demo's HTTP client does);
    one baseline run cannot know that and flags it, three runs can and do not; a doubled
    priceOrder is still caught against the three."""
    s = settings(tmp_path)
    for i, other in enumerate((1.0, 1.5, 0.7)):
        make_run(tmp_path, f"20260101-00000{i}", 1.0, seed=10 + i, other=other)
    wg.save_baseline(s, "20260101-000000", "one", runner=fake_jfrconv)
    path = wg.save_baseline(s, None, "three", runner=fake_jfrconv, last=3)
    b = wg.load("three", wg.baselines_dir(s))
    assert b.runs == ["20260101-000000", "20260101-000001", "20260101-000002"]
    assert len(b.tables[("order-service", "cpu")]) == 3 and path.name == "three"
    assert wg.list_baselines(s)[1]["run"] == "20260101-000000, 20260101-000001, 20260101-000002"

    make_run(tmp_path, "20260101-000100", 1.0, seed=1, other=1.5)
    with pytest.raises(GateRegression, match="demo.order.Other.work"):
        wg.gate(s, "one", "20260101-000100", runner=fake_jfrconv)
    outs = wg.gate(s, "three", "20260101-000100", runner=fake_jfrconv)
    assert outs.result.exit_code == 0, outs.result.headline()
    other = next(m for c in outs.result.checks for m in c.methods if m.method.endswith("Other.work"))
    assert other.est.runs_a == 3 and other.est.tau_log > 0.1
    assert "Baseline of 3 runs" in outs.summary.read_text()

    make_run(tmp_path, "20260101-000200", 2.0, seed=2, other=1.0)
    with pytest.raises(GateRegression, match="^order-service cpu: demo.order.PricingEngine.priceOrder \\+"):
        wg.gate(s, "three", "20260101-000200", runner=fake_jfrconv)


def test_runs_that_cannot_be_compared_are_not_pooled(tmp_path):
    s = settings(tmp_path)
    make_run(tmp_path, "20260101-000000", 1.0)
    make_run(tmp_path, "20260101-000001", 1.0, flags=FLAGS + ["-XX:+UseParallelGC"], seed=1)
    with pytest.raises(ReportError, match="cannot be pooled.*different JVM flags"):
        wg.save_baseline(s, ["20260101-000000", "20260101-000001"], "main", runner=fake_jfrconv)
    with pytest.raises(ReportError, match="only 2 complete run"):
        wg.save_baseline(s, None, "main", runner=fake_jfrconv, last=3)
    with pytest.raises(ConfigError, match="both --run and --last"):
        wg.save_baseline(s, ["20260101-000000"], "main", runner=fake_jfrconv, last=2)
    assert not (wg.baselines_dir(s) / "main").exists()


def test_a_format_1_baseline_still_loads(tmp_path):
    s = settings(tmp_path)
    make_run(tmp_path, "20260101-000000", 1.0)
    path = wg.save_baseline(s, None, "main", runner=fake_jfrconv)
    f = path / wg.BASELINE_FILE
    data = json.loads(f.read_text())
    data.update(format=1, tables=data["tables"][0])
    del data["runs"]
    f.write_text(json.dumps(data))
    b = wg.load("main", wg.baselines_dir(s))
    assert b.runs == ["20260101-000000"] and len(b.tables[("order-service", "cpu")]) == 1
    make_run(tmp_path, "20260101-000100", 1.0, seed=1)
    assert wg.gate(s, "main", "20260101-000100", runner=fake_jfrconv).result.exit_code == 0


def test_noun_of_the_k6_script():
    assert wg.noun_of({"settings": {"k6_script": "scripts/perf/order-flow.js"}}) == "order"
    assert wg.noun_of({}) == "request"
