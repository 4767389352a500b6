"""`hw2 padding-bench`: table layout, JSON/CSV, the CPU worker path, Ctrl-C, bad input."""

from __future__ import annotations

import csv
import io
import json
import statistics

import matplotlib.image
import pytest
from rich.console import Console
from typer.testing import CliRunner

from hw2cli.cli import app
from hw2cli.common.progress import Reporter
from hw2cli.padding.bench import PaddingBenchResult, run_padding_bench
from hw2cli.padding.options import PaddingOptions
from hw2cli.padding.render import render, table_rows, to_csv, to_json
from hw2cli.padding.train import RoundOutcome, TrainSettings

runner = CliRunner()
TINY = {"train": 40, "val": 20, "test": 20}


def fake_result() -> PaddingBenchResult:
    """A hand-made result: conv types given out of order, known accuracies."""
    settings = {
        "net": "net1",
        "conv_types": ["valid", "circular"],
        "rounds": 3,
        "epochs": 20,
        "seed": 0,
        "precision": "fp32",
    }
    result = PaddingBenchResult(settings=settings, path="sequential", device="cpu")
    for ct, vals, tests in (
        ("circular", [99.5, 99.9, 99.2], [80.1, 85.0, 83.3]),
        ("valid", [100.0] * 3, [0.1, 0.0, 0.2]),
    ):
        result.outcomes[ct] = [
            RoundOutcome(ct, r, v, v, t, 100.0 - t, 20, 11)
            for r, (v, t) in enumerate(zip(vals, tests, strict=True))
        ]
    return result


def test_table_layout_rows_means_and_population_std():
    rows = table_rows(fake_result())
    assert [r[:2] for r in rows] == [
        ["Valid", "Validation"],
        ["", "Test"],
        ["Circular", "Validation"],
        ["", "Test"],
    ]
    circ_test = rows[3]
    assert circ_test[2:5] == ["80.10", "85.00", "83.30"]
    values = [80.1, 85.0, 83.3]
    assert (
        circ_test[5] == f"{statistics.fmean(values):.4f}"
        and circ_test[6] == f"{statistics.pstdev(values):.4f}"
    )
    assert circ_test[6] == "2.0314" != f"{statistics.stdev(values):.4f}"  # population, not sample, std
    with_unshifted = table_rows(fake_result(), unshifted=True)
    assert [r[1] for r in with_unshifted[:3]] == ["Validation", "Test", "Test (unshifted)"]
    assert with_unshifted[2][2] == "99.90"


def test_ten_rounds_printed_to_a_file_are_not_cut():
    result = fake_result()
    result.settings["rounds"] = 10
    for ct in result.outcomes:
        result.outcomes[ct] = [RoundOutcome(ct, r, 99.25, 99.25, 81.5, 98.0, 50, 40) for r in range(10)]
    out = io.StringIO()
    render(result, Console(file=out, width=80), unshifted=True)
    text = out.getvalue()
    assert "…" not in text
    assert text.count("99.25 ") == 20 and "Circular" in text and "Test (unshifted)" in text
    assert "81.5000" in text and "0.0000" in text


def test_csv_and_json_hold_every_round():
    result = fake_result()
    lines = list(csv.DictReader(io.StringIO(to_csv(result))))
    assert [(row["conv_type"], row["round"]) for row in lines] == [
        ("valid", "1"),
        ("valid", "2"),
        ("valid", "3"),
        ("circular", "1"),
        ("circular", "2"),
        ("circular", "3"),
    ]
    data = to_json(result)
    assert data["conv_types"]["circular"]["summary"]["test"]["std"] == pytest.approx(
        statistics.pstdev([80.1, 85.0, 83.3])
    )
    assert [r["test_acc"] for r in data["conv_types"]["circular"]["rounds"]] == [80.1, 85.0, 83.3]


def test_every_path_gives_the_sequential_numbers(monkeypatch):
    from hw2cli.padding import bench

    # one thread's matmul peak, fixed: measured, it swings with the machine's load between runs
    monkeypatch.setattr(bench, "matmul_peak_gflops", lambda *args: 10.0)
    monkeypatch.setattr(bench, "estimate_seconds", lambda *args: 0.0)  # tested on its own: not the numbers
    opts = PaddingOptions(net="net1", conv_types="reflect", rounds=2, epochs=2, device="cpu", workers=2)
    common = dict(data_sizes=TINY, settings=TrainSettings(batch_size=20))
    seq = run_padding_bench(opts, path="sequential", **common)
    par = run_padding_bench(opts, path="cpu-processes", **common)
    bat = run_padding_bench(opts, path="batched", **common)
    assert (seq.path, par.path, bat.path) == ("sequential", "cpu-processes", "batched")
    for ct in ("reflect",):
        assert [o.round for o in par.outcomes[ct]] == [0, 1]
        for a, b, c in zip(seq.outcomes[ct], par.outcomes[ct], bat.outcomes[ct], strict=True):
            assert (a.val_losses, a.val_acc, a.test_acc, a.epochs) == (
                b.val_losses,
                b.val_acc,
                b.test_acc,
                b.epochs,
            )
            assert (a.val_acc, a.test_acc, a.epochs) == (c.val_acc, c.test_acc, c.epochs)
            assert c.val_losses == pytest.approx(a.val_losses, rel=1e-5)
    assert seq.flop == par.flop == bat.flop > 0
    # the share of the measured matmul peak: workers x one thread's peak on the CPU
    assert (seq.peak_gflops, par.peak_gflops) == (10.0, 20.0)
    for r in (seq, par):
        assert r.peak_fraction > 0
        assert r.peak_fraction == pytest.approx(r.flop / r.seconds / 1e9 / r.peak_gflops)


def test_ctrl_c_returns_the_finished_rounds():
    class StopAfterFirst(Reporter):
        def log(self, message: str) -> None:
            raise KeyboardInterrupt

    result = run_padding_bench(
        PaddingOptions(conv_types="valid", rounds=3, epochs=1, device="cpu"),
        StopAfterFirst(),
        path="sequential",
        data_sizes=TINY,
        settings=TrainSettings(batch_size=20),
    )
    assert result.interrupted
    assert [o.round for o in result.outcomes["valid"]] == [0]


def test_cli_end_to_end_json(tmp_path):
    out = tmp_path / "t.json"
    res = runner.invoke(
        app,
        [
            "padding-bench",
            "--net",
            "net2",
            "--conv-types",
            "sconv",
            "--rounds",
            "1",
            "--epochs",
            "1",
            "--quiet",
            "--unshifted",
            "--json",
            str(out),
            "--csv",
            str(tmp_path / "t.csv"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "Table 2" in res.output and "sconv" in res.output and "Test (unshifted)" in res.output
    data = json.loads(out.read_text())
    assert "% of its measured matmul peak" in res.output
    assert data["peak_fraction"] == pytest.approx(data["gflops"] / data["peak_gflops"])
    assert set(data) >= {
        "command",
        "settings",
        "path",
        "device",
        "seconds",
        "gflop",
        "gflops",
        "interrupted",
        "conv_types",
    }
    assert data["settings"]["net"] == "net2" and list(data["conv_types"]) == ["sconv"]
    (rnd,) = data["conv_types"]["sconv"]["rounds"]
    assert rnd["epochs"] == 1 and len(rnd["val_losses"]) == 1 and 0 <= rnd["test_acc"] <= 100
    assert (tmp_path / "t.csv").read_text().count("\n") == 2


def test_preview_writes_enlarged_pngs(tmp_path):
    res = runner.invoke(app, ["padding-bench", "preview", str(tmp_path / "png"), "--per-class", "3"])
    assert res.exit_code == 0, res.output
    files = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert files == sorted(f"{s}_label{c}.png" for s in ("train", "test", "test_unshifted") for c in (0, 1))
    img = matplotlib.image.imread(tmp_path / "png" / "train_label0.png")
    assert img.shape[0] == 32 * 8 + 40 and img.shape[1] > 3 * 32 * 8  # 40 px of caption above


@pytest.mark.parametrize(
    "args, message",
    [
        (["--conv-types", "valid,zero"], "unknown conv type 'zero'"),
        (["--conv-types", "{seed}"], "unknown conv type '{seed}'; use"),  # braces: a value, not a field
        (["--rounds", "0"], "--rounds 0"),
        (["--epochs", "0"], "--epochs 0"),
        (["--workers", "-1"], "--workers -1"),
        (["--device", "cuda"], "no CUDA GPU"),
        (["--json", "."], "is a directory"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message):
    res = runner.invoke(
        app, ["padding-bench", "--quiet", "--rounds", "1", "--epochs", "1", "--conv-types", "valid", *args]
    )
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ") and message in res.stderr and res.stderr.count("\n") == 1


def test_settings_above_and_plain_footer_below_the_table():
    result = fake_result()
    result.seconds, result.workers, result.flop, result.path = 178.2, 2, 1e12, "cpu-processes"
    out = io.StringIO()
    render(result, Console(file=out, width=200))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(
        "net1, conv types valid, circular; 3 round(s) of at most 20 epoch(s); data seed 0"
    )
    assert lines[-1] == "trained 6 networks in 178 s on 2 CPU cores"
    out = io.StringIO()
    render(result, Console(file=out, width=200), verbose=True)
    assert "GFLOP/s" in out.getvalue().splitlines()[-1]
    # with the measured peak: 1e12 FLOP in 178.2 s is 5.61 GFLOP/s, 28% of 20
    result.peak_gflops = 20.0
    out = io.StringIO()
    render(result, Console(file=out, width=200))
    assert out.getvalue().splitlines()[-1] == (
        "trained 6 networks in 178 s on 2 CPU cores at 28% of their measured matmul peak"
    )


def test_json_numbers_rounds_from_1_like_the_table():
    data = to_json(fake_result())
    assert [(r["round"], r["init_seed"]) for r in data["conv_types"]["valid"]["rounds"]] == [
        (1, 0),
        (2, 1),
        (3, 2),
    ]


def test_plot_is_a_png(tmp_path):
    import matplotlib.image

    from hw2cli.padding.plot import plot_accuracy

    img = matplotlib.image.imread(plot_accuracy(fake_result(), tmp_path / "t1.png"))
    assert img.ndim == 3 and img.shape[1] > img.shape[0] > 100


def test_the_figure_plots_the_tables_rows_with_the_same_names_and_numbers(tmp_path, monkeypatch):
    """Each bar is a row of the table beside it: its legend label is the row's set, its height
    and the number written above it the row's mean (fake_result's unshifted test differs from
    both rows, so plotting it would fail here)."""
    from hw2cli.padding import plot

    drawn = {}
    monkeypatch.setattr(plot, "save_figure", lambda fig, path, **kw: drawn.setdefault("fig", fig) and path)
    result = fake_result()
    plot.plot_accuracy(result, tmp_path / "t.png")
    (ax,) = drawn["fig"].axes
    bars = {c.get_label(): c for c in ax.containers if hasattr(c, "patches")}
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Valid", "Circular"]
    rows = table_rows(result)
    table = {}
    for i, row in enumerate(rows):
        conv = row[0] or rows[i - 1][0]
        table.setdefault(row[1], []).append((conv, float(row[-2])))
    assert set(bars) == set(table) == {"Validation", "Test"}
    for label, container in bars.items():
        heights = [round(p.get_height(), 4) for p in container.patches]
        assert heights == [mean for _, mean in table[label]], label
    texts = [t.get_text() for t in ax.texts]
    for label in bars:
        assert all(f"{mean:.1f}" in texts for _, mean in table[label])


def test_a_bar_of_zero_percent_is_visible(tmp_path):
    """Table 2's shifted test accuracy is 0% for most conv types: its bars must still show."""
    import matplotlib.image
    import numpy as np

    from hw2cli.padding.plot import plot_accuracy

    result = fake_result()
    for ct in result.outcomes:
        result.outcomes[ct] = [RoundOutcome(ct, r, 99.0, 99.0, 0.0, 99.0, 20, 11) for r in range(3)]
    img = matplotlib.image.imread(plot_accuracy(result, tmp_path / "t2.png"))[..., :3]
    red = np.all(np.abs(img - np.array([217, 83, 79]) / 255) < 0.08, axis=-1)  # the shifted bars' colour
    above_legend = red[: int(0.85 * img.shape[0])]  # the legend's red patch is at the bottom
    assert above_legend.sum() > 100, above_legend.sum()  # two 0% bars drawn as lines
