"""The benchmarks' pure helpers (bench/common.py, bench/accuracy.py): no Docker, no k6."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import accuracy  # noqa: E402
import common  # noqa: E402


# ----------------------------------------------------------------- markdown sections
def test_replace_section_only_touches_its_own_part():
    text = common.new_document()
    a = common.replace_section(text, "accuracy", "## A\n\nfirst")
    b = common.replace_section(a, "overhead", "## O\n\nsecond")
    c = common.replace_section(b, "accuracy", "## A\n\nthird")
    assert "first" not in c and "third" in c and "second" in c
    assert c.count("<!-- bench:accuracy -->") == 1 and c.count("<!-- /bench:accuracy -->") == 1
    # the other sections and the header are byte-identical
    assert c.split("<!-- bench:accuracy -->")[0] == b.split("<!-- bench:accuracy -->")[0]
    assert c.split("<!-- /bench:accuracy -->")[1] == b.split("<!-- /bench:accuracy -->")[1]


def test_replace_section_appends_when_markers_are_missing_or_broken():
    out = common.replace_section("# title\n", "harness", "body")
    assert out.endswith("<!-- bench:harness -->\nbody\n<!-- /bench:harness -->\n")
    broken = "x\n<!-- bench:harness -->\nold, no end marker\n"
    out = common.replace_section(broken, "harness", "new")
    assert out.count("<!-- bench:harness -->") == 1 and "new" in out


def test_new_document_has_every_section_in_order():
    text = common.new_document()
    pos = [text.index(f"<!-- bench:{s} -->") for s in common.SECTIONS]
    assert pos == sorted(pos)


def test_write_section_creates_and_updates(tmp_path):
    path = tmp_path / "deep" / "benchmarks.md"
    common.write_section(path, "load_accuracy", "first-body")
    common.write_section(path, "load_accuracy", "second-body")
    text = path.read_text()
    assert "second-body" in text and "first-body" not in text and text.startswith("# flamekit benchmarks")
    assert not list(path.parent.glob("*.tmp*"))


def test_md_table_escapes_pipes():
    t = common.md_table(["a", "b"], [["x|y", 1]])
    assert "x\\|y" in t and t.splitlines()[1] == "| --- | ---: |"


# ----------------------------------------------------------------- statistics and formatting
def test_summary_and_spread():
    s = common.summary([1.0, 2.0, 3.0, None, float("nan")])
    assert s["n"] == 3 and s["mean"] == 2.0 and s["min"] == 1.0 and s["max"] == 3.0
    assert s["stdev"] == pytest.approx(1.0) and s["cv"] == pytest.approx(0.5)
    assert common.summary([])["mean"] is None
    assert common.fmt_spread(s, 1, " s") == "2.0 s (1.0 s-3.0 s, cv 50%, n=3)"
    assert common.fmt_spread(common.summary([0.5]), pct=True) == "50.0% (n=1)"
    assert common.fmt_spread(common.summary([])) == "n/a"
    assert common.ratio(2, 4) == 0.5 and common.ratio(1, 0) is None and common.ratio(None, 1) is None


def test_hms():
    assert common.hms(5) == "5 s" and common.hms(65) == "1 min 05 s" and common.hms(3700) == "1 h 01 min"


# ----------------------------------------------------------------- cgroup and CPU sampling
def test_parse_cpu_stat_v2():
    assert common.parse_cpu_stat("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n") == 1_500_000
    assert common.parse_cpu_stat("nothing here") is None


def test_container_dir_names():
    cid = "a" * 64
    assert common._CONTAINER_DIR_RE.match(cid).group(1) == cid
    assert common._CONTAINER_DIR_RE.match(f"docker-{cid}.scope").group(1) == cid
    assert common._CONTAINER_DIR_RE.match("init.scope") is None


class _FakeCpu:
    def __init__(self):
        self.start = time.monotonic()

    def read_ns(self):  # one core busy: 1e9 ns per second
        return int((time.monotonic() - self.start) * 1e9)


def test_cpu_sampler_interpolates_windows():
    with common.CpuSampler(_FakeCpu(), period=0.02) as smp:
        time.sleep(0.3)
    t0, t1 = smp.samples[0][0], smp.samples[-1][0]
    assert smp.seconds(t0, t1) == pytest.approx(t1 - t0, rel=0.05)
    mid = (t0 + t1) / 2
    assert smp.seconds(mid, mid + 0.1) == pytest.approx(0.1, rel=0.2)
    assert smp.seconds(t0 - 10, t1) is None  # outside the sampled span


# ----------------------------------------------------------------- inv output and load checks
def test_inv_result_lines_and_run_dir():
    r = common.InvResult(["x"], 0, "a\nprofiling order-service for 5s\nrun directory: /tmp/r/1\n", "",
                         [(0.5, "a"), (2.0, "profiling order-service for 5s"), (9.0, "run directory: /tmp/r/1")],
                         9.5, 0.0)
    assert r.first_line_time(r"^profiling ") == 2.0 and r.first_line_time("nope") is None
    assert r.run_dir() == Path("/tmp/r/1")


def test_run_command_times_lines_and_measures_memory(tmp_path):
    code = "import time; print('one', flush=True); time.sleep(0.7); x = bytearray(30 * 2**20); print('two')"
    res = common.run_command([sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert res.ok and [x for _, x in res.lines] == ["one", "two"]
    assert res.lines[1][0] - res.lines[0][0] > 0.5
    assert res.maxrss_kb and res.maxrss_kb > 30 * 1024
    assert res.cpu_s is not None


def test_run_command_stops_a_child_that_runs_too_long(tmp_path):
    with pytest.raises(TimeoutError):
        common.run_command([sys.executable, "-c", "import time; time.sleep(60)"], env={}, cwd=tmp_path, timeout=1)


def test_load_issues():
    assert common.load_issues({"dropped_iterations": 0, "error_rate": 0.0, "outcomes": {"confirmed": 9}}) == ([], False)
    why, severe = common.load_issues({"dropped_iterations": 3, "error_rate": 0.0})
    assert not severe and "3 dropped" in why[0]
    why, severe = common.load_issues({"dropped_iterations": 0, "error_rate": 0.33,
                                      "outcomes": {"rejected": 151}})
    assert severe and any("rejected" in w for w in why)
    assert common.load_issues(None)[1]


def test_stack_env_pins_costs_and_drops_inherited_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("PRICING_COST", "7")
    monkeypatch.setenv("INVOKE_FLAMEKIT_TPS", "99")
    monkeypatch.setenv("K6_VUS", "3")
    st = common.BenchStack("fkbenchx", 1234, tmp_path)
    env = st.env()
    assert env["PRICING_COST"] == "1" and "INVOKE_FLAMEKIT_TPS" not in env and "K6_VUS" not in env
    assert env["INVOKE_FLAMEKIT_PROJECT_NAME"] == "fkbenchx" and env["FLAMEKIT_GATEWAY_PORT"] == "1234"
    assert env["INVOKE_FLAMEKIT_RUNS_DIR"] == str(tmp_path / "runs")
    st.costs["PRICING_COST"] = "2"
    assert st.env(project="other", port=5)["INVOKE_FLAMEKIT_PROJECT_NAME"] == "other"
    assert st.env()["PRICING_COST"] == "2"


def test_noise_line_says_when_the_machine_was_shared():
    n = {"host_busy_cores": 1.5, "host_busy_cores_max": 2.0, "other_containers_cores": 0.6,
         "other_containers_cores_max": 1.1, "own_containers_cores": 0.3, "load1": 4.0, "load1_max": 6.0,
         "cores": 2, "other_containers_start": 8, "other_containers_end": 4, "shared": True}
    assert common.noise_line(n).startswith("**The machine was shared")
    assert "not visibly shared" in common.noise_line({**n, "shared": False})


# ----------------------------------------------------------------- designed shares
def test_designed_shares_need_the_readme_to_still_say_them():
    text = " ".join(f"intro {p.designed.quote} more" for p in accuracy.PLANTED)
    d = accuracy.designed_shares(text)
    assert d["cpu"]["share"] == pytest.approx((0.63 + 0.74) / 2) and d["cpu"]["compare"] == "share"
    assert d["alloc"]["compare"] == "total" and d["wall"]["compare"] == "of_app"
    # a quote broken over two lines still counts; a changed sentence does not
    wrapped = text.replace("(two runs)", "(two\n   runs)")
    assert accuracy.designed_shares(wrapped)["cpu"]["share"] is not None
    changed = text.replace("84 % (ThreadMXBean)", "70 % (ThreadMXBean)")
    gone = accuracy.designed_shares(changed)["alloc"]
    assert gone["share"] is None and "no longer says" in gone["why"]
    missing = accuracy.designed_shares(None)
    assert all(v["share"] is None and "missing" in v["why"] for v in missing.values())


def test_predicted_share_when_the_pricing_cost_doubles():
    assert accuracy.predicted_doubled(0.6) == pytest.approx(0.75)
    assert accuracy.predicted_doubled(None) is None


def test_ground_truth_wall_share_is_of_the_request_handling_time():
    d = {"authorizeSleepNanos": 8e9, "authorizeCalls": 200, "handlerNanos": 10e9}
    gt = accuracy.ground_truth("wall", d, 30.0, None)
    assert gt["share"] == 0.8 and gt["per_call"] == 4e7 and gt["handler_s"] == 10.0


def test_ground_truth_cpu_share_is_of_the_cgroup_cpu_when_known():
    d = {"pricingCpuNanos": 6e9, "pricingCalls": 750, "processCpuNanos": 8e9}
    assert accuracy.ground_truth("cpu", d, 30.0, 10.0)["share"] == 0.6   # of the container's 10 s
    assert accuracy.ground_truth("cpu", d, 30.0, None)["share"] == 0.75  # else of the process CPU
