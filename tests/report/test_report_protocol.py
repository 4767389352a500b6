"""`hw2 report` compares Tables 1/2 with the published numbers only under the published protocol."""

from __future__ import annotations

import json

import pytest

from hw2cli.report.published import PUBLISHED_EPOCHS, PUBLISHED_ROUNDS, TABLES
from hw2cli.report.sections import padding_table


def _round(r: int, test_acc: float) -> dict:
    return {
        "round": r + 1,
        "init_seed": r,
        "val_acc": 99.0,
        "val_acc_kept": 99.0,
        "test_acc": test_acc,
        "test_unshifted_acc": 100.0,
        "epochs": 3,
        "best_epoch": 3,
    }


def write_result(part_dir, rounds: int, epochs: int, test_acc: float = 90.0):
    conv = {
        "circular": {
            "rounds": [_round(r, test_acc) for r in range(rounds)],
            "summary": {"val": {"mean": 99.0, "std": 0.0}, "test": {"mean": test_acc, "std": 0.0}},
        }
    }
    data = {
        "command": "padding-bench",
        "settings": {
            "net": "net1",
            "rounds": rounds,
            "epochs": epochs,
            "precision": "fp32",
            "conv_types": ["circular"],
            "seed": 0,
            "data_sizes": {"train": 2000, "val": 1000, "test": 1000},
        },
        "device": "cpu",
        "path": "sequential",
        "seconds": 12.0,
        "gflop": 12.0,
        "interrupted": False,
        "conv_types": conv,
    }
    part_dir.mkdir(parents=True, exist_ok=True)
    (part_dir / "result.json").write_text(json.dumps(data))


def header_and_row(lines):
    rows = [line for line in lines if line.startswith("| ")]

    def cells(row):
        return [c.strip() for c in row.strip("|").split("|")]

    return cells(rows[0]), cells(rows[1])


def test_same_protocol_shows_the_difference(tmp_path):
    write_result(tmp_path / "table1", PUBLISHED_ROUNDS, PUBLISHED_EPOCHS)
    lines = padding_table(tmp_path / "table1", tmp_path)
    header, validation = header_and_row(lines)
    assert header[-3:] == ["this run: std", "published: mean ± std", "Δ mean"]
    pub_val_mean = TABLES["net1"]["circular"][0]
    assert float(validation[-1]) == pytest.approx(round(99.0 - pub_val_mean, 2))
    assert not any("for reference" in line for line in lines)


@pytest.mark.parametrize("rounds, epochs", [(2, 3), (PUBLISHED_ROUNDS, 3), (2, PUBLISHED_EPOCHS)])
def test_other_protocol_shows_published_as_reference_without_difference(tmp_path, rounds, epochs):
    write_result(tmp_path / "table1", rounds, epochs)
    lines = padding_table(tmp_path / "table1", tmp_path)
    header, validation = header_and_row(lines)
    assert header[-1] == "published: mean ± std" and "Δ mean" not in header
    assert len(validation) == len(header)
    caveat = [line for line in lines if "for reference" in line]
    assert len(caveat) == 1
    assert f"{PUBLISHED_ROUNDS} round(s) of at most {PUBLISHED_EPOCHS} epochs" in caveat[0]
    assert f"{rounds} round(s) of at most {epochs} epochs" in caveat[0]


def test_a_run_interrupted_before_its_first_round_has_as_many_cells_as_its_header(tmp_path):
    write_result(tmp_path / "table1", 0, 3)
    path = tmp_path / "table1" / "result.json"
    data = json.loads(path.read_text())
    data["interrupted"] = True
    data["conv_types"]["circular"]["summary"] = {s: {"mean": None, "std": None} for s in ("val", "test")}
    path.write_text(json.dumps(data))
    lines = padding_table(tmp_path / "table1", tmp_path)
    header, validation = header_and_row(lines)
    assert not any(h.startswith("round ") for h in header)
    assert len(validation) == len(header) and validation[:2] == ["circular", "Validation"]
