"""scripts/reproduce.sh --profile quick end to end, and `hw2 report` parsed back against the
JSON outputs it was built from."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "reproduce.sh"
PARTS = ("table1", "table2", "rotation", "gpt", "graph", "probes")


def _run(*args: str, timeout: float = 1500) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HW2": f"{sys.executable} -m hw2cli",
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    proc = _run("--profile", "quick", "--out", str(out), "--device", "cpu")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc


def _tables(markdown: str) -> list[list[list[str]]]:
    """Every Markdown table in ``markdown`` as rows of stripped cells (separator rows dropped);
    lines inside fenced code blocks (the GPT samples) are text, never tables."""
    tables, current, fence = [], [], None
    for line in markdown.splitlines() + [""]:
        if fence is None and line.startswith("```"):
            fence = line[: len(line) - len(line.lstrip("`"))]  # closed by exactly this run of backticks
            continue
        if fence is not None:
            fence = None if line == fence else fence
            continue
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells if c):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def _section(report: str, heading_start: str) -> str:
    match = re.search(rf"^## {re.escape(heading_start)}.*?(?=^## |\Z)", report, flags=re.M | re.S)
    assert match, f"no section {heading_start!r}"
    return match.group(0)


def test_every_part_ran_and_every_section_is_present(quick):
    out, proc = quick
    report = (out / "report.md").read_text()
    for part in PARTS:
        meta = json.loads((out / part / "part.json").read_text())
        assert meta["part"] == part and meta["profile"] == "quick" and meta["seconds"] > 0
    for heading in ("Table 1", "Table 2", "Figures 1 and 2", "Figure 3", "Q3.1", "The report's answers"):
        assert "_Not run._" not in _section(report, heading)
    for image in (
        "table1/table.png",
        "table2/table.png",
        "rotation/rotation.png",
        "rotation/preview.png",
        "gpt/run/loss.png",
    ):
        assert f"]({image})" in report
        assert (out / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("part,heading", [("table1", "Table 1"), ("table2", "Table 2")])
def test_padding_tables_parse_back_to_the_json(quick, part, heading):
    out, _ = quick
    data = json.loads((out / part / "result.json").read_text())
    (table,) = _tables(_section((out / "report.md").read_text(), heading))
    header, rows = table[0], table[1:]
    n_rounds = sum(h.startswith("round") for h in header)
    assert n_rounds == data["settings"]["rounds"]
    assert len(rows) == 2 * len(data["conv_types"])
    for row in rows:
        conv, label = row[0], row[1]
        entry = data["conv_types"][conv]
        metric, key = ("val_acc", "val") if label == "Validation" else ("test_acc", "test")
        assert [float(v) for v in row[2 : 2 + n_rounds]] == [round(r[metric], 2) for r in entry["rounds"]]
        mean, std = float(row[2 + n_rounds]), float(row[3 + n_rounds])
        assert mean == round(entry["summary"][key]["mean"], 4)
        assert std == round(entry["summary"][key]["std"], 4)


@pytest.mark.parametrize("heading", ["Table 1", "Table 2"])
def test_quick_tables_are_not_compared_with_the_published_protocol(quick, heading):
    out, _ = quick
    section = _section((out / "report.md").read_text(), heading)
    (table,) = _tables(section)
    assert "published: mean ± std" in table[0] and "this run: mean" in table[0]
    assert "Δ" not in section  # 2 rounds x 3 epochs is not the published 10 x 50
    assert (
        "published numbers come from 10 round(s) of at most 50 epochs, this run from 2 round(s) of at most 3"
        in section
    )
    assert section.count("Data: ") == 1


def test_gpt_part_names_its_corpus_and_samples_are_clean(quick):
    out, _ = quick
    section = _section((out / "report.md").read_text(), "Figure 3")
    assert "Data: this project's own documentation" in section
    corpus = (out / "gpt" / "corpus.txt").read_text(encoding="utf-8")
    assert corpus and not any("\u2500" <= ch <= "\u257f" for ch in corpus)
    for path in (out / "gpt").glob("samples_*.json"):
        for sample in json.loads(path.read_text())["samples"]:
            assert not any("\u2500" <= ch <= "\u257f" for ch in sample["text"])


def test_rotation_table_parses_back_to_the_json(quick):
    out, _ = quick
    data = json.loads((out / "rotation" / "result.json").read_text())
    (table,) = _tables(_section((out / "report.md").read_text(), "Figures 1 and 2"))
    models = [h.removesuffix(" (%)") for h in table[0][1:]]
    assert models == list(data["models"])
    angle_rows = table[1 : 1 + len(data["angles"])]
    assert [float(r[0]) for r in angle_rows] == data["angles"]
    for j, model in enumerate(models):
        assert [float(r[1 + j]) for r in angle_rows] == [
            round(100 * a, 2) for a in data["models"][model]["accuracy"]
        ]


def test_gpt_summary_and_samples_parse_back(quick):
    out, _ = quick
    train = json.loads((out / "gpt" / "train.json").read_text())
    section = _section((out / "report.md").read_text(), "Figure 3")
    (table,) = _tables(section)
    row = dict(zip(table[0], table[1], strict=True))
    assert int(row["steps"]) == train["steps"]
    assert float(row["final val loss"]) == round(train["val_loss"], 4)
    assert float(row["best val loss"]) == round(train["best_val_loss"], 4)
    samples = sorted((out / "gpt").glob("samples_*.json"))
    assert len(samples) == 3
    for path in samples:
        for sample in json.loads(path.read_text())["samples"]:
            assert f"```text\n{sample['text']}\n```" in section


def test_graph_matrices_parse_back(quick):
    out, _ = quick
    section = _section((out / "report.md").read_text(), "Q3.1")
    tables = iter(_tables(section))
    for name in ("report_graph1", "report_graph2"):
        powers = json.loads((out / "graph" / f"{name}_powers.json").read_text())
        lap = json.loads((out / "graph" / f"{name}_laplacian.json").read_text())
        expected = [powers["adjacency"], *(powers["powers"][k] for k in sorted(powers["powers"], key=int))]
        expected += [lap["degree_matrix"], lap["laplacian"]]
        for matrix in expected:
            table = next(tables)
            assert [int(float(c)) for c in table[0][1:]] == powers["nodes"]
            assert [[float(c) for c in row[1:]] for row in table[1:]] == matrix
    check = json.loads((out / "graph" / "check.json").read_text())
    assert not check["ok"]
    for cell in check["wrong_cells"]:
        assert f"[{cell['row']}, {cell['col']}] is {cell['given']}, should be {cell['expected']}" in section


def test_rerun_skips_finished_parts(quick):
    out, _ = quick
    before = (out / "table1" / "part.json").read_text()
    proc = _run("--profile", "quick", "--out", str(out), "--device", "cpu", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("complete, skipped") == len(PARTS)
    assert (out / "table1" / "part.json").read_text() == before


def test_failing_part_stops_with_its_name_and_exit_code(tmp_path):
    try:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA, so --device cuda does not fail")
    except ImportError:
        pass
    proc = _run("--profile", "quick", "--out", str(tmp_path), "--device", "cuda", timeout=300)
    assert proc.returncode == 2
    assert "part 'table1' failed with exit code 2" in proc.stderr
    assert "no CUDA GPU" in proc.stderr
    assert not (tmp_path / "table1" / "part.json").exists()
    assert not (tmp_path / "table2").exists()


def test_bad_arguments_exit_2(tmp_path):
    proc = _run("--profile", "huge", "--out", str(tmp_path), timeout=60)
    assert proc.returncode == 2
    assert "unknown profile 'huge'" in proc.stderr


def test_parts_runs_only_the_listed_parts(tmp_path):
    proc = _run("--profile", "full", "--out", str(tmp_path), "--parts", "graph", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((tmp_path / "graph" / "part.json").read_text())["profile"] == "full"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["graph"]
    report = (tmp_path / "report.md").read_text()
    for title in ("Table 1", "Table 2", "Figures 1 and 2", "Figure 3"):
        assert re.search(rf"^\| {title}.*\| not run \|$", report, flags=re.M), title

    proc = _run("--out", str(tmp_path), "--parts", "graph,tables", timeout=60)
    assert proc.returncode == 2
    assert "unknown part 'tables'" in proc.stderr


def test_report_on_a_folder_without_parts_is_one_line_exit_2(tmp_path):
    from typer.testing import CliRunner

    from hw2cli.cli import app

    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "run scripts/reproduce.sh" in result.stderr
    assert not (tmp_path / "report.md").exists()


def test_samples_with_backticks_stay_inside_their_code_block(tmp_path):
    from hw2cli.report.sections import gpt

    (tmp_path / "train.json").write_text(
        json.dumps(
            {
                "model_type": "gpt-nano",
                "num_params": 1,
                "vocab_size": 2,
                "device": "cpu",
                "precision": "fp32",
                "steps": 1,
                "train_loss": 1.0,
                "val_loss": None,
                "best_val_loss": None,
                "tokens_per_s": None,
                "elapsed_s": 0.1,
                "options": {"block_size": 8, "batch_size": 2, "lr": 1e-3},
            }
        )
    )
    text = "The ```` end"
    (tmp_path / "samples_0.json").write_text(
        json.dumps(
            {
                "prompt": "The ",
                "settings": {"mode": "greedy", "seed": 0},
                "samples": [{"text": text}],
            }
        )
    )
    markdown = "\n".join(gpt(tmp_path))
    assert f"`````text\n{text}\n`````" in markdown
