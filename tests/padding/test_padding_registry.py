"""A conv type is one line of ``hw2cli.padding.CONV``: a mode added there (and nowhere else)
reaches the options, the model, the trainer, the estimate, the worker pool's order, the
tables, the JSON read back and the figure."""

from __future__ import annotations

import io

import pytest
import torch
from rich.console import Console

from hw2cli.padding import CONV, ConvType
from hw2cli.padding.bench import run_padding_bench, seconds_per_flop
from hw2cli.padding.model import PaddingNetConfig, feature_size, make_model
from hw2cli.padding.options import PaddingOptions
from hw2cli.padding.render import from_json, render, table_rows, to_csv, to_json
from hw2cli.padding.train import TrainSettings

TINY = {"train": 40, "val": 20, "test": 20}
# Reflect padding of width 1: no existing row has it, and its shapes are sconv's.
FAKE = ConvType("Thin reflect", "reflect", 1, cpu_cost=9.0)


@pytest.fixture
def thin(monkeypatch):
    monkeypatch.setitem(CONV, "thin", FAKE)
    return "thin"


def test_a_new_row_of_the_table_reaches_the_model(thin):
    assert PaddingOptions(conv_types=f"{thin},valid").types == ["valid", thin]  # the table's order
    net = make_model(PaddingNetConfig("net2", thin), 0)
    assert {(c.padding_mode, c.padding[0]) for c in net.convs} == {("reflect", 1)}
    assert feature_size(thin) == feature_size("sconv") == 4
    x = torch.rand(2, 3, 32, 32)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")  # by hand: the first convolution
    expected = torch.nn.functional.conv2d(padded, net.convs[0].weight)
    assert torch.allclose(net.convs[0](x), expected, atol=1e-6)


def test_a_new_row_trains_is_estimated_rendered_read_back_and_plotted(thin, tmp_path, monkeypatch):
    settings = TrainSettings(batch_size=20, channels_last=True)
    rates = seconds_per_flop([PaddingNetConfig("net1", thin)], "sequential", settings, torch.device("cpu"), 1)
    assert set(rates) == {thin} and rates[thin] > 0

    opts = PaddingOptions(conv_types=f"valid,{thin}", rounds=2, epochs=1, device="cpu", workers=1)
    result = run_padding_bench(
        opts, path="sequential", data_sizes=TINY, settings=TrainSettings(batch_size=20)
    )
    assert [o.round for o in result.outcomes[thin]] == [0, 1]
    rows = table_rows(result)
    assert [r[0] for r in rows] == ["Valid", "", "Thin reflect", ""]
    out = io.StringIO()
    render(result, Console(file=out, width=200))
    assert "Thin reflect" in out.getvalue()
    assert to_csv(result).count(f"net1,{thin},") == 2
    again = from_json(to_json(result))
    assert [o.test_acc for o in again.outcomes[thin]] == [o.test_acc for o in result.outcomes[thin]]

    from hw2cli.padding import plot

    drawn = {}
    monkeypatch.setattr(plot, "save_figure", lambda fig, path, **kw: drawn.setdefault("fig", fig) and path)
    plot.plot_accuracy(result, tmp_path / "t.png")
    assert [t.get_text() for t in drawn["fig"].axes[0].get_xticklabels()] == ["Valid", "Thin reflect"]


def test_the_worker_pool_starts_the_costliest_rows_first(thin, monkeypatch):
    """The pool takes its jobs in the table's cost order (the dearest row first: no straggler)."""
    from hw2cli.padding import bench

    seen = []
    monkeypatch.setattr(bench, "_cpu_processes", lambda jobs, *args: seen.extend(jobs) or False)
    monkeypatch.setattr(bench, "matmul_peak_gflops", lambda *args: 1.0)
    monkeypatch.setattr(bench, "estimate_seconds", lambda *args: 0.0)
    opts = PaddingOptions(conv_types=f"valid,circular,{thin}", rounds=2, epochs=1, device="cpu", workers=2)
    run_padding_bench(opts)
    assert [cfg.conv_type for cfg, _ in seen] == [thin, thin, "circular", "circular", "valid", "valid"]
