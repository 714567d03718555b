"""Comparing two runs."""
from __future__ import annotations

import json

import pytest

from flamekit.analysis.compare import compare_runs
from flamekit.render.markdown import comparison_markdown
from flamekit.runs import read_manifest
from flamekit.errors import ReportError
from tests.unit.test_analysis_captures import STAMP_A, STAMP_B, THREAD, weighted_run, two_runs


def test_compare_runs_finds_hotter_and_cooler(tmp_path):
    a, b = two_runs(tmp_path)
    cmp = compare_runs(a, b)
    assert (cmp.stamp_a, cmp.stamp_b) == (STAMP_A, STAMP_B)
    [cap] = cmp.captures
    assert (cap.service, cap.event, cap.samples_a, cap.samples_b) == ("order-service", "cpu", 1000, 1000)
    cooler = cap.cooler_total[0]
    assert cooler.name == "demo.order.PricingEngine.priceOrder"
    assert cooler.total_delta == pytest.approx(-0.30) and cooler.self_delta == pytest.approx(-0.30)
    assert cooler.significant
    assert cap.cooler_self[0].name == "demo.order.PricingEngine.priceOrder"
    hot_total = {d.name: d.total_delta for d in cap.hotter_total}
    assert hot_total["demo.order.Repo.save"] == pytest.approx(0.30)
    assert hot_total["java.util.HashMap.put"] == pytest.approx(0.18)
    assert cap.hotter_self[0].name == "java.util.HashMap.put"
    assert "demo.order.Repo.save" not in {d.name for d in cap.hotter_self}  # no self samples
    assert "java.lang.Thread.run" not in hot_total  # 100 % in both
    load = {d.metric: d for d in cmp.load}
    assert load["achieved TPS"].delta == pytest.approx(-0.4)
    assert load["p95 ms"].delta == pytest.approx(-10.2)
    assert load["error rate"].delta == pytest.approx(0.004)

    md = comparison_markdown(cmp)
    assert f"# Run comparison: {STAMP_A} → {STAMP_B}" in md
    assert "| `demo.order.PricingEngine.priceOrder` | 63.2%" not in md
    assert "| `demo.order.PricingEngine.priceOrder` | 60.0% | 30.0% | -30.0 | yes | -30.0 |" in md
    assert "| `demo.order.Repo.save` | 40.0% | 70.0% | +30.0 | yes | +0.0 |" in md
    assert "| p95 ms | 40.2 | 30.0 | -10.2 (-25%) |" in md
    assert "| error rate | 0.00% | 0.40% | +0.40 points |" in md


def test_compare_accepts_stamps_and_reports_unshared_captures(tmp_path):
    a, b = two_runs(tmp_path)
    (b / "payment-service").mkdir()
    (b / "payment-service" / "cpu.collapsed").write_text("x;y 5\n")
    cmp = compare_runs(STAMP_A, STAMP_B[:8], runs_root=tmp_path / "docs/perf/runs")
    assert cmp.run_a == a and cmp.run_b == b
    assert cmp.only_in_b == [("payment-service", "cpu")] and cmp.only_in_a == []
    assert "only in B: payment-service cpu" in comparison_markdown(cmp)
    with pytest.raises(ReportError, match="no run directory"):
        compare_runs(STAMP_A, "20990101-000000", runs_root=tmp_path / "docs/perf/runs")


def test_compare_weighted_runs_and_mixed_runs(tmp_path):
    a = weighted_run(tmp_path, STAMP_A)
    b = weighted_run(tmp_path, STAMP_B)
    (b / "order-service" / "alloc.collapsed").write_text(
        f"{THREAD};demo/order/OrderJson.write_[j];byte[]_[i] 300000000\n"
        f"{THREAD};demo/order/Repo.save_[j];java.lang.String_[i] 900000000\n")
    cmp = compare_runs(a, b)
    cap = next(c for c in cmp.captures if c.event == "alloc")
    assert cap.weight == "bytes" and (cap.samples_a, cap.samples_b) == (400, 400)
    assert cap.profile_a.weighted and cap.profile_b.weighted
    d = {x.name: x for x in cap.cooler_total}["demo.order.OrderJson.write"]
    assert d.total_delta == pytest.approx(-0.5)  # 75 % -> 25 % of bytes
    assert "Shares are of allocated bytes in both runs." in comparison_markdown(cmp)
    # an older run of counts against a weighted run: both sides' sample counts are compared
    (a / "order-service" / "alloc.collapsed").write_text(
        (a / "order-service" / "alloc.samples.collapsed").read_text())
    (a / "order-service" / "alloc.samples.collapsed").unlink()
    m = read_manifest(a)
    for c in m["captures"]:
        c.pop("weight", None)
        c.pop("weight_total", None)
    (a / "manifest.json").write_text(json.dumps(m))
    cap = next(c for c in compare_runs(a, b).captures if c.event == "alloc")
    assert cap.weight == "samples"
    assert not cap.profile_a.weighted and not cap.profile_b.weighted
    assert cap.profile_b.total == 400
    assert not cap.cooler_total or "demo.order.OrderJson.write" not in {x.name for x in cap.cooler_total}
