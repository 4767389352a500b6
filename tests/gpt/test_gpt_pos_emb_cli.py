"""`hw2 gpt train --pos-emb` (and its old spelling `--abs-emb`), and runs written before pos_emb."""

from __future__ import annotations

import json

import pytest
from helpers import TEXT, train_args
from typer.testing import CliRunner

from hw2cli.cli import app
from hw2cli.gpt.saved import load_run

runner = CliRunner()


def train(tmp_path, out, *extra):
    corpus = tmp_path / "t.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    return runner.invoke(app, [*train_args(corpus, tmp_path / out), "--sample-interval", "0", *extra])


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], "rope"),
        (["--pos-emb", "none"], "none"),
        (["--pos-emb", "learned"], "learned"),
        (["--abs-emb"], "learned"),
    ],
)
def test_pos_emb_reaches_the_saved_model(tmp_path, argv, expected):
    result = train(tmp_path, "run", *argv)
    assert result.exit_code == 0, result.output
    model, _, options = load_run(tmp_path / "run")
    assert model.config.pos_emb == options["pos_emb"] == expected
    assert (model.pos_emb is not None) == (expected == "learned")


def test_unknown_pos_emb_is_one_line_exit_2(tmp_path):
    result = train(tmp_path, "run", "--pos-emb", "alibi")
    assert result.exit_code == 2 and "'alibi' is not one of 'rope', 'learned', 'none'" in result.stderr


def test_a_run_saved_with_abs_emb_generates_and_resumes_with_learned_positions(tmp_path):
    assert train(tmp_path, "run", "--pos-emb", "learned").exit_code == 0
    path = tmp_path / "run" / "config.json"
    cfg = json.loads(path.read_text())
    cfg["model"]["abs_emb"] = cfg["model"].pop("pos_emb") == "learned"  # the layout before pos_emb
    cfg["train"]["abs_emb"] = cfg["train"].pop("pos_emb") == "learned"
    path.write_text(json.dumps(cfg))
    assert load_run(tmp_path / "run")[0].config.pos_emb == "learned"
    result = runner.invoke(app, ["gpt", "train", "--resume", str(tmp_path / "run"), "--max-steps", "4", "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "state.json").read_text())["step"] == 4
    assert load_run(tmp_path / "run")[0].config.pos_emb == "learned"
