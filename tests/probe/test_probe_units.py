"""The probes' measuring functions against hand-computed or independently computed values."""

from __future__ import annotations

import math

import pytest
import torch

from hw2cli.common.options import OptionError
from hw2cli.probe import _gpt
from hw2cli.probe.common import loglog_slope
from hw2cli.probe.heads import js_bits, mean_pairwise_js
from hw2cli.probe.options import parse_sizes
from hw2cli.probe.positions import bidirectional, permutation_gap
from hw2cli.probe.receptive_field import input_gradient_map, recent_width, square_width, support_box
from hw2cli.probe.softmax_scale import score_rows, softmax_stats


@pytest.mark.parametrize("power", [1.0, 1.5, 2.0, 3.0])
def test_loglog_slope_recovers_the_exponent_of_noisy_synthetic_timings(power):
    gen = torch.Generator().manual_seed(int(power * 10))
    ns = [2**k for k in range(6, 13)]
    noise = torch.exp(0.05 * torch.randn(len(ns), generator=gen)).tolist()  # +-5% jitter
    times = [3e-9 * n**power * e for n, e in zip(ns, noise, strict=True)]
    assert loglog_slope(ns, times) == pytest.approx(power, abs=0.05)


def test_loglog_slope_ignores_a_constant_factor_and_needs_two_points():
    assert loglog_slope([1, 10, 100], [7, 70, 700]) == pytest.approx(1.0)
    assert loglog_slope([8], [3.0]) is None
    assert loglog_slope([8, 16], [0, 3.0]) is None


@pytest.mark.parametrize(
    "text, problem",
    [
        ("0,4", "0 is out of range; give sizes from 1 to 65,536"),
        ("-2", "out of range"),
        ("131072", "131,072 is out of range"),
        ("3,4", "not a power of two"),
        ("4,a", "integers"),
        ("8,4", "increase"),
        ("", "empty"),
        ([4, 2.5], "integers"),
    ],
)
def test_parse_sizes_refuses_bad_lists_naming_the_field(text, problem):
    with pytest.raises(OptionError, match=problem) as info:
        parse_sizes(text, "n")
    assert info.value.fields == ["n"] and "--" not in str(info.value)


def test_parse_sizes_reads_text_and_sequences():
    assert parse_sizes("16, 32,64", "n") == (16, 32, 64)
    assert parse_sizes([16, 32], "n") == (16, 32)
    assert parse_sizes("1,3,6", "heads", power_of_two=False) == (1, 3, 6)


def _model(pos_emb: str, length: int = 12):
    torch.manual_seed(0)
    return _gpt.gpt_model.GPT(_gpt.make_config(2, 2, 16, 20, length, pos_emb=pos_emb)).double().eval()


def test_without_mask_and_positions_a_permuted_input_gives_the_permuted_output():
    model = _model("none")
    gen = torch.Generator().manual_seed(1)
    idx = torch.randint(0, 20, (3, 12), generator=gen)
    for _ in range(3):
        perm = torch.randperm(12, generator=gen)
        with bidirectional(model):
            assert permutation_gap(model, idx, perm) < 1e-12
        # the causal mask alone breaks the symmetry, and the mask is restored after the block
        assert permutation_gap(model, idx, perm) > 1e-4


@pytest.mark.parametrize("pos_emb", ["learned", "rope"])
def test_positions_break_the_permutation_symmetry_even_without_a_mask(pos_emb):
    model = _model(pos_emb)
    idx = torch.randint(0, 20, (3, 12), generator=torch.Generator().manual_seed(2))
    with bidirectional(model):
        assert permutation_gap(model, idx, torch.arange(12).flip(0)) > 1e-4


@pytest.mark.parametrize("kernel, dilation", [(1, 1), (3, 1), (5, 1), (3, 2)])
def test_gradient_field_of_one_conv_layer_is_its_kernel_support(kernel, dilation):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, kernel, dilation=dilation, padding="same", bias=False)
    x = torch.randn(2, 3, 15, 15)
    grad = input_gradient_map(lambda inp: conv(inp)[:, :, 7, 7].sum(), x)
    span = dilation * (kernel - 1) + 1
    assert support_box(grad) == (span, span)
    assert (grad > 0).sum().item() == kernel * kernel  # only the taps, not the holes between them


def test_square_and_recent_widths_by_hand():
    mass = torch.zeros(9, 9, dtype=torch.float64)
    mass[4, 4] = 0.5
    mass[3:6, 3:6] += 0.4 / 9
    mass[0, 0] = 0.1
    assert square_width(mass) == 3  # the centre pixel (0.5) and its 3x3 ring (0.4)
    assert square_width(mass, share=0.95) == 9
    assert recent_width(torch.tensor([0.05, 0.05, 0.3, 0.6])) == 2
    assert recent_width(torch.tensor([0.5, 0.0, 0.0, 0.5])) == 4


def test_unscaled_score_variance_grows_linearly_with_d_k_and_the_scaled_one_stays_at_1():
    dks = [16, 64, 256, 1024]
    rows = [r for d in dks for r in score_rows(d, seed=0, queries=256)]
    raw = [r for r in rows if not r.scaled]
    for r in raw:
        assert r.score_var / r.d_k == pytest.approx(1.0, abs=0.1)
    assert loglog_slope([r.d_k for r in raw], [r.score_var for r in raw]) == pytest.approx(1.0, abs=0.05)
    for r in rows:
        if r.scaled:
            assert r.score_var == pytest.approx(1.0, abs=0.1)


def test_softmax_stats_match_autograd_and_the_uniform_case():
    scores = torch.randn(5, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    max_p, entropy, jac = softmax_stats(scores)
    norms = [torch.autograd.functional.jacobian(lambda s: torch.softmax(s, -1), row).norm() for row in scores]
    assert jac == pytest.approx(torch.stack(norms).mean().item(), rel=1e-9)
    p = torch.softmax(scores, -1)
    assert entropy == pytest.approx(-(p * p.log()).sum(-1).mean().item(), rel=1e-9)
    assert max_p == pytest.approx(p.max(-1).values.mean().item(), rel=1e-12)
    u_max, u_entropy, _ = softmax_stats(torch.zeros(2, 8))
    assert (u_max, u_entropy) == (pytest.approx(1 / 8), pytest.approx(math.log(8)))


def test_js_divergence_in_bits_is_0_for_equal_and_1_for_disjoint_distributions():
    p = torch.tensor([[0.5, 0.5, 0.0, 0.0]], dtype=torch.float64)
    q = torch.tensor([[0.0, 0.0, 0.25, 0.75]], dtype=torch.float64)
    assert js_bits(p, p).item() == pytest.approx(0.0, abs=1e-12)
    assert js_bits(p, q).item() == pytest.approx(1.0)
    same = torch.softmax(torch.randn(2, 1, 5, 5), -1).expand(2, 3, 5, 5)
    assert mean_pairwise_js([same]) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("n", [4096, 16384])
def test_measured_memory_of_a_decoding_step_is_its_kv_cache(n):
    from hw2cli.probe.attention_cost import measure_point

    (seconds, spread, repeats), peak = measure_point(n, "kv-cache", 128, 4, torch.device("cpu"))
    cache = 2 * n * 128 * 4  # keys and values, fp32
    assert seconds > 0 and spread >= 0 and repeats >= 5
    assert cache <= peak <= cache + 2**20  # up to 1 MiB of interpreter and allocator noise


def test_ctrl_c_during_attention_cost_keeps_the_finished_points():
    from hw2cli.common.progress import Reporter
    from hw2cli.probe.attention_cost import attention_cost
    from hw2cli.probe.options import AttentionCostOptions

    class StopAfterTwo(Reporter):
        calls = 0

        def update(self, key, advance=0, **fields):
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt

    result = attention_cost(AttentionCostOptions(n="16,32,64", device="cpu"), reporter=StopAfterTwo())
    assert result.interrupted
    assert [(p.n, p.path) for p in result.points] == [(16, "explicit"), (16, "sdpa")]
    # verdicts still come, from what finished: too few points to decide anything
    assert [v.verdict for v in result.verdicts] == ["inconclusive", "inconclusive"]
    assert "too few sizes" in result.verdicts[0].reason


def test_the_heads_width_is_gpt_nanos_and_the_head_counts_split_it_evenly():
    from hw2cli.gpt.model import PRESETS
    from hw2cli.probe.options import GPT_WIDTH, HEAD_COUNTS

    assert GPT_WIDTH == PRESETS["gpt-nano"]["n_embd"]
    assert HEAD_COUNTS == (1, 2, 3, 4, 6, 8, 12, 24)  # 48 / h even: head sizes 48, 24, 16, 12, 8, 6, 4, 2


def test_probe_options_errors_name_fields_not_flags():
    from hw2cli.probe.options import AttentionCostOptions, HeadsOptions, TrainingProbeOptions

    with pytest.raises(OptionError) as info:
        AttentionCostOptions(n_embd=100, n_head=3)
    assert info.value.fields == ["n_embd", "n_head", "n_embd", "n_head"] and "--" not in str(info.value)
    with pytest.raises(OptionError, match="heads: 5 does not split width 48"):
        HeadsOptions(heads=[1, 5])
    with pytest.raises(OptionError, match="steps 0 is out of range"):
        TrainingProbeOptions(steps=0)
    assert AttentionCostOptions(n="64,128,256").n == (64, 128, 256)
    assert TrainingProbeOptions(seed=2**32 - 1, quick=True).seeds == [2**32 - 1, 0]  # seeds stay valid
    assert (
        TrainingProbeOptions().seeds == [0, 1, 2] and TrainingProbeOptions(repeats=5, seed=7).seeds[-1] == 11
    )
    from hw2cli.probe.options import PositionsOptions, SoftmaxScaleOptions

    quick = [cls(quick=True).size("steps") for cls in (SoftmaxScaleOptions, HeadsOptions, PositionsOptions)]
    assert quick == [200, 300, 400] and HeadsOptions(quick=True, steps=7).size("steps") == 7
    assert HeadsOptions().size("steps") == 500


def test_the_probe_library_names_fields_not_flags():
    """Issue 29: library messages name fields ({field}); the CLI turns them into flags."""
    import re
    from pathlib import Path

    import hw2cli.probe

    for path in Path(hw2cli.probe.__file__).parent.glob("*.py"):
        strings = re.findall(r"\"[^\"\n]*\"|'[^'\n]*'", path.read_text(encoding="utf-8"))
        flags = [text for text in strings if re.search(r"(?<![\w-])--[a-z]", text)]
        assert not flags, (path.name, flags)


class _Recorder:
    """A reporter that keeps the notes it is given."""

    def __init__(self):
        self.notes = []

    def start(self, *a, **k):
        pass

    update = finish = log = start

    def note(self, message):
        self.notes.append(message)


def test_a_long_training_probe_announces_its_estimated_wall_time(monkeypatch):
    from hw2cli.probe import _gpt
    from hw2cli.probe.options import HeadsOptions

    monkeypatch.setattr(_gpt, "step_seconds", lambda opts: 0.1)
    reporter = _Recorder()
    opts = HeadsOptions(device="cpu")  # 500 steps, 4 head counts x 3 seeds
    _gpt.announce_estimate(opts, 12, "the heads trainings", reporter)
    # 0.1 s x 500 steps x 12 trainings x 1.15 (evaluations) = 690 s
    assert reporter.notes == [
        "estimated wall time of the heads trainings: about 11.5 min "
        "(12 trainings of 500 steps, 3 steps timed here)"
    ]
    _gpt.announce_estimate(HeadsOptions(device="cpu", quick=True, steps=20), 4, "x", reporter)
    assert len(reporter.notes) == 1  # 0.1 s x 20 x 4 x 1.15 = 9 s: nothing to announce


def test_the_timed_training_step_is_positive():
    from hw2cli.probe._gpt import step_seconds
    from hw2cli.probe.options import HeadsOptions

    assert step_seconds(HeadsOptions(device="cpu", quick=True)) > 0


def test_ctrl_c_between_trainings_keeps_the_finished_ones(monkeypatch):
    from hw2cli.probe import _gpt
    from hw2cli.probe.heads import heads
    from hw2cli.probe.options import HeadsOptions

    real, calls = _gpt.train, []

    def train_then_ctrl_c(*args, **kwargs):  # Ctrl-C as the third training starts
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(_gpt, "train", train_then_ctrl_c)
    reporter = _Recorder()
    result = heads(HeadsOptions(device="cpu", quick=True, steps=1), reporter)
    assert result.interrupted
    assert [(r.n_head, len(r.val_losses)) for r in result.rows] == [(1, 1), (2, 1)]  # seed 0 of both
    assert any("hw2's own docstrings" in n for n in reporter.notes)
    assert all(v.verdict == "inconclusive" for v in result.verdicts)  # one seed: no spread


def test_the_figures_of_results_interrupted_before_any_measurement_are_drawn(tmp_path):
    """Ctrl-C may come before the first point: the partial result still renders and plots."""
    from rich.console import Console

    from hw2cli.probe import render
    from hw2cli.probe.attention_cost import AttentionCostResult
    from hw2cli.probe.heads import HeadsResult
    from hw2cli.probe.positions import PositionsResult
    from hw2cli.probe.receptive_field import ReceptiveFieldResult
    from hw2cli.probe.render import plot
    from hw2cli.probe.softmax_scale import SoftmaxScaleResult

    empty = [
        AttentionCostResult("cpu", 128, 4, "m", 16, interrupted=True),
        SoftmaxScaleResult("cpu", 64, 1024, interrupted=True),
        PositionsResult("cpu", 16, 20, interrupted=True),
        ReceptiveFieldResult("cpu", 4, interrupted=True),
        HeadsResult("cpu", 48, 3, 20, interrupted=True),
    ]
    console = Console(file=open(tmp_path / "out.txt", "w"), width=100)  # noqa: SIM115
    for i, result in enumerate(empty):
        plot(result, tmp_path / f"{i}.png")
        assert (tmp_path / f"{i}.png").read_bytes().startswith(b"\x89PNG")
        render.render(result, console)
        assert render.to_json(result)["interrupted"] is True
    console.file.close()
    assert (tmp_path / "out.txt").read_text().count("interrupted: the numbers above cover what finished") == 5


def test_heads_figure_has_axis_labels_a_colour_bar_and_a_whole_title():
    from hw2cli.probe.heads import HeadsResult, figure

    T = 12
    causal = torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1)[:, None]
    maps = {h: [causal.tolist()] * h for h in (1, 2, 4, 8)}
    result = HeadsResult(
        "cpu", 48, 3, 20, prompt="a long prompt with a 'quote' and\nnew lines " * 2, maps=maps
    )
    fig = figure(result)
    fig.draw_without_rendering()
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 1 + 2 + 4 + 8
    assert all(ax.get_xlabel() == "key position →" for ax in panels)
    assert {ax.get_ylabel().split("\n")[0] for ax in panels if ax.get_ylabel()} == {
        "1 head",
        "2 heads",
        "4 heads",
        "8 heads",
    }
    colour_bars = [ax for ax in fig.axes if ax.get_ylabel() == "attention weight"]
    assert len(colour_bars) == 1
    title = fig._suptitle.get_window_extent()
    assert fig.bbox.x0 <= title.x0 and title.x1 <= fig.bbox.x1 and title.y1 <= fig.bbox.y1  # not cut


def test_coinciding_curves_keep_their_own_style_and_say_so():
    from matplotlib.figure import Figure

    from hw2cli.probe.render import distinct_lines

    ax = Figure().subplots()
    same = [(x, 3.0 - 0.01 * x) for x in range(40)]
    distinct_lines(ax, {"none": same, "learned": [(x, 2.0) for x in range(40)], "rope": same})
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"none", "learned", "rope (lies on none)"}
    styles = {(line.get_linestyle(), line.get_marker()) for line in lines.values()}
    assert len(styles) == 3
    # the markers of the two coinciding curves fall on different points
    assert lines["none"].get_markevery() != lines["rope (lies on none)"].get_markevery()
