"""The probes' verdict rules as pure functions on constructed measurements: fixed costs, noisy
repeats, too few points, untrained models, seeds that disagree. Each verdict must be
inconclusive whenever the numbers cannot decide, and decide when they can."""

from __future__ import annotations

import math

import pytest

from hw2cli.probe.attention_cost import AttentionCostResult, CostPoint, _verdicts, layer_ops, quadratic_slope
from hw2cli.probe.common import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    PARTLY,
    band,
    combine,
    compared,
    loglog_fit,
    memory_growth,
    time_growth,
)
from hw2cli.probe.heads import HeadsResult, HeadsRow, _diversity_verdict, _loss_verdict
from hw2cli.probe.positions import PermutationRow, PositionsResult, PositionsTraining
from hw2cli.probe.positions import _verdicts as positions_verdicts
from hw2cli.probe.softmax_scale import ScaleRow, ScaleTraining, SoftmaxScaleResult
from hw2cli.probe.softmax_scale import _verdicts as softmax_verdicts

NS = [1024, 2048, 4096]
QUADRATIC_MODEL = 1.9  # the slope quadratic attention would show at these sizes


def _times(power: float, ns=NS, fixed: float = 0.0, scale: float = 1e-9) -> list[float]:
    return [fixed + scale * n**power for n in ns]


# ----------------------------------------------------------------------------- fits


def test_the_slope_error_is_the_worst_case_of_the_spreads():
    # two points a factor 4 apart: the slope moves by log(1.1)/log(4) when either end is 10% off
    slope, error = loglog_fit([1, 4], [1, 16], [0.1, 0.1])
    assert slope == pytest.approx(2.0)
    assert error == pytest.approx(2 * math.log(1.1) / math.log(4))
    assert loglog_fit([8], [1.0]) == (None, math.inf)


def test_the_operation_count_of_quadratic_attention_by_hand():
    # n = C: projections 4 n C^2 and scores 2 n^2 C (explicit) / n^2 C (sdpa, causal half)
    assert layer_ops(128, 128, "explicit") == 4 * 128**3 + 2 * 128**3
    assert layer_ops(128, 128, "sdpa") == 4 * 128**3 + 128**3
    # far beyond the width the quadratic term wins: the slope tends to 2; at small n to 1
    assert quadratic_slope([2**14, 2**15, 2**16], 128, "explicit") == pytest.approx(2.0, abs=0.02)
    assert quadratic_slope([4, 8, 16], 128, "explicit") == pytest.approx(1.0, abs=0.05)


# ----------------------------------------------------------------------------- time


def test_clean_quadratic_and_linear_timings_decide():
    spread = [0.02] * 3
    assert time_growth(NS, _times(2.0), spread, QUADRATIC_MODEL).verdict == HOLDS
    assert time_growth(NS, _times(1.0), spread, QUADRATIC_MODEL).verdict == FAILS


def test_fixed_costs_that_dominate_are_inconclusive_not_a_failure():
    # a 1 ms overhead per call hides a quadratic term of microseconds: slope far below 1
    times = _times(2.0, fixed=1e-3, scale=1e-12)
    growth = time_growth(NS, times, [0.01] * 3, QUADRATIC_MODEL)
    assert growth.slope < 1
    assert growth.verdict == INCONCLUSIVE and "fixed per-call costs" in growth.reason


def test_sizes_where_quadratic_and_linear_attention_look_alike_are_inconclusive():
    ns = [32, 64, 128]  # --quick: the projections are most of the work
    model = quadratic_slope(ns, 128, "explicit")
    assert model < 1.4
    growth = time_growth(ns, _times(1.0, ns), [0.01] * 3, model)
    assert growth.verdict == INCONCLUSIVE and "linear in n is most of the layer" in growth.reason


def test_a_spread_between_repeats_larger_than_the_effect_is_inconclusive():
    times = _times(1.3)  # below the midpoint 1.45 of linear (1) and quadratic (1.9)
    quiet = time_growth(NS, times, [0.01] * 3, QUADRATIC_MODEL)
    noisy = time_growth(NS, times, [0.5] * 3, QUADRATIC_MODEL)  # the fast repeats 50% apart
    assert noisy.error == pytest.approx(math.log(1.5) / math.log(2))  # endpoints 4x apart, each 50% off
    assert quiet.verdict == FAILS
    assert noisy.verdict == INCONCLUSIVE and "spread between repeats" in noisy.reason


def test_too_few_points_are_inconclusive():
    growth = time_growth([1024, 2048], _times(2.0, [1024, 2048]), [0.0, 0.0], QUADRATIC_MODEL)
    assert growth.verdict == INCONCLUSIVE and "too few sizes" in growth.reason
    assert time_growth([], [], [], QUADRATIC_MODEL).verdict == INCONCLUSIVE


def test_a_busy_machine_that_slows_every_point_alike_changes_nothing():
    """Load that scales every timing (a slower clock, a shared core) leaves the slope alone."""
    times = _times(2.0)
    quiet = time_growth(NS, times, [0.02] * 3, QUADRATIC_MODEL)
    busy = time_growth(NS, [3 * t for t in times], [0.02] * 3, QUADRATIC_MODEL)
    assert (quiet.verdict, quiet.slope) == (busy.verdict, pytest.approx(busy.slope))


# ----------------------------------------------------------------------------- memory


def _scores(ns=NS, heads=4):
    return [n * n * heads * 4 for n in ns]


def test_memory_that_keeps_the_scores_and_grows_quadratically_holds():
    peak = [3 * s for s in _scores()]
    assert memory_growth(NS, peak, _scores()).verdict == HOLDS


def test_memory_below_one_score_matrix_does_not_hold():
    peak = [4096 * n for n in NS]  # linear, and far below n^2 * heads * 4 at n = 4096
    growth = memory_growth(NS, peak, _scores())
    assert growth.verdict == FAILS and "does not keep the scores" in growth.reason


def test_memory_dominated_by_fixed_buffers_is_inconclusive():
    ns = [32, 64, 128]
    peak = [2**20 + 100 * n for n in ns]  # a MiB of buffers, more than a 128 x 128 score matrix
    growth = memory_growth(ns, peak, _scores(ns))
    assert growth.verdict == INCONCLUSIVE and "other buffers" in growth.reason


def test_memory_too_small_to_measure_is_inconclusive():
    growth = memory_growth(NS, [0, 0, 4096], _scores())
    assert growth.verdict == INCONCLUSIVE and "too few sizes" in growth.reason


def test_the_claim_combines_its_paths():
    assert combine([HOLDS, HOLDS]) == HOLDS
    assert combine([HOLDS, FAILS]) == PARTLY
    assert combine([FAILS, FAILS]) == FAILS
    assert combine([HOLDS, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine([]) == INCONCLUSIVE


# (seconds, spread, peak bytes) per n and path, measured on the project's 2-core VM (load ~3)
DEFAULT_RUN = {
    "explicit": {
        64: (7.9e-4, 0.24, 983040),
        128: (1.88e-3, 0.24, 1630208),
        256: (6.49e-3, 0.05, 4120576),
        512: (2.015e-2, 0.05, 14974976),
        1024: (8.672e-2, 0.04, 54706176),
        2048: (0.36977, 0.02, 210939904),
        4096: (1.44377, 0.03, 831963136),
    },
    "sdpa": {
        64: (7.9e-4, 0.15, 720896),
        128: (1.11e-3, 0.29, 1335296),
        256: (3.14e-3, 0.11, 1638400),
        512: (7.99e-3, 0.07, 3313664),
        1024: (1.927e-2, 0.03, 5943296),
        2048: (5.539e-2, 0.07, 10100736),
        4096: (0.18398, 0.01, 18579456),
    },
}
QUICK_RUN = {
    "explicit": {
        16: (6.0e-4, 0.09, 258048),
        32: (7.3e-4, 0.15, 520192),
        64: (8.0e-4, 0.20, 851968),
        128: (1.71e-3, 0.25, 1310720),
    },
    "sdpa": {
        16: (4.4e-4, 0.15, 327680),
        32: (5.7e-4, 0.16, 458752),
        64: (6.6e-4, 0.27, 720896),
        128: (1.06e-3, 0.26, 1212416),
    },
}


def _cost_result(run: dict) -> AttentionCostResult:
    ns = sorted(run["explicit"])
    result = AttentionCostResult("cpu", 128, 4, "m", fit_from_n=ns[-3])
    for path, points in run.items():
        for n, (seconds, spread, peak) in points.items():
            result.points.append(CostPoint(n, path, seconds, peak, n * n * 4 * 4, spread, 5))
    return result


def test_attention_cost_verdicts_of_a_default_run_and_of_a_quick_run():
    """A default run decides (time holds; memory partly: the fused kernel keeps no scores); a
    quick run (n <= 128: fixed costs, the projections dominate) decides nothing rather than
    contradict it."""
    assert [v.verdict for v in _verdicts(_cost_result(DEFAULT_RUN))] == [HOLDS, PARTLY]
    quick = _verdicts(_cost_result(QUICK_RUN))
    assert [v.verdict for v in quick] == [INCONCLUSIVE, INCONCLUSIVE]
    assert all(v.reason for v in quick)


def test_the_default_run_keeps_its_verdicts_when_load_triples_its_spreads():
    loaded = {
        path: {n: (t * 1.5, spread * 3, peak) for n, (t, spread, peak) in points.items()}
        for path, points in DEFAULT_RUN.items()
    }
    assert [v.verdict for v in _verdicts(_cost_result(loaded))] == [HOLDS, PARTLY]


# ----------------------------------------------------------------------------- repeated trainings


def test_compared_counts_a_difference_only_beyond_the_spread_of_the_seeds():
    def verdict(a, b):
        return compared("c", "m", a, b)

    assert verdict([2.0, 2.1, 2.05], [1.8, 1.85, 1.9]).verdict == HOLDS
    assert verdict([1.8, 1.85, 1.9], [2.0, 2.1, 2.05]).verdict == FAILS
    within = verdict([2.0, 2.3], [1.9, 2.2])  # 0.1 apart, 0.3 between seeds
    assert within.verdict == INCONCLUSIVE and "within the spread" in within.reason
    one = verdict([2.0], [1.0])
    assert one.verdict == INCONCLUSIVE and "no spread to compare with" in one.reason


def test_band_decides_only_when_every_seed_falls_in_one_band():
    labels = [HOLDS, PARTLY, FAILS]
    assert band([0.02, 0.08], [0.1, 0.5], labels) == HOLDS
    assert band([0.2, 0.4], [0.1, 0.5], labels) == PARTLY
    assert band([0.5, 0.9], [0.1, 0.5], labels) == FAILS
    assert band([0.05, 0.2], [0.1, 0.5], labels) is None


def _heads_result(rows) -> HeadsResult:
    return HeadsResult("cpu", 48, 3, 500, rows=rows, seeds=[0, 1, 2])


def _row(h, losses, js=(), focus=0.5):
    mean = sum(losses) / len(losses)
    return HeadsRow(h, 48 // h, 92256, mean, sum(js) / len(js) if js else None, list(losses), list(js), focus)


def test_heads_that_still_attend_uniformly_cannot_show_different_patterns():
    rows = [_row(1, [3.7, 3.71]), _row(2, [3.7, 3.71], js=[0.0, 0.0], focus=0.01)]
    v = _diversity_verdict(_heads_result(rows))
    assert v.verdict == INCONCLUSIVE and "almost uniformly" in v.reason


def test_head_diversity_decides_per_head_count_and_seed():
    rows = [_row(2, [2.0, 2.0], js=[0.3, 0.35]), _row(4, [2.0, 2.0], js=[0.25, 0.3])]
    assert _diversity_verdict(_heads_result(rows)).verdict == HOLDS
    rows[1] = _row(4, [2.0, 2.0], js=[0.02, 0.04])
    assert _diversity_verdict(_heads_result(rows)).verdict == PARTLY
    rows[1] = _row(4, [2.0, 2.0], js=[0.05, 0.15])  # the seeds disagree
    assert _diversity_verdict(_heads_result(rows)).verdict == INCONCLUSIVE


def test_several_heads_beat_one_only_beyond_the_spread_between_seeds():
    one = _row(1, [1.92, 1.95, 1.90])
    close = _row(4, [1.90, 1.93, 1.91], js=[0.3] * 3)  # 0.01 better, seeds 0.05 apart
    v = _loss_verdict(_heads_result([one, close]))
    assert v.verdict == INCONCLUSIVE and "within the spread between seeds" in v.reason
    clear = _row(4, [1.80, 1.82, 1.81], js=[0.3] * 3)
    assert _loss_verdict(_heads_result([one, clear])).verdict == HOLDS
    worse = _row(8, [2.10, 2.12, 2.11], js=[0.3] * 3)
    assert _loss_verdict(_heads_result([one, worse])).verdict == FAILS
    assert _loss_verdict(_heads_result([close])) is None  # no one-head model: no claim to judge


def _scale_result(dks, training=()) -> SoftmaxScaleResult:
    from hw2cli.probe.softmax_scale import score_rows

    result = SoftmaxScaleResult("cpu", 64, 1024, train_steps=500, train_head_size=16, training=list(training))
    for d_k in dks:
        result.rows += score_rows(d_k, seed=0, queries=256)
    from hw2cli.probe.common import loglog_slope

    raw = [r for r in result.rows if not r.scaled]
    result.var_slope = loglog_slope([r.d_k for r in raw], [r.score_var for r in raw])
    result.jacobian_slope = loglog_slope([r.d_k for r in raw[-3:]], [r.jacobian_norm for r in raw[-3:]])
    return result


def test_softmax_scale_trends_need_two_head_sizes_and_a_saturated_softmax():
    variance, saturation = softmax_verdicts(_scale_result([16]))[:2]
    assert variance.verdict == saturation.verdict == INCONCLUSIVE
    variance, saturation = softmax_verdicts(_scale_result([16, 64, 256]))[:2]
    assert variance.verdict == saturation.verdict == HOLDS  # the quick sizes agree with the full run
    # at d_k 1 and 2 the unscaled softmax is far from saturated: its gradient has not begun to fall
    saturation = softmax_verdicts(_scale_result([1, 2]))[1]
    assert saturation.verdict == INCONCLUSIVE and "not saturated" in saturation.reason


def test_a_saturated_softmax_whose_gradient_does_not_fall_fails():
    result = SoftmaxScaleResult("cpu", 64, 1024, jacobian_slope=0.0, var_slope=1.0)
    result.rows = [ScaleRow(1024, False, 1024.0, 0.95, 0.1, 0.2), ScaleRow(1024, True, 1.0, 0.1, 3.7, 0.18)]
    assert softmax_verdicts(result)[1].verdict == FAILS


def test_slower_training_without_the_factor_counts_beyond_the_seeds_spread():
    def trainings(with_s, without):
        return [ScaleTraining(True, None, val_losses=with_s), ScaleTraining(False, None, val_losses=without)]

    near = softmax_verdicts(_scale_result([16, 64], trainings([1.88, 1.90], [1.87, 1.91])))[2]
    assert near.verdict == INCONCLUSIVE
    slower = softmax_verdicts(_scale_result([16, 64], trainings([1.88, 1.90], [2.0, 2.02])))[2]
    faster = softmax_verdicts(_scale_result([16, 64], trainings([1.88, 1.90], [1.80, 1.82])))[2]
    assert (slower.verdict, faster.verdict) == (HOLDS, FAILS)


def _positions_result(nope_kls, rope_kls, rope_ratios) -> PositionsResult:
    result = PositionsResult("cpu", 64, 500, seeds=[0, 1])
    result.permutation = [PermutationRow(False, "none", 1e-16), PermutationRow(True, "none", 0.1)]
    spans = {"0-T": 2.0, "T-2T": 2.1, "2T-4T": 2.0 * sum(rope_ratios) / len(rope_ratios)}
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    result.training = [
        PositionsTraining("none", 2.2, mean(nope_kls), dict(spans), shuffle_kls=list(nope_kls)),
        PositionsTraining("rope", 1.9, mean(rope_kls), dict(spans), shuffle_kls=list(rope_kls)),
    ]
    result.training[1].far_ratios = list(rope_ratios)
    return result


def test_positions_verdicts_wait_until_rope_uses_word_order():
    untrained = {
        v.claim: v for v in positions_verdicts(_positions_result([1e-6, 2e-6], [2e-6, 1e-6], [1.0, 1.01]))
    }
    assert (
        untrained["without positions (and without a causal mask) attention ignores word order"].verdict
        == HOLDS
    )
    for claim in ("a causal decoder without", "relative positions (RoPE)"):
        v = next(v for c, v in untrained.items() if c.startswith(claim))
        assert v.verdict == INCONCLUSIVE and "train longer" in v.reason


def test_positions_verdicts_per_seed_bands():
    trained = positions_verdicts(_positions_result([0.3, 0.35], [1.1, 1.2], [1.4, 1.5]))
    assert (
        trained[1].claim.startswith("a causal decoder") and trained[1].verdict == PARTLY
    )  # NoPE/RoPE 0.27..0.29
    assert trained[-1].claim.startswith("relative positions") and trained[-1].verdict == FAILS  # 1.4..1.5x
    straddling = positions_verdicts(_positions_result([0.05, 0.2], [1.0, 1.0], [1.0, 1.1]))
    assert {v.verdict for v in straddling[1:2]} == {INCONCLUSIVE}
    assert straddling[-1].verdict == INCONCLUSIVE
