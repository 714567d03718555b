"""The gate's statistics: block resampling, the bootstrap estimate, Benjamini-Hochberg."""
from __future__ import annotations

import math
import random
import statistics

import pytest

from flamekit.analysis.gate_stats import (TOTAL, SliceTable, benjamini_hochberg, block_counts, choose_slices,
                                          estimate, resample_plan)


def table(values, other, seconds=2.0, tps=25.0, scale=10.0, name="demo.A.hot"):
    k = len(values)
    return SliceTable("svc", "cpu", "CPU ms", scale, tps, int(sum(values) + sum(other)), [seconds] * k,
                      [float(v + o) for v, o in zip(values, other)],
                      {name: [float(v) for v in values], "demo.B.cold": [float(o) for o in other]})


def noisy(mean, k, rng, sd=0.08):
    return [max(0.0, rng.gauss(mean, mean * sd)) for _ in range(k)]


def test_block_counts_draw_exactly_k_slices_in_adjacent_blocks():
    rng = random.Random(1)
    for k, block in ((10, 2), (7, 3), (6, 1), (3, 5)):
        for _ in range(50):
            c = block_counts(k, block, rng)
            assert len(c) == k and sum(c) == k and all(x >= 0 for x in c)


def test_resample_plan_is_reproducible_with_a_seed():
    assert resample_plan(10, 2, 20, random.Random(7)) == resample_plan(10, 2, 20, random.Random(7))


def test_benjamini_hochberg_matches_the_textbook_example():
    p = [0.01, 0.04, 0.03, 0.005]
    q = benjamini_hochberg(p)
    # sorted: 0.005*4/1=0.02, 0.01*4/2=0.02, 0.03*4/3=0.04, 0.04*4/4=0.04
    assert q == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert benjamini_hochberg([]) == []
    assert benjamini_hochberg([0.9, 1.0]) == pytest.approx([1.0, 1.0])


def test_identical_runs_give_ratio_one_and_no_significance():
    rng = random.Random(3)
    a = table(noisy(100, 10, rng), noisy(100, 10, rng))
    plan = resample_plan(10, 2, 1000, rng)
    e = estimate(a, a, "demo.A.hot", plan, resample_plan(10, 2, 1000, rng))
    assert e.ratio == pytest.approx(1.0)
    assert e.ratio_lo < 1.0 < e.ratio_hi
    assert e.p_cost > 0.5 and e.p_share > 0.5


def test_a_doubled_method_is_found_with_its_interval():
    rng = random.Random(5)
    a = table(noisy(60, 10, rng), noisy(100, 10, rng))
    b = table(noisy(120, 10, rng), noisy(100, 10, rng))
    e = estimate(a, b, "demo.A.hot", resample_plan(10, 2, 2000, rng), resample_plan(10, 2, 2000, rng))
    assert 1.8 < e.ratio < 2.2
    assert 1.0 < e.ratio_lo < e.ratio < e.ratio_hi
    assert e.p_cost < 1e-6
    assert e.cost_a == pytest.approx(sum(a.methods["demo.A.hot"]) * 10 / (25 * 20))
    assert e.share_b > e.share_a and e.p_share < 1e-3
    # the other method's cost is unchanged even though its share fell
    o = estimate(a, b, "demo.B.cold", resample_plan(10, 2, 2000, rng), resample_plan(10, 2, 2000, rng))
    assert 0.9 < o.ratio < 1.1 and o.share_delta < 0


def test_cost_is_per_request_so_a_higher_rate_with_the_same_work_per_request_is_no_change():
    rng = random.Random(9)
    va = noisy(50, 8, rng)
    a = table(va, va, tps=25)
    b = table([v * 2 for v in va], va, tps=50)  # twice the rate, twice the samples of the method
    e = estimate(a, b, "demo.A.hot", resample_plan(8, 2, 500, rng), resample_plan(8, 2, 500, rng))
    assert e.ratio == pytest.approx(1.0, rel=0.02)


def test_a_method_absent_from_the_baseline_has_a_finite_ratio():
    rng = random.Random(2)
    a = table([0.0] * 8, noisy(100, 8, rng))
    b = table(noisy(40, 8, rng), noisy(100, 8, rng))
    e = estimate(a, b, "demo.A.hot", resample_plan(8, 2, 500, rng), resample_plan(8, 2, 500, rng))
    assert math.isfinite(e.ratio) and e.ratio > 10 and e.p_share < 0.01


def test_total_series_and_round_trip():
    a = table([1, 2, 3], [4, 5, 6])
    assert a.series(TOTAL) == [5, 7, 9]
    assert a.series("absent") == [0.0, 0.0, 0.0]
    assert SliceTable.from_dict(a.to_dict()) == a


@pytest.mark.parametrize("window,wanted,k", [(60, 10, 10), (15, 10, 10), (9, 10, 6), (200, 20, 12), (60, 3, 6)])
def test_choose_slices_stays_within_6_and_12(window, wanted, k):
    assert choose_slices(window, wanted) == k


def test_slice_bounds_and_jfrconv_arguments():
    from flamekit.capture import convert
    b = convert.slice_bounds(20.0, 10)
    assert b[0] == (0, 2000) and b[8] == (16000, 18000) and b[9][0] == 18000 and b[9][1] > 3_000_000
    assert convert.slice_args("jfrconv", "alloc", "x.jfr", 0, 2000, "o") == [
        "jfrconv", "--alloc", "--total", "--from", "0", "--to", "2000", "-o", "collapsed", "x.jfr", "o"]


def test_pool_of_one_run_is_that_run():
    from flamekit.analysis.gate_stats import pool
    assert pool([0.5], [0.01]) == (0.5, 0.01, 0.0)


def test_pool_finds_no_between_run_spread_when_runs_agree_within_their_noise():
    from flamekit.analysis.gate_stats import pool
    value, var, tau2 = pool([1.00, 1.02, 0.99], [0.01, 0.01, 0.01])
    assert tau2 == 0.0
    assert value == pytest.approx((1.00 + 1.02 + 0.99) / 3)
    assert var == pytest.approx(0.01 / 3)


def test_pool_measures_the_spread_between_runs_beyond_their_own_noise():
    from flamekit.analysis.gate_stats import pool
    # three runs 0.5 apart, each known to +-0.1: most of the spread is between runs
    value, var, tau2 = pool([0.0, 0.5, 1.0], [0.01, 0.01, 0.01])
    assert value == pytest.approx(0.5)
    sample_var = statistics.variance([0.0, 0.5, 1.0])
    assert tau2 == pytest.approx(sample_var - 0.01)
    assert var == pytest.approx((0.01 + tau2) / 3)


def test_a_method_that_moves_between_baseline_runs_is_not_significant_within_that_range():
    rng = random.Random(11)
    bases = [table(noisy(100, 10, rng), noisy(100 * f, 10, rng)) for f in (0.4, 1.0, 1.6)]
    b = table(noisy(100, 10, rng), noisy(150, 10, rng))
    plans = [resample_plan(10, 2, 1000, rng) for _ in bases]
    plan_b = resample_plan(10, 2, 1000, rng)
    pooled = estimate(bases, b, "demo.B.cold", plans, plan_b)
    alone = estimate(bases[1], b, "demo.B.cold", plans[1], plan_b)
    assert alone.p_cost < 1e-6                 # one run: +50 % looks certain
    assert pooled.p_cost > 0.05 and pooled.runs_a == 3 and pooled.tau_log > 0.3
    assert pooled.ratio_lo < 1.0 < pooled.ratio_hi
    # the steady method keeps its power: doubled against the same three runs
    b2 = table(noisy(200, 10, rng), noisy(100, 10, rng))
    assert estimate(bases, b2, "demo.A.hot", plans, plan_b).p_cost < 1e-6


def test_dispersion_is_the_common_run_to_run_excess_and_ignores_one_wild_method():
    from flamekit.analysis.gate_stats import _chi2_median, dispersion
    assert dispersion([[(1.0, 0.01)]]) == 1.0          # one baseline run: nothing to learn from
    assert dispersion([]) == 1.0
    steady = [(0.0, 0.01), (0.1, 0.01), (0.2, 0.01)]    # Q = 2 (0.1^2 / 0.01) = 2
    wild = [(0.0, 0.01), (2.0, 0.01), (4.0, 0.01)]      # Q = 800
    c = dispersion([steady, steady, wild])
    assert c == pytest.approx(2.0 / _chi2_median(2))    # the wild method does not set it
    assert dispersion([steady, wild]) == pytest.approx(2.0 / _chi2_median(2))
    tight = [(0.0, 0.01), (0.01, 0.01), (0.02, 0.01)]
    assert dispersion([tight, tight]) == 1.0           # never below the bootstrap's own variance


def test_chi2_median_is_close_to_the_exact_values():
    from flamekit.analysis.gate_stats import _chi2_median
    # exact medians: df 2 -> 2 ln 2; df 4 -> 3.357; df 10 -> 9.342
    assert _chi2_median(2) == pytest.approx(2 * math.log(2), rel=0.015)
    assert _chi2_median(4) == pytest.approx(3.357, rel=0.01)
    assert _chi2_median(10) == pytest.approx(9.342, rel=0.01)


def test_a_common_overdispersion_keeps_a_b_from_the_same_process_at_the_nominal_rate():
    """Every method varies between runs more than its bootstrap variance (as the demo's alloc
    figures do). Against 3-run baselines, per-method tau^2 alone (2 degrees of freedom) calls
    about 15 % of same-process runs significant at 5 %; with the service-event's dispersion,
    about the nominal 5 %. A doubled method stays significant."""
    from flamekit.analysis.gate_stats import RunFigure, combine, dispersion
    rng = random.Random(0)
    v = 0.03 ** 2

    def run(level):
        x = level + rng.gauss(0, 2 * 0.03) + rng.gauss(0, 0.03)   # between-run sd 2 x the bootstrap's
        return RunFigure(cost=math.exp(x), log_cost=x, var_log=v, share=0.1, var_share=1e-4)

    plain = wide = n = 0
    for _ in range(40):                       # 40 service-events of 5 methods
        levels = [rng.uniform(0, 3) for _ in range(5)]
        base = [[run(lv) for _ in range(3)] for lv in levels]
        c = dispersion([[(f.log_cost, f.var_log) for f in fa] for fa in base])
        for fa, lv in zip(base, levels):
            b = run(lv)
            plain += combine(fa, b, 0.95, 1.0).p_cost < 0.05
            wide += combine(fa, b, 0.95, c).p_cost < 0.05
            n += 1
    assert wide / n <= 0.10 < plain / n
    doubled = combine(base[0], run(levels[0] + math.log(2)), 0.95, c)
    assert doubled.p_cost < 1e-4 and doubled.dispersion == c


def test_weighted_benjamini_hochberg_spends_the_rate_on_heavy_tests():
    p = [0.004, 0.03, 0.2, 0.5, 0.8, 0.9]
    plain = benjamini_hochberg(p)
    # the first test weighs (a method of 75 % of its service-event) as much as the rest together
    weighted = benjamini_hochberg(p, [5.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    assert weighted[0] < plain[0] <= 0.05 and weighted[1] > plain[1]
    # equal weights are plain BH, whatever their scale
    assert benjamini_hochberg(p, [3.0] * 6) == pytest.approx(plain)
    with pytest.raises(ValueError):
        benjamini_hochberg(p, [1.0, 0.0, 1.0, 1.0, 1.0, 1.0])


def test_repeats_under_test_are_pooled_and_narrow_the_interval():
    """Runs vary between fresh JVMs (tau); two repeats of the build under test average that
    out: the same +20 % is found with a narrower interval, and one run's outlier moves a pooled
    pair half as far."""
    from flamekit.analysis.gate_stats import RunFigure, combine
    rng = random.Random(5)
    v = 0.02 ** 2

    def run(level, shift=0.0):
        x = level + shift + rng.gauss(0, 0.06)      # between-run sd 0.06, bootstrap sd 0.02
        return RunFigure(cost=math.exp(x), log_cost=x, var_log=v, share=0.5, var_share=1e-4)

    base = [run(2.0) for _ in range(5)]
    one = combine(base, run(2.0, math.log(1.2)))
    b1, b2 = run(2.0, math.log(1.2)), run(2.0, math.log(1.2))
    two = combine(base, [b1, b2])
    assert two.runs_b == 2 and one.runs_b == 1
    width = lambda e: math.log(e.ratio_hi) - math.log(e.ratio_lo)  # noqa: E731
    assert width(two) < 0.85 * width(one)
    # the pooled ratio is the geometric mean of the two (equal variances: equal weights)
    a = combine(base, b1)
    b = combine(base, b2)
    assert two.ratio == pytest.approx(math.sqrt(a.ratio * b.ratio))
    assert two.cost_b == pytest.approx((b1.cost + b2.cost) / 2)
    # one run is the former comparison exactly
    assert combine(base, [b1]) == a
