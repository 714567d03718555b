"""bench/accuracy.py's ground-truth comparison: counter readings -> window growth -> figures."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import accuracy  # noqa: E402


def reading(t: float, **vals: float) -> tuple[float, dict[str, float]]:
    return t, {k: float(v) for k, v in vals.items()}


def test_flatten_reading_takes_the_jvm_stamp_and_every_counter():
    reply = {"service": "order-service", "epochMicros": 1_700_000_000_500_000, "uptimeMillis": 9000,
             "processCpuNanos": 5_000_000_000, "allocatedBytes": 123,
             "counters": {"pricingCalls": 10, "pricingCpuNanos": 80_000_000}}
    t, vals = accuracy.flatten_reading(reply)
    assert t == pytest.approx(1_700_000_000.5)
    assert vals == {"processCpuNanos": 5e9, "allocatedBytes": 123.0, "uptimeMillis": 9000.0,
                    "pricingCalls": 10.0, "pricingCpuNanos": 8e7}
    assert accuracy.flatten_reading({"error": "no route"}) is None


def test_interpolation_at_the_window_edges():
    rs = [reading(100.0, c=0), reading(101.0, c=10), reading(102.0, c=30)]
    assert accuracy.interpolate(rs, 100.5, "c") == pytest.approx(5)
    assert accuracy.interpolate(rs, 101.5, "c") == pytest.approx(20)
    # outside the readings: clamped within the slack, None beyond it
    assert accuracy.interpolate(rs, 103.0, "c") == pytest.approx(30)
    assert accuracy.interpolate(rs, 110.0, "c") is None
    assert accuracy.interpolate(rs, 101.0, "missing") is None
    assert accuracy.window_deltas(rs, 100.5, 101.5) == {"c": pytest.approx(15)}


def test_cpu_ground_truth_and_flamekit_estimate():
    d = {"pricingCpuNanos": 6e9, "pricingCalls": 750.0, "processCpuNanos": 8e9}
    gt = accuracy.ground_truth("cpu", d, 30.0, 9.0)
    # the share is of the container's cgroup CPU (9 s) as the report states it; of the process's too
    assert gt["share"] == pytest.approx(6 / 9) and gt["share_of_process_cpu"] == pytest.approx(0.75)
    assert gt["share_of_cgroup_cpu"] == pytest.approx(6 / 9)
    assert accuracy.ground_truth("cpu", d, 30.0, None)["share"] == pytest.approx(0.75)
    assert gt["per_call"] == pytest.approx(8e6)
    cap = SimpleNamespace(interval=None, samples=800, weight_total=None)
    fk = accuracy.flamekit_estimate("cpu", {"total_share": 0.7, "self_share": 0.69}, cap, gt["calls"], 9.0)
    # 800 samples x 10 ms = 8 s sampled; 70 % of it in priceOrder = 5.6 s over 750 calls, of 9 s cgroup CPU
    assert fk["cpu_s"] == pytest.approx(8.0) and fk["value"] == pytest.approx(5.6e9)
    assert fk["per_call"] == pytest.approx(5.6e9 / 750) and fk["sample_share"] == 0.7
    assert fk["share"] == pytest.approx(5.6 / 9)


def test_lock_alloc_and_wall_ground_truth():
    lock = accuracy.ground_truth("lock", {"reserveLockWaitNanos": 3e9, "reserveCalls": 100.0,
                                          "releaseLockWaitNanos": 1e9}, 30.0, None)
    assert lock["share"] == pytest.approx(0.75) and lock["per_call"] == pytest.approx(3e7)
    alloc = accuracy.ground_truth("alloc", {"orderJsonAllocatedBytes": 84.0, "orderJsonCalls": 2.0,
                                            "allocatedBytes": 100.0}, 30.0, None)
    assert alloc["share"] == pytest.approx(0.84) and alloc["per_call"] == pytest.approx(42)
    cap = SimpleNamespace(interval=None, samples=50, weight_total=1000.0)
    fk = accuracy.flamekit_estimate("alloc", {"total_share": 0.6}, cap, 2.0)
    assert fk["value"] == pytest.approx(600) and fk["per_call"] == pytest.approx(300)
    wall = accuracy.ground_truth("wall", {"authorizeSleepNanos": 4e9, "authorizeCalls": 100.0}, 30.0, None)
    assert wall["share"] is None and wall["per_call"] == pytest.approx(4e7)  # an image without handlerNanos
    # a counter the service does not have (an old image): no figures, no exception
    old = accuracy.ground_truth("cpu", {"processCpuNanos": 1e9}, 30.0, None)
    assert old["value"] is None and old["per_call"] is None and old["share"] is None


@pytest.mark.parametrize("text,ns", [("10ms", 10_000_000), ("500us", 500_000), ("1s", 1_000_000_000),
                                     ("250000", 250_000), (None, 10_000_000), ("", 10_000_000)])
def test_interval_text(text, ns):
    assert accuracy.parse_interval_ns(text) == ns


def test_manifest_times_are_epoch_seconds():
    assert accuracy.iso_epoch("2026-12-01T10:00:00.500+00:00") == pytest.approx(1796119200.5)
    assert accuracy.iso_epoch(None) is None and accuracy.iso_epoch("not a time") is None


def test_flamekit_wall_estimate_is_of_the_request_threads(tmp_path):
    t = "[payment-service-http-1 tid=10];java/lang/Thread.run"
    (tmp_path / "wall.threads.collapsed").write_text(
        f"{t};demo/common/HttpIo.dispatch;demo/payment/CardAuthorizer.authorize;java/lang/Thread.sleep 80\n"
        f"{t};demo/common/HttpIo.dispatch;demo/payment/Main.route 20\n"
        f"{t};java/util/concurrent/LinkedBlockingQueue.take 300\n")  # idle between requests: not request time
    cap = SimpleNamespace(interval=None, samples=400, weight_total=None, app_packages=None,
                          file=lambda key: tmp_path / "wall.threads.collapsed" if key == "threads_collapsed" else None)
    fk = accuracy.flamekit_estimate("wall", {"total_share": 0.2}, cap, 40.0)
    assert fk["share"] == pytest.approx(0.8) and fk["request_samples"] == 100
    assert fk["value"] == pytest.approx(0.8 * 100 * 20e6) and fk["per_call"] == pytest.approx(0.8 * 100 * 20e6 / 40)
