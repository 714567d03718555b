"""flamekit.analysis.replicas: merging replicas' collapsed stacks and comparing replicas, on a
fixture run directory (manifest + per-replica collapsed files)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flamekit.analysis import replicas as rp
from flamekit.analysis.collapsed import parse_collapsed
from flamekit.errors import ReportError

PRICE = "demo/order/PricingEngine.priceOrder_[j]"
JSON = "demo/order/OrderJson.write_[j]"
ROOT = "java/lang/Thread.run_[j];demo/order/Handler.handle_[j]"


def collapsed(price: int, json_: int, other: int = 0) -> str:
    lines = [f"{ROOT};{PRICE} {price}", f"{ROOT};{JSON} {json_}"]
    if other:
        lines.append(f"{ROOT};java/util/HashMap.get_[j] {other}")
    return "\n".join(lines) + "\n"


def make_run(tmp_path: Path, replicas: list[tuple[int, int, int]], service="order-service",
             event="cpu", load=True, single=False) -> Path:
    run = tmp_path / "20260101-000000"
    caps = []
    for i, (p, j, o) in enumerate(replicas, start=1):
        label = service if single else f"{service}.{i}"
        d = run / label
        d.mkdir(parents=True)
        (d / f"{event}.collapsed").write_text(collapsed(p, j, o))
        caps.append({"service": service, "replica": i, "replicas": 1 if single else len(replicas),
                     "container": f"fk-{service}-{i}", "event": event, "samples": p + j + o,
                     "collapsed": f"{label}/{event}.collapsed", "cgroup_cpu_s": (p + j + o) / 100,
                     "profiler_started": "2026-01-01T00:00:00+00:00",
                     "profiler_stopped": "2026-01-01T00:00:10+00:00", "error": None})
    caps.append({"service": "gateway", "replica": 1, "replicas": 1, "event": event, "samples": 5,
                 "collapsed": "gateway/cpu.collapsed", "error": None})
    manifest = {"stamp": run.name, "captures": caps}
    if load:
        manifest["load"] = {"achieved_tps": 50.0, "iterations": 650}
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def test_sum_collapsed_keeps_raw_frames_and_sums():
    got = rp.sum_collapsed([collapsed(10, 5), collapsed(3, 1, 2), "garbage line\n\n"])
    assert got == {f"{ROOT};{PRICE}": 13, f"{ROOT};{JSON}": 6, f"{ROOT};java/util/HashMap.get_[j]": 2}
    text = rp.format_collapsed(got)
    assert text.splitlines()[0] == f"{ROOT};{PRICE} 13"   # heaviest first, suffixes kept


def test_merge_service_writes_the_service_directory(tmp_path):
    run = make_run(tmp_path, [(700, 300, 0), (650, 330, 20), (720, 280, 0)])
    m = rp.merge_service(run, "order-service", "cpu")
    assert m.collapsed == run / "order-service" / "cpu.collapsed"
    prof = parse_collapsed(m.collapsed)
    assert prof.total == 3000 and m.profile.total == 3000 and m.profile.samples == 3000
    assert prof.stacks[("java.lang.Thread.run", "demo.order.Handler.handle", "demo.order.PricingEngine.priceOrder")] == 2070
    sources = json.loads((run / "order-service" / rp.SOURCES_NAME).read_text())
    assert sources["cpu"]["replicas"] == ["order-service.1", "order-service.2", "order-service.3"]
    assert sources["cpu"]["files"][0] == "../order-service.1/cpu.collapsed"
    assert m.samples_collapsed is None
    assert rp.scaled_services(json.loads((run / "manifest.json").read_text())) == [("order-service", "cpu")]


def test_merge_of_weighted_captures_sums_the_counts_too(tmp_path):
    run = make_run(tmp_path, [(7, 3, 0), (6, 4, 0)], event="alloc")
    man = json.loads((run / "manifest.json").read_text())
    for c in man["captures"]:
        if c["service"] == "order-service":
            d = run / Path(c["collapsed"]).parent
            (d / "alloc.samples.collapsed").write_text(collapsed(1, 1))
            c["samples_collapsed"] = str(Path(c["collapsed"]).parent / "alloc.samples.collapsed")
            c["weight"] = "bytes"
    (run / "manifest.json").write_text(json.dumps(man))
    m = rp.merge_service(run, "order-service", "alloc")
    assert m.samples_collapsed is not None and parse_collapsed(m.samples_collapsed).total == 4
    assert m.profile.weight == "bytes" and m.profile.total == 20


def test_no_replicas_is_a_clear_error(tmp_path):
    run = make_run(tmp_path, [(10, 5, 0)], single=True)
    with pytest.raises(ReportError, match="no cpu captures of replicas"):
        rp.merge_service(run, "order-service", "cpu")
    with pytest.raises(ReportError, match="nothing to compare"):
        rp.compare_replicas(run, "order-service", "cpu")


def test_alike_replicas_are_not_flagged(tmp_path):
    run = make_run(tmp_path, [(700, 300, 0), (690, 300, 10), (710, 290, 0)])
    t = rp.compare_replicas(run, "order-service", "cpu")
    assert t.method == "demo.order.PricingEngine.priceOrder"
    assert t.merged_samples == 3000 and t.merged_share == pytest.approx(2100 / 3000)
    assert [r.label for r in t.rows] == ["order-service.1", "order-service.2", "order-service.3"]
    assert all(r.top_method == t.method for r in t.rows)
    assert t.flagged == []
    r = t.rows[0]
    assert r.top_share == pytest.approx(0.7)
    assert r.top_error.points == pytest.approx(1.96 * (0.7 * 0.3 / 1000) ** 0.5 * 100)
    assert r.others_share == pytest.approx(1400 / 2000)
    # 10 s at 50 TPS = 500 iterations; 10 CPU-seconds over 500 iterations = 20 ms
    assert r.cpu_ms_per_iteration == pytest.approx(20.0)
    md = t.markdown()
    assert "| order-service.1 | fk-order-service-1 | 1,000 |" in md and "differs" not in md


def test_a_different_replica_is_flagged(tmp_path):
    # replica 2 spends 50% in priceOrder, the others 70%: 20 points over 1,000 samples each
    run = make_run(tmp_path, [(700, 300, 0), (500, 500, 0), (700, 300, 0)])
    t = rp.compare_replicas(run, "order-service", "cpu")
    assert [r.label for r in t.flagged] == ["order-service.2"]
    assert "**differs**" in t.markdown()


def test_two_replicas_that_differ_are_both_flagged(tmp_path):
    run = make_run(tmp_path, [(700, 300, 0), (500, 500, 0)])
    assert len(rp.compare_replicas(run, "order-service", "cpu").flagged) == 2


def test_a_small_difference_in_few_samples_is_noise(tmp_path):
    # 70% vs 60% over 50 samples each: inside the sampling error, and said to be uncertain
    run = make_run(tmp_path, [(35, 15, 0), (30, 20, 0)])
    t = rp.compare_replicas(run, "order-service", "cpu")
    assert t.flagged == []
    assert "under 1,000 samples" in t.rows[0].note


def test_own_top_method_differing_is_noted(tmp_path):
    run = make_run(tmp_path, [(700, 300, 0), (700, 300, 0), (200, 800, 0)])
    t = rp.compare_replicas(run, "order-service", "cpu")
    assert t.rows[2].top_method == "demo.order.OrderJson.write"
    assert "own top method" in t.rows[2].note and t.rows[2].flagged


def test_cpu_per_iteration_unknown_without_load(tmp_path):
    run = make_run(tmp_path, [(70, 30, 0), (70, 30, 0)], load=False)
    assert all(r.cpu_ms_per_iteration is None for r in rp.compare_replicas(run, "order-service").rows)


def test_merge_profiles_refuses_mixed_units():
    a = parse_collapsed("a;b 1\n")
    b = parse_collapsed("a;b 1\n", weight="bytes")
    with pytest.raises(ReportError):
        rp.merge_profiles([a, b])
    m = rp.merge_profiles([a, parse_collapsed("a;b 2\na;c 1\n")])
    assert m.total == 4 and m.stacks[("a", "b")] == 3


def test_merge_run_with_jfrconv(tmp_path):
    run = make_run(tmp_path, [(700, 300, 0), (690, 310, 0)])
    jfrconv = Path(__file__).resolve().parents[2] / "docker/profiling/async-profiler/bin/jfrconv"
    if not jfrconv.is_file() or shutil.which("java") is None:
        pytest.skip("no installed async-profiler or no java on the host")
    [(merged, table)] = rp.merge_run(run, jfrconv)
    assert merged.html is not None and merged.html.stat().st_size > 1000
    assert "priceOrder" in merged.html.read_text()
    assert table is not None and table.flagged == []
