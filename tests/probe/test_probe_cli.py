"""`hw2 probe NAME --quick` end to end: tables, JSON with its keys, a PNG; bad input exits 2."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hw2cli.cli import app

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"
VERDICTS = {"holds", "partly", "does not hold", "inconclusive"}


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    """A small text that needs no download: 40 different sentences, repeated."""
    words = "the dog bit man a cat saw old king queen ran home fast slowly under tree".split()
    lines = [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(6 + i % 5)) + "." for i in range(40)]
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text("\n".join(lines * 12) + "\n", encoding="utf-8")
    return path


def _run_probe(tmp_path, name, *extra, quiet=True):
    png, out = tmp_path / f"{name}.png", tmp_path / f"{name}.json"
    result = runner.invoke(
        app,
        ["probe", name, "--quick", "--device", "cpu", *(["-q"] if quiet else []), "--plot", str(png)]
        + ["--json", str(out), *extra],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert png.read_bytes().startswith(PNG)
    data = json.loads(out.read_text())
    assert data["probe"] == name
    assert data["verdicts"] and all(v["verdict"] in VERDICTS for v in data["verdicts"])
    assert "the report's claims, measured" in result.output
    return data


def test_attention_cost_quick_measures_the_points_the_default_run_fits():
    """--quick measures only the sizes the default run's slopes are fitted over (at smaller n the
    sdpa slope sits near the midpoint between linear and quadratic, undecided under load)."""
    from hw2cli.probe.attention_cost import DEFAULT_N_CPU, FIT_POINTS
    from hw2cli.probe.options import AttentionCostOptions

    assert AttentionCostOptions(quick=True).size("n") == DEFAULT_N_CPU[-FIT_POINTS:] == (1024, 2048, 4096)
    assert AttentionCostOptions(quick=True, n="64,128").size("n") == (64, 128)
    assert AttentionCostOptions().size("n") is None  # the device's sizes


def test_attention_cost_quick(tmp_path, monkeypatch):
    monkeypatch.setattr(
        "hw2cli.probe.attention_cost.MIN_SECONDS", 0.0
    )  # 5 timed calls per point suffice here
    data = _run_probe(tmp_path, "attention-cost", "--n", "128,256,512")
    assert {(p["n"], p["path"]) for p in data["points"]} == {
        (n, path) for n in (128, 256, 512) for path in ("explicit", "sdpa", "kv-cache")
    }
    for p in data["points"]:
        assert p["seconds"] > 0 and p["peak_bytes"] >= 0 and p["theory_bytes"] == p["n"] ** 2 * 4 * 4
    assert set(data["slopes"]) == {"explicit", "sdpa", "kv-cache"}
    peak = {(p["n"], p["path"]): p["peak_bytes"] for p in data["points"]}
    # the explicit path keeps (n x n) scores per head: 4x the length, far more than 4x the memory
    assert peak[512, "explicit"] > 6 * peak[128, "explicit"]


def test_softmax_scale_quick_trains_offline_on_the_builtin_text(tmp_path, monkeypatch):
    """No --txt-file and no network: --quick trains on hw2's own docstrings and says so."""
    monkeypatch.setenv("HW2_GRIMM_URL", "http://127.0.0.1:9/unreachable.txt")  # a download would fail
    monkeypatch.setenv("HW2_CACHE_DIR", str(tmp_path / "cache"))  # and nothing is cached
    data = _run_probe(tmp_path, "softmax-scale", "--steps", "2")  # the test's size, not --quick's 200
    assert not (tmp_path / "cache").exists()
    assert sorted({r["d_k"] for r in data["rows"]}) == [16, 64, 256]
    assert [t["scaled"] for t in data["training"]] == [True, False]
    assert data["seeds"] == [0, 1]  # --quick: two trainings per configuration
    for t in data["training"]:
        assert len(t["val_losses"]) == 2 and t["val_loss"] == pytest.approx(sum(t["val_losses"]) / 2)
        assert t["curve"] and t["curve"][-1]["step"] == 2


def test_positions_quick(tmp_path, text):
    data = _run_probe(tmp_path, "positions", "--steps", "2", "--txt-file", str(text))
    gaps = {(r["causal_mask"], r["pos_emb"]): r["max_gap"] for r in data["permutation"]}
    assert gaps[(False, "none")] < 1e-12 < gaps[(True, "none")]
    runs = {t["pos_emb"]: t for t in data["training"]}
    assert set(runs) == {"none", "learned", "rope"}
    assert all(len(t["shuffle_kls"]) == 2 for t in runs.values())
    T = data["block_size"]
    assert len(runs["rope"]["loss_curve"]) == len(runs["none"]["loss_curve"]) == 4 * T
    assert len(runs["learned"]["loss_curve"]) == T and runs["learned"]["loss_by_span"]["2T-4T"] is None
    assert all(t["shuffle_kl"] >= 0 for t in runs.values())


def test_receptive_field_quick(tmp_path):
    data = _run_probe(tmp_path, "receptive-field")
    cnn = [r for r in data["rows"] if r["model"] == "cnn"]
    assert [r["support"] for r in cnn] == [r["theory"] for r in cnn] == [3, 5, 9, 17]
    assert len(data["cnn_maps"]) == 4 and len(data["gpt_maps"][0]) == 16


def test_heads_quick(tmp_path, text):
    data = _run_probe(tmp_path, "heads", "--steps", "2", "--txt-file", str(text))
    rows = {r["n_head"]: r for r in data["rows"]}
    assert set(rows) == {1, 2} and rows[1]["js_bits"] is None and 0 <= rows[2]["js_bits"] <= 1
    assert len(rows[2]["js_seeds"]) == len(rows[1]["val_losses"]) == 2
    assert all(0 <= r["focus_bits"] <= 1 for r in rows.values())
    assert rows[1]["num_params"] == rows[2]["num_params"]  # same width, same cost
    assert [len(data["maps"][k]) for k in ("1", "2")] == [1, 2]


def test_softmax_scale_with_one_head_size_has_no_slope_but_a_result(tmp_path, text):
    """Issue 22 item 13: any single --dk works; the trends it cannot show are inconclusive."""
    data = _run_probe(tmp_path, "softmax-scale", "--dk", "16", "--steps", "1", "--txt-file", str(text))
    assert {r["d_k"] for r in data["rows"]} == {16} and data["var_slope"] is None
    variance, saturation = data["verdicts"][:2]
    assert variance["verdict"] == saturation["verdict"] == "inconclusive"
    assert "two or more" in variance["reason"]


@pytest.mark.parametrize("flag", ["--json", "--plot"])
def test_an_output_naming_the_training_text_is_refused_and_the_text_kept(tmp_path, text, flag):
    """Issue 22 item 4: the text is an input; no output may replace it."""
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(text.read_bytes())
    result = runner.invoke(app, ["probe", "heads", "--quick", "--txt-file", str(corpus), flag, str(corpus)])
    assert result.exit_code == 2
    assert "would overwrite the input --txt-file" in result.stderr
    assert corpus.read_bytes() == text.read_bytes()


@pytest.mark.parametrize(
    "args, fields",
    [
        (
            ["probe", "attention-cost", "--n", "64,65536"],
            ["--n 65,536 needs about", "--n-head 4", "use --n up to 8,192"],
        ),
        (["probe", "receptive-field", "--samples", "64", "--seq-len", "65536"], ["--samples 64 x --seq-len"]),
        (["probe", "softmax-scale", "--dk", "65536", "--quick"], ["--dk 65,536 needs about"]),
    ],
)
def test_sizes_that_cannot_fit_in_memory_are_refused_up_front(monkeypatch, args, fields):
    """Issue 22 item 19: what a size implies for memory is checked before any work."""
    # a machine with 8 GiB free, whatever runs the tests
    monkeypatch.setattr("hw2cli.common.device.free_memory", lambda device: 8 * 2**30)
    result = runner.invoke(app, [*args, "--device", "cpu"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "more than the 8.0 GiB available" in lines[0], result.stderr
    assert all(f in lines[0] for f in fields), lines[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["probe", "no-such-probe"], "unknown probe 'no-such-probe'"),
        (["probe", "attention-cost", "--n", "0,64"], "--n: 0 is out of range; give sizes from 2 to 65,536"),
        (["probe", "attention-cost", "--n", "64,96"], "--n: 96 is not a power of two"),
        (
            ["probe", "attention-cost", "--n-embd", "100", "--n-head", "3"],
            "--n-embd 100 does not split into --n-head 3",
        ),
        (["probe", "softmax-scale", "--dk", "16,24"], "--dk: 24 is not a power of two"),
        (["probe", "heads", "--heads", "1,5"], "--heads: 5 does not split width 48"),
        (["probe", "heads", "--steps", "0"], "--steps 0 is out of range; use 1 to 100,000"),
        (["probe", "heads", "--repeats", "1"], "--repeats 1 is out of range; use 2 to 100"),
        (["probe", "positions", "--quick", "--steps", "100000000000000000000"], "--steps"),
        (["probe", "positions", "--quick", "--steps", "1e20"], "--steps"),
        (["probe", "receptive-field", "--samples", "0"], "--samples 0 is out of range; use 1 to 65,536"),
        (["probe", "receptive-field", "--seq-len", "100000000"], "--seq-len 100000000 is out of range"),
        (["probe", "receptive-field", "--seed", "-1"], "--seed -1 is out of range; use 0 to 4,294,967,295"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


def test_ctrl_c_keeps_what_finished_and_exits_130(tmp_path):
    """SIGINT while a training probe works: the partial result is rendered and written, exit 130."""
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "heads.json"
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "HW2_GRIMM_URL": "http://127.0.0.1:9/none"}
    args = [
        sys.executable,
        "-m",
        "hw2cli",
        "probe",
        "heads",
        "--quick",
        "--steps",
        "100000",
        "--json",
        str(out),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in proc.stderr:  # the first note comes once the work has begun
            if line.startswith("training text:"):
                break
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted: the numbers above cover what finished" in stdout
    data = json.loads(out.read_text())
    assert data["interrupted"] is True and data["probe"] == "heads"
