"""Validity warnings of a run."""
from __future__ import annotations

import re

import pytest

from flamekit.analysis.validity import engine_note, validity_warnings
from tests.unit.test_analysis_captures import CLEAN_MANIFEST, mutate


def test_clean_manifest_gives_no_warning():
    assert validity_warnings(CLEAN_MANIFEST) == []


@pytest.mark.parametrize("path, value, expected", [
    (("load", "dropped_iterations"), 3, "rate not held: 3 dropped iterations"),
    (("load", "achieved_tps"), 20.0, "rate not held: achieved 20.0 TPS of 25 target"),
    (("load", "error_rate"), 0.02, "error rate 2.00% is over 1%"),
    (("load",), None, "no load figures"),
    (("status",), "failed", "run status is failed"),
    (("settings", "warmup"), 0, "no warm-up"),
    (("captures", 0, "samples"), 400, "order-service cpu: only 400 samples (under ~1,000); "
                                      "shares uncertain by ±4.9 points"),
    (("captures", 0, "error"), "asprof exited 1", "order-service cpu: capture failed: asprof exited 1"),
    (("captures", 0, "jvm", "flags_missing"), ["-XX:+DebugNonSafepoints"],
     "order-service: JVM flags missing: -XX:+DebugNonSafepoints (without -XX:+DebugNonSafepoints"),
    (("captures", 0, "engine"), "ctimer",
     "CPU time sampled by a timer (ctimer), not by perf_events (kernel stacks need "
     "perf_event_paranoid <= 1); it is CPU time, "
     "not wall-clock; use -e wall for off-CPU time"),
    (("captures", 0, "engine"), "itimer", "CPU time sampled by a timer (itimer)"),
    (("captures",), [], "no captures recorded"),
])
def test_each_validity_warning_triggers(path, value, expected):
    warnings = validity_warnings(mutate(path, value))
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(expected), warnings


@pytest.mark.parametrize("path, value", [
    (("load", "achieved_tps"), 23.75),   # exactly 95 % of 25: held
    (("load", "error_rate"), 0.01),      # exactly 1 %: not over
    (("captures", 0, "samples"), 1000),  # exactly the threshold
    (("captures", 0, "engine"), "cpu"),
])
def test_boundaries_do_not_warn(path, value):
    assert validity_warnings(mutate(path, value)) == []


def test_status_error_text_is_included_and_partial_manifests_do_not_crash():
    m = mutate(("status",), "failed")
    m["error"] = "k6 exited 99"
    assert "k6 exited 99" in validity_warnings(m)[0]
    assert validity_warnings(None)  # says something, does not crash
    sparse = {"status": None, "load": {"achieved_tps": None, "target_tps": None},
              "settings": None, "captures": [None, {"service": None, "jvm": None, "samples": None,
                                                    "engine": "perf_events"}]}
    assert validity_warnings(sparse) == []


def test_ctimer_is_never_called_wall_clock():
    m = mutate(("captures", 0, "engine"), "ctimer")
    text = " ".join(validity_warnings(m)) + engine_note("ctimer") + engine_note("itimer")
    assert "wall-clock" in text
    assert all(text[max(0, i - 4):i] == "not " for i in (m.start() for m in re.finditer("wall-clock", text)))


def test_failed_checks_are_a_validity_warning():
    base = {"status": "ok", "settings": {"warmup": 5},
            "load": {"target_tps": 25, "achieved_tps": 25, "dropped_iterations": 0, "error_rate": 0.0}}
    quiet = [w for w in validity_warnings({**base, "load": {**base["load"], "checks_failed_rate": 0.0}})
             if "checks failed" in w]
    assert quiet == []
    loud = validity_warnings({**base, "load": {**base["load"], "checks_failed_rate": 0.2}})
    assert any("20.00% of the k6 checks failed" in w for w in loud)


def test_a_perf_events_profile_without_kernel_frames_is_called_user_mode_only():
    from flamekit.analysis.events import user_mode_only
    assert "user mode only" in engine_note("perf_events", kernel_frames=False)
    assert "kernel stacks included" in engine_note("perf_events", kernel_frames=True)
    assert "kernel stacks included" in engine_note("perf_events")  # not recorded: as before
    assert user_mode_only({"engine": "perf_events", "kernel_frames": False})
    assert not user_mode_only({"engine": "perf_events"})
    assert not user_mode_only({"engine": "ctimer", "kernel_frames": False})
