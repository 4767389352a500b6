"""`hw2 probe NAME --quick` end to end: tables, JSON with its keys, a PNG; bad input exits 2."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hw2cli.cli import app

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"
VERDICTS = {"holds", "partly", "does not hold"}


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    """A small text that needs no download: 40 different sentences, repeated."""
    words = "the dog bit man a cat saw old king queen ran home fast slowly under tree".split()
    lines = [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(6 + i % 5)) + "." for i in range(40)]
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text("\n".join(lines * 12) + "\n", encoding="utf-8")
    return path


def _run_probe(tmp_path, name, *extra):
    png, out = tmp_path / f"{name}.png", tmp_path / f"{name}.json"
    result = runner.invoke(
        app,
        ["probe", name, "--quick", "--device", "cpu", "-q", "--plot", str(png), "--json", str(out), *extra],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert png.read_bytes().startswith(PNG)
    data = json.loads(out.read_text())
    assert data["probe"] == name
    assert data["verdicts"] and all(v["verdict"] in VERDICTS for v in data["verdicts"])
    assert "the report's claims, measured" in result.output
    return data


def test_attention_cost_quick(tmp_path):
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


def test_softmax_scale_quick(tmp_path, text):
    data = _run_probe(tmp_path, "softmax-scale", "--txt-file", str(text))
    assert sorted({r["d_k"] for r in data["rows"]}) == [16, 64, 256]
    assert [t["scaled"] for t in data["training"]] == [True, False]
    assert all(t["val_loss"] > 0 and t["curve"] for t in data["training"])


def test_positions_quick(tmp_path, text):
    data = _run_probe(tmp_path, "positions", "--txt-file", str(text))
    gaps = {(r["causal_mask"], r["pos_emb"]): r["max_gap"] for r in data["permutation"]}
    assert gaps[(False, "none")] < 1e-12 < gaps[(True, "none")]
    runs = {t["pos_emb"]: t for t in data["training"]}
    assert set(runs) == {"none", "learned", "rope"}
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
    data = _run_probe(tmp_path, "heads", "--txt-file", str(text))
    rows = {r["n_head"]: r for r in data["rows"]}
    assert set(rows) == {1, 2} and rows[1]["js_bits"] is None and 0 <= rows[2]["js_bits"] <= 1
    assert rows[1]["num_params"] == rows[2]["num_params"]  # same width, same cost
    assert [len(data["maps"][k]) for k in ("1", "2")] == [1, 2]


@pytest.mark.parametrize(
    "args, message",
    [
        (["probe", "no-such-probe"], "unknown probe 'no-such-probe'"),
        (["probe", "attention-cost", "--n", "0,64"], "below 1"),
        (["probe", "attention-cost", "--n", "64,96"], "not a power of two"),
        (["probe", "softmax-scale", "--dk", "16,24"], "not a power of two"),
        (["probe", "heads", "--steps", "0"], "--steps must be at least 1"),
        (["probe", "receptive-field", "--samples", "0"], "--samples must be at least 1"),
        (["probe", "receptive-field", "--seed", "-1"], "--seed -1 is out of range; use 0 to 4,294,967,295"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
