"""`hw2 reproduce --profile quick` end to end (driven in-process), and `hw2 report` parsed back
against the JSON outputs it was built from."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hw2cli.cli import app
from hw2cli.probe.registry import PROBES
from hw2cli.reproduce.parts import PART_NAMES, PROFILES

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def quick_arg(part: str, flag: str) -> int:
    """The value of ``flag`` in the quick profile's options for ``part``."""
    args = getattr(PROFILES["quick"], part)
    return int(args[args.index(flag) + 1])


def reproduce(*args: str):
    return runner.invoke(app, ["reproduce", *args])


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    result = reproduce("--profile", "quick", "--out", str(out), "--device", "cpu")
    assert result.exit_code == 0, result.output
    return out, result


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
    out, _ = quick
    report = (out / "report.md").read_text()
    for part in PART_NAMES:
        meta = json.loads((out / part / "part.json").read_text())
        assert meta["part"] == part and meta["profile"] == "quick" and meta["seconds"] > 0
        assert meta["status"] == "finished" and set(meta["files"]) >= {"log.txt"}
        assert not (out / f".{part}.next").exists()  # every staged folder was put in place
    assert sorted(p.name for p in out.iterdir()) == sorted([*PART_NAMES, "report.md"])  # lock gone
    for heading in ("Table 1", "Table 2", "Figures 1 and 2", "Figure 3", "Q3.1", "The report's answers"):
        assert "_Not run._" not in _section(report, heading)
    for image in (
        "table1/table.png",
        "table2/table.png",
        "rotation/rotation.png",
        "rotation/preview.png",
        "gpt/run/loss.png",
        "probes/heads.png",
    ):
        assert f"]({image})" in report
        assert (out / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_conclusion_of_the_report_disagrees_and_the_table_is_the_runs(quick):
    """The quick profile tells the report's story: every conclusion of the tables, figures, GPT
    and graphs agrees; a probe claim agrees or is undecided (inconclusive at the quick sizes),
    never contradicted (the fixture's exit 0 says none disagrees; this reads the table)."""
    from hw2cli.report.conclusions import CONCLUSIONS, decide
    from hw2cli.report.sections import load_part

    out, result = quick
    head = (out / "report.md").read_text().split("## Parts and times")[0]
    assert "This is the **quick profile**: " in head and "It leaves out CIFAR-10" in head
    (table,) = _tables(head)
    assert table[0] == ["where", "conclusion", "evidence from this run", "this run"]
    rows = table[1:]
    assert len(rows) == len(CONCLUSIONS)
    for row, conclusion in zip(rows, CONCLUSIONS, strict=True):
        allowed = ("**agrees**", "**undecided**") if conclusion.part == "probes" else ("**agrees**",)
        assert row[3] in allowed, row
    findings = decide({p: load_part(p, out / p) for p in PART_NAMES})
    assert [r[2] for r in rows] == [f.evidence for f in findings.findings]
    assert f"conclusions: {findings.counts()}" in result.stdout
    assert "this is the quick profile: it trains on small offline data" in result.stderr


def test_the_estimate_comes_first_and_each_part_says_where_its_log_is(quick):
    out, result = quick
    err = result.stderr
    assert "estimated wall time of the quick reproduction: about" in err
    assert err.index("estimated wall time") < err.index("== table1")
    for part in PART_NAMES:
        assert f"== {part}: " in err and f"log {out / ('.' + part + '.next')}/log.txt" in err
    assert f"report: {out / 'report.md'}" in result.stdout


def test_the_report_is_what_hw2_report_builds_from_the_folder(quick):
    from hw2cli.report.build import build_report

    out, _ = quick
    assert (out / "report.md").read_text() == build_report(out).markdown


@pytest.mark.parametrize("part,heading", [("table1", "Table 1"), ("table2", "Table 2")])
def test_padding_tables_parse_back_to_the_json(quick, part, heading):
    out, _ = quick
    data = json.loads((out / part / "result.json").read_text())
    (table,) = _tables(_section((out / "report.md").read_text(), heading))
    header, rows = table[0], table[1:]
    n_rounds = sum(h.startswith("round") for h in header)
    assert n_rounds == data["settings"]["rounds"] == quick_arg(part, "--rounds")
    assert len(rows) == 2 * len(data["conv_types"])
    for row in rows:
        conv, label = row[0], row[1]
        entry = data["conv_types"][conv]
        metric, key = ("val_acc", "val") if label == "Validation" else ("test_acc", "test")
        assert [float(v) for v in row[2 : 2 + n_rounds]] == [round(r[metric], 2) for r in entry["rounds"]]
        mean, std = float(row[2 + n_rounds]), float(row[3 + n_rounds])
        assert mean == round(entry["summary"][key]["mean"], 4)
        assert std == round(entry["summary"][key]["std"], 4)


@pytest.mark.parametrize("part,heading", [("table1", "Table 1"), ("table2", "Table 2")])
def test_quick_tables_are_not_compared_with_the_published_protocol(quick, part, heading):
    out, _ = quick
    rounds, epochs = quick_arg(part, "--rounds"), quick_arg(part, "--epochs")
    section = _section((out / "report.md").read_text(), heading)
    (table,) = _tables(section)
    assert "published: mean ± std" in table[0] and "this run: mean" in table[0]
    assert "Δ" not in section  # fewer, shorter rounds than the published 10 x 50
    assert (
        "published numbers come from 10 round(s) of at most 50 epochs, this run from "
        f"{rounds} round(s) of at most {epochs}" in section
    )
    assert section.count("Data: ") == 1


def test_gpt_part_trains_on_the_builtin_corpus_and_names_it(quick):
    from hw2cli.common.corpus import builtin_corpus

    out, _ = quick
    section = _section((out / "report.md").read_text(), "Figure 3")
    assert "Data: hw2's own docstrings (every module, class and function of the hw2cli package)" in section
    corpus = (out / "gpt" / "corpus.txt").read_text(encoding="utf-8")
    assert corpus == builtin_corpus()
    assert json.loads((out / "gpt" / "train.json").read_text())["options"]["txt_file"].endswith("corpus.txt")
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
    assert int(row["steps"]) == train["steps"] == quick_arg("gpt", "--max-steps")
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


def test_probes_ran_with_quick_sizes_and_every_verdict_is_in_the_report(quick):
    out, _ = quick
    section = _section((out / "report.md").read_text(), "The report's answers")
    log = (out / "probes" / "log.txt").read_text()
    # every probe once, attention-cost first (alone), each ended by its exit, wall and CPU time
    blocks = log.split("\n$ hw2 ")[1:]
    assert [b.split()[1] for b in blocks] == [p.name for p in PROBES]
    assert all(
        re.fullmatch(r"\[exit 0 after [0-9.]+ s, [0-9.]+ s of CPU\]", b.splitlines()[-1]) for b in blocks
    )
    for name in ("attention-cost", "receptive-field", "softmax-scale", "heads", "positions"):
        assert f"$ hw2 probe {name} --quick " in log  # the quick sizes, never the default ones
        data = json.loads((out / "probes" / f"{name}.json").read_text())
        for v in data["verdicts"]:
            assert f"`{name}` | {v['claim'].replace('|', chr(92) + '|')}" in section
            assert f"**{v['verdict']}**" in section


def test_rerun_skips_finished_parts(quick):
    out, _ = quick
    before = {p: (out / p / "part.json").read_text() for p in PART_NAMES}
    result = reproduce("--profile", "quick", "--out", str(out), "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("finished before, skipped") == len(PART_NAMES)
    assert {p: (out / p / "part.json").read_text() for p in PART_NAMES} == before
    assert "estimated wall time" not in result.stderr  # nothing left to run


def test_a_failing_step_stops_the_run_with_its_name_and_exit_code_and_starts_nothing_else(
    tmp_path, monkeypatch
):
    try:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA, so --device cuda does not fail")
    except ImportError:
        pass
    from hw2cli.reproduce import run

    monkeypatch.setattr(run, "slots", lambda profile: 2)  # both tables start, the graphs wait
    result = reproduce(
        "--profile", "quick", "--out", str(tmp_path), "--device", "cuda", "--parts", "table1,table2,graph"
    )
    assert result.exit_code == 2
    assert "error: part 'table1' failed with exit code 2 at `padding-bench`" in result.stderr
    assert "no CUDA GPU" in result.stderr  # the end of the part's log
    assert sorted(p.name for p in tmp_path.iterdir()) == [".table1.next", ".table2.next"]  # kept to read
    assert (tmp_path / ".table1.next" / "log.txt").is_file()
    assert re.search(r"graph\s+│\s+not reached", result.stdout), result.stdout


def test_bad_arguments_are_one_line_exit_2(tmp_path):
    for args, says in (
        (["--profile", "huge"], "huge"),
        (["--parts", "graph,tables"], "--parts tables is not a part"),
        (["--device", "tpu"], "tpu"),
    ):
        result = reproduce("--out", str(tmp_path / "r"), *args)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], lines
    assert not (tmp_path / "r").exists()


def test_parts_runs_only_the_listed_parts(full_graph_run):
    out, _ = full_graph_run
    assert json.loads((out / "graph" / "part.json").read_text())["profile"] == "full"
    assert sorted(p.name for p in out.iterdir()) == ["graph", "report.md"]
    report = (out / "report.md").read_text()
    for title in ("Table 1", "Table 2", "Figures 1 and 2", "Figure 3", "The report's answers"):
        assert re.search(rf"^\| {title}.*\| not run \|$", report, flags=re.M), title


def test_the_script_is_a_thin_wrapper_of_hw2_reproduce_and_nothing_needs_perl(tmp_path):
    env = {**os.environ, "HW2": f"{sys.executable} -m hw2cli", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "reproduce.sh"), "--out", str(tmp_path), "--profile", "huge"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2 and "error: " in proc.stderr and "huge" in proc.stderr
    sources = [*REPO.glob("scripts/*"), *REPO.glob("hw2cli/**/*.py")]
    assert not [p for p in sources if re.search(r"\bperl\b", p.read_text(errors="replace"))]


def test_report_on_a_folder_without_parts_is_one_line_exit_2(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "run hw2 reproduce" in result.stderr
    assert not (tmp_path / "report.md").exists()


def test_samples_with_backticks_stay_inside_their_code_block(tmp_path):
    from hw2cli.common.io import write_json
    from hw2cli.gpt import render
    from hw2cli.gpt.sample import GenerateResult
    from hw2cli.gpt.train import TrainOptions, TrainResult
    from hw2cli.report.sections import gpt

    options = {**TrainOptions().__dict__, "block_size": 8, "batch_size": 2}
    train = TrainResult(
        "run", "gpt-nano", 1, 2, "cpu", "fp32", 1, 0, 0, 1, 1, 1.0, None, None, None, 0.1, None, False
    )
    train.options = options
    write_json(tmp_path / "train.json", render.to_json(train))
    settings = {
        "mode": "greedy",
        "temperature": None,
        "top_k": None,
        "top_p": None,
        "max_new_tokens": 5,
        "seed": 0,
    }
    write_json(
        tmp_path / "samples_0.json", render.to_json(GenerateResult("run", "The ", settings, ["```` end"]))
    )
    markdown = "\n".join(gpt(tmp_path, tmp_path))
    assert "`````text\nThe ```` end\n`````" in markdown
