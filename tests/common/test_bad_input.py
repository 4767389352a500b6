"""Bad input, as an adversary would give it, one row per kind, across every command.

Every row asserts: the exit code, exactly one line on stderr (``error: ...`` naming the
problem), no traceback, and that every file that existed before is byte-identical after.
Classes of kinds: output paths (issue 11 item 2, issue 22 item 17), numbers (issue 11 item 4,
issue 22 items 14, 15), input files (issue 22 items 11, 16), usage errors (issue 11 item 6).
The kinds that must *work* (``--json -``, a device, a FIFO, a pipe, exact huge weights, long
walk listings) and worker pools (issue 11 item 5) follow the table. Each kind carries
``pytest.mark.kind(CLASS)``; scripts/adversarial.py counts them (docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import TEXT
from typer.testing import CliRunner

from hw2cli.cli import app

runner = CliRunner()
GRAPH1 = "1 2\n1 3\n2 3\n3 4\n"
MATRIX1 = "0 1 1 0\n1 0 1 0\n1 1 0 1\n0 0 1 0\n"
FEATURES1 = "x\n1\n2\n3\n4\n"


@pytest.fixture(scope="module")
def root(tmp_path_factory, two_step_run) -> Path:
    """Inputs of every kind: a graph, its matrix, features, a text, a trained GPT run, saved
    rotation models and a reproduce folder with one part."""
    base = tmp_path_factory.mktemp("bad_input")
    (base / "g.txt").write_text(GRAPH1)
    (base / "m.txt").write_text(MATRIX1)
    (base / "x.csv").write_text(FEATURES1)
    (base / "tiny.txt").write_text(TEXT)
    (base / "afile").write_text("not a folder\n")
    os.symlink(base / "g.txt", base / "g_link.txt")
    os.link(base / "g.txt", base / "g_hard.txt")
    (base / "w1e300.txt").write_text("1 2 1e300\n2 3 1\n")
    (base / "w1e200.txt").write_text("1 2 1e200\n2 3 1\n")
    (base / "w15e308.txt").write_text("1 2 1.5e308\n2 3 1.5\n")
    (base / "m3.txt").write_text("0 1 0\n1 0 1\n0 1 0\n")
    (base / "deep.txt").write_text("[" * 100_000)
    (base / "deep3.txt").write_text("[[[0]]]")
    (base / "bigint.txt").write_text(f"[[0, {10**400}], [1, 0]]")
    (base / "digits5000.txt").write_text(f"[[0, {'9' * 5000}], [1, 0]]")
    (base / "repro" / "graph").mkdir(parents=True)
    (base / "repro" / "graph" / "part.json").write_text('{"title": "graph"}\n')
    shutil.copytree(two_step_run, base / "run")
    result = runner.invoke(
        app,
        [
            "rotate-eval",
            "--dataset",
            "digits",
            "--epochs",
            "1",
            "--mode",
            "plain",
            "--angles",
            "0,90",
            "--device",
            "cpu",
            "--quiet",
            "--save-models",
            str(base / "models"),
        ],
    )
    assert result.exit_code == 0, result.output
    return base


def _snapshot(base: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file() and not p.is_symlink()}


TRAIN = [
    "gpt",
    "train",
    "--txt-file",
    "{tiny}",
    "--model-type",
    "gpt-nano",
    "--max-steps",
    "1",
    "--block-size",
    "8",
    "--batch-size",
    "2",
    "--device",
    "cpu",
    "--quiet",
    "--out",
    "{new}/o",
]
GEN = ["gpt", "generate", "{run}", "--prompt", "The", "--device", "cpu"]
ROT = ["rotate-eval", "--dataset", "digits", "--epochs", "1", "--angles", "0", "--device", "cpu", "--quiet"]
PB = ["padding-bench", "--quiet", "--rounds", "1", "--epochs", "1", "--conv-types", "valid"]
POW = ["graph", "powers", "{g}"]
LAP = ["graph", "laplacian", "{g}"]
CHK = ["graph", "check", "{g}", "--kind", "adjacency", "--matrix", "{m}"]

# (kind, argv, exit code, text the one stderr line must contain), one list per class of kinds
# outputs: collisions with inputs and run directories, unusable places and names, refused before any work
OUTPUTS = [
    ("json-is-edge-list", [*POW, "--json", "{g}"], 2, "would overwrite the input EDGES"),
    ("npz-is-edge-list", [*POW, "--npz", "{g}"], 2, "would overwrite the input EDGES"),
    ("json-is-matrix", ["graph", "powers", "--matrix", "{m}", "--json", "{m}"], 2, "input --matrix"),
    ("json-is-features", [*LAP, "--features", "{x}", "--json", "{x}"], 2, "input --features"),
    ("check-json-is-matrix", [*CHK, "--json", "{m}"], 2, "input --matrix"),
    ("check-json-is-edges", [*CHK, "--json", "{g}"], 2, "input EDGES"),
    ("json-symlink-to-input", [*POW, "--json", "{root}/g_link.txt"], 2, "would overwrite the input EDGES"),
    ("json-hardlink-to-input", [*POW, "--json", "{root}/g_hard.txt"], 2, "would overwrite the input EDGES"),
    ("json-dotdot-to-input", [*POW, "--json", "{root}/repro/../g.txt"], 2, "would overwrite the input EDGES"),
    ("json-and-npz-same-file", [*POW, "--json", "{new}/a", "--npz", "{new}/a"], 2, "both name"),
    ("json-is-folder", [*POW, "--json", "{root}"], 2, "is a directory"),
    ("json-under-a-file", [*POW, "--json", "{root}/afile/out.json"], 2, "is a file"),
    ("json-name-too-long", [*POW, "--json", "{new}/" + "n" * 255 + ".json"], 2, "is 260 bytes long"),
    (
        "json-name-304-bytes",
        [*POW, "--json", "{new}/" + "n" * 304],
        2,
        "is 304 bytes long, longer than the 255 bytes a file name may have here",
    ),
    ("json-folder-name-too-long", [*POW, "--json", "{new}/" + "d" * 300 + "/o.json"], 2, "300 bytes long"),
    (
        "json-path-beyond-path-max",
        [*POW, "--json", "{new}/" + ("d" * 200 + "/") * 21 + "o.json"],
        2,
        "longer than the 4096 bytes a path may have",
    ),
    ("json-extension-too-long", [*POW, "--json", "{new}/a." + "j" * 250], 2, "its extension is too long"),
    ("json-in-proc", [*POW, "--json", "/proc/hw2.json"], 2, "cannot be written"),
    ("npz-to-stdout", [*POW, "--npz", "-"], 2, "standard output takes only text"),
    ("train-json-is-txt-file", [*TRAIN, "--json", "{tiny}"], 2, "input --txt-file"),
    (
        "train-json-inside-out",
        [*TRAIN, "--json", "{new}/o/summary.json"],
        2,
        "inside the run directory --out",
    ),
    (
        "resume-json-is-run-file",
        ["gpt", "train", "--resume", "{run}", "--json", "{run}/config.json"],
        2,
        "inside the run directory --resume",
    ),
    (
        "resume-json-is-model",
        ["gpt", "train", "--resume", "{run}", "--json", "{run}/model.safetensors"],
        2,
        "inside the run directory",
    ),
    ("generate-json-is-model", [*GEN, "--json", "{run}/model.safetensors"], 2, "input RUN_DIR"),
    ("generate-json-is-vocab", [*GEN, "--json", "{run}/vocab.json"], 2, "input RUN_DIR"),
    ("generate-json-is-run-dir", [*GEN, "--json", "{run}"], 2, "would overwrite the input RUN_DIR"),
    (
        "rotate-plot-is-loaded-model",
        [*ROT, "--load-models", "{models}", "--plot", "{models}/plain.safetensors"],
        2,
        "input --load-models",
    ),
    (
        "rotate-json-is-models-config",
        [*ROT, "--load-models", "{models}", "--json", "{models}/config.json"],
        2,
        "input --load-models",
    ),
    (
        "rotate-json-inside-save-models",
        [*ROT, "--save-models", "{models}", "--json", "{models}/r.json"],
        2,
        "inside the run directory --save-models",
    ),
    ("rotate-json-and-plot-same", [*ROT, "--json", "{new}/r", "--plot", "{new}/r"], 2, "both name"),
    ("rotate-preview-to-stdout", [*ROT, "--preview", "-"], 2, "standard output takes only text"),
    ("rotate-plot-is-folder", [*ROT, "--plot", "{root}"], 2, "is a directory"),
    ("bench-json-and-csv-same", [*PB, "--json", "{new}/r", "--csv", "{new}/r"], 2, "both name"),
    ("bench-json-and-csv-stdout", [*PB, "--json", "-", "--csv", "-"], 2, "both write to standard output"),
    ("bench-csv-is-folder", [*PB, "--csv", "{root}"], 2, "is a directory"),
    (
        "report-out-is-part-json",
        ["report", "{root}/repro", "--out", "{root}/repro/graph/part.json"],
        2,
        "input part folder graph",
    ),
    ("report-out-is-folder", ["report", "{root}/repro", "--out", "{root}"], 2, "is a directory"),
    ("preview-folder-is-file", ["padding-bench", "preview", "{root}/afile"], 2, "not a folder"),
    ("json-to-dev-full", [*POW, "--json", "/dev/full"], 2, "could not write --json /dev/full (No space left"),
    (
        "npz-to-dev-full-json-kept",
        [*LAP, "--npz", "/dev/full", "--json", "{new}/kept.json"],
        2,
        "written: --json",
    ),
    ("check-json-to-dev-full", [*CHK, "--json", "/dev/full"], 2, "could not write --json /dev/full"),
]
# numbers: every numeric option has a range, checked at the CLI boundary; values that overflow
NUMBERS = [
    ("train-seed-negative", [*TRAIN, "--seed", "-1"], 2, "--seed -1 is out of range; use 0 to 4,294,967,295"),
    ("train-seed-65-bits", [*TRAIN, "--seed", str(2**65)], 2, "--seed"),
    ("train-seed-2^32", [*TRAIN, "--seed", str(2**32)], 2, "out of range"),
    ("train-lr-1e308", [*TRAIN, "--lr", "1e308"], 2, "--lr 1e308 is out of range"),
    ("train-lr-nan", [*TRAIN, "--lr", "nan"], 2, "--lr nan is out of range"),
    ("train-lr-inf", [*TRAIN, "--lr", "inf"], 2, "--lr inf is out of range"),
    ("train-lr-negative", [*TRAIN, "--lr", "-1"], 2, "--lr -1 is out of range"),
    ("train-batch-size-1e12", [*TRAIN, "--batch-size", "1e12"], 2, "valid integer"),
    ("train-batch-size-huge", [*TRAIN, "--batch-size", str(10**12)], 2, "--batch-size"),
    ("train-block-size-0", [*TRAIN, "--block-size", "0"], 2, "--block-size 0 is out of range"),
    ("train-epochs-0", [*TRAIN, "--epochs", "0"], 2, "--epochs 0 is out of range"),
    ("train-dropout-1.5", [*TRAIN, "--dropout", "1.5"], 2, "--dropout 1.5 is out of range"),
    ("train-val-fraction-0.95", [*TRAIN, "--val-fraction", "0.95"], 2, "--val-fraction 0.95"),
    ("train-val-fraction-1", [*TRAIN, "--val-fraction", "1"], 2, "--val-fraction 1"),
    ("train-weight-decay-negative", [*TRAIN, "--weight-decay", "-0.1"], 2, "--weight-decay"),
    ("train-clip-negative", [*TRAIN, "--clip-grad-norm", "-1"], 2, "--clip-grad-norm"),
    ("train-warmup-negative", [*TRAIN, "--warmup-steps", "-5"], 2, "--warmup-steps"),
    ("train-eval-interval-0", [*TRAIN, "--eval-interval", "0"], 2, "--eval-interval"),
    ("train-eval-steps-0", [*TRAIN, "--eval-steps", "0"], 2, "--eval-steps"),
    ("train-log-interval-0", [*TRAIN, "--log-interval", "0"], 2, "--log-interval"),
    ("train-min-lr-nan", [*TRAIN, "--min-lr", "nan"], 2, "--min-lr"),
    (
        "generate-temperature-1e-300",
        [*GEN, "--temperature", "1e-300"],
        2,
        "--temperature 1e-300 is out of range",
    ),
    ("generate-temperature-inf", [*GEN, "--temperature", "inf"], 2, "--temperature"),
    ("generate-top-k-0", [*GEN, "--top-k", "0"], 2, "--top-k"),
    ("generate-top-p-nan", [*GEN, "--top-p", "nan"], 2, "--top-p"),
    ("generate-max-new-tokens-negative", [*GEN, "--max-new-tokens", "-1"], 2, "--max-new-tokens"),
    ("generate-seed-70-bits", [*GEN, "--seed", str(2**70)], 2, "--seed"),
    ("rotate-lr-1e300", [*ROT, "--lr", "1e300"], 2, "--lr 1e300 is out of range"),
    ("rotate-batch-size-1e12", [*ROT, "--batch-size", "1e12"], 2, "--batch-size"),
    ("rotate-epochs-0", [*ROT, "--epochs", "0"], 2, "--epochs"),
    ("rotate-seed-negative", [*ROT, "--seed", "-1"], 2, "--seed"),
    ("rotate-angles-overflow", [*ROT, "--angles", "-1e308:1e308:1"], 2, "bad --angles"),
    ("rotate-angles-1e400", [*ROT, "--angles", "0:1e400:1"], 2, "bad --angles"),
    ("rotate-angles-tiny-step", [*ROT, "--angles", "0:360:1e-300"], 2, "too many"),
    ("rotate-angle-nan", [*ROT, "--angles", "nan"], 2, "bad --angles"),
    ("bench-seed-negative", [*PB, "--seed", "-1"], 2, "--seed -1 is out of range"),
    ("bench-rounds-0", [*PB, "--rounds", "0"], 2, "--rounds 0"),
    ("bench-workers-huge", [*PB, "--workers", "99999"], 2, "--workers 99999"),
    ("preview-per-class-0", ["padding-bench", "preview", "{new}/p", "--per-class", "0"], 2, "--per-class 0"),
    ("preview-seed-64-bits", ["padding-bench", "preview", "{new}/p", "--seed", str(2**64)], 2, "--seed"),
    ("powers-max-power-21", [*POW, "--max-power", "21"], 2, "--max-power 21 is out of range; use 1 to 20"),
    ("powers-length-21", [*POW, "--walks", "1", "2", "--length", "21"], 2, "--length 21"),
    ("powers-max-walks-0", [*POW, "--walks", "1", "2", "--max-walks", "0"], 2, "--max-walks 0"),
    ("powers-max-walks-huge", [*POW, "--walks", "1", "2", "--max-walks", str(10**7)], 2, "--max-walks"),
    ("laplacian-eigs-negative", [*LAP, "--eigs", "-1"], 2, "--eigs -1"),
    (
        "check-power-0",
        ["graph", "check", "{g}", "--kind", "power", "--power", "0", "--matrix", "{m}"],
        2,
        "--power 0",
    ),
    (
        "powers-weight-1e300-max-power-20",  # exact ints of 6,000 digits: beyond Python's int-to-str limit
        ["graph", "powers", "{root}/w1e300.txt", "--max-power", "20"],
        2,
        "A^2 has entries beyond the largest float64 (about 1.8e308); use --max-power 1 or smaller weights",
    ),
    (
        "powers-float-weights-overflow",
        ["graph", "powers", "{root}/w15e308.txt"],
        2,
        "A^2 has entries beyond the largest float64",
    ),
    (
        "check-power-weight-1e200",  # was OverflowError: int too large to convert to float
        ["graph", "check", "{root}/w1e200.txt", "--kind", "power", "--matrix", "{root}/m3.txt"],
        2,
        "A^2 has entries beyond the largest float64 (about 1.8e308); use --power 1 or smaller weights",
    ),
    (
        "walk-weight-beyond-float64",
        ["graph", "powers", "{root}/w1e300.txt", "--max-power", "1", "--walks", "1", "1", "--length", "20"],
        2,
        "(A^20)[1, 1] is beyond the largest float64 (about 1.8e308); use a smaller --length",
    ),
    (
        "weights-sum-beyond-float64",
        ["graph", "laplacian", "{root}/huge.txt"],
        2,
        "sum beyond the largest float64",
    ),
    ("rotate-angle-beyond-1e6", [*ROT, "--angles", "0:2e6:1"], 2, "beyond ±1,000,000 degrees"),
]
# input files: names, nesting and numbers a parser must refuse in one line
INPUTS = [
    ("edge-list-name-too-long", ["graph", "powers", "{new}/" + "e" * 300], 2, "File name too long"),
    ("weight-inf", ["graph", "powers", "{root}/inf.txt"], 2, "finite"),
    (
        "matrix-nested-100000-deep",  # was RecursionError
        ["graph", "powers", "--matrix", "{root}/deep.txt"],
        2,
        "nests brackets 100000 levels deep; a matrix is a list of rows",
    ),
    ("matrix-nested-3-deep", ["graph", "powers", "--matrix", "{root}/deep3.txt"], 2, "3 levels deep"),
    (
        "matrix-integer-beyond-float64",
        ["graph", "powers", "--matrix", "{root}/bigint.txt"],
        2,
        "beyond float64 (about ±1.8e308)",
    ),
    (
        "matrix-integer-of-5000-digits",
        ["graph", "powers", "--matrix", "{root}/digits5000.txt"],
        2,
        "is not a nested list of numbers",
    ),
    ("weight-nan", ["graph", "powers", "{root}/nan.txt"], 2, "finite"),
]
# usage errors: one line, exit 2, instead of a framed usage box
USAGE = [
    ("int-option-not-a-number", [*POW, "--max-power", "two"], 2, "valid integer"),
    ("float-option-not-a-number", [*TRAIN, "--lr", "fast"], 2, "'--lr'"),
    ("missing-argument", ["report"], 2, "Missing argument"),
    ("missing-required-option", ["gpt", "generate", "{run}"], 2, "Missing option '--prompt'"),
    ("unknown-option", [*POW, "--colour"], 2, "No such option: --colour"),
    ("unknown-command", ["graph", "paths"], 2, "No such command"),
    ("option-without-value", [*POW, "--json"], 2, "requires an argument"),
    ("extra-argument", [*POW, "{m}"], 2, "unexpected extra argument"),
    ("walks-one-value", [*POW, "--walks", "1"], 2, "--walks"),
]


def kinds(cls: str, rows: list[tuple]) -> list:
    """Table rows as adversarial kinds of class ``cls`` (tests/conftest.py, docs/reliability.md)."""
    return [pytest.param(*row, id=row[0], marks=pytest.mark.kind(cls)) for row in rows]


CASES = [
    *kinds("output paths", OUTPUTS),
    *kinds("numbers", NUMBERS),
    *kinds("input files", INPUTS),
    *kinds("usage errors", USAGE),
]


@pytest.mark.parametrize("kind, argv, code, message", CASES)
def test_bad_input_is_one_line(root, tmp_path, kind, argv, code, message):
    (root / "inf.txt").write_text("1 2 inf\n")
    (root / "nan.txt").write_text("1 2 nan\n")
    (root / "huge.txt").write_text("1 2 1e308\n2 3 1e308\n")
    paths = {
        "root": root,
        "g": root / "g.txt",
        "m": root / "m.txt",
        "x": root / "x.csv",
        "tiny": root / "tiny.txt",
        "run": root / "run",
        "models": root / "models",
        "new": tmp_path,
    }
    before = _snapshot(root)
    result = runner.invoke(app, [a.format(**paths) for a in argv])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == code, (kind, result.output)
    assert len(lines) == 1 and lines[0].startswith("error: "), (kind, result.stderr)
    assert message in lines[0], (kind, lines[0])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert _snapshot(root) == before, kind
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # never replaced by a regular file


@pytest.mark.kind("usage errors")
def test_usage_error_through_the_real_entry_point(run_hw2):
    """The same one line from a shell, and `hw2 graph` alone still shows the help."""
    bad = run_hw2("graph", "powers", "hw2cli/examples/graph1.txt", "--max-power", "x", timeout=60)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: hw2 graph powers: ")
    bare = run_hw2("graph", timeout=60)
    assert "Usage: hw2 graph" in bare.stdout + bare.stderr and "powers" in bare.stdout + bare.stderr


# ----------------------------------------------------------------------------- kinds that must work


@pytest.mark.kind("must work")
def test_json_dash_gives_pure_json_on_stdout_and_the_table_on_stderr(tmp_path):
    (tmp_path / "g.txt").write_text(GRAPH1)
    result = runner.invoke(app, ["graph", "powers", str(tmp_path / "g.txt"), "--json", "-"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["powers"]["2"][0] == [2, 1, 1, 1]  # A^2 of the triangle with a tail, row 1, by hand
    assert "A²" in result.stderr


@pytest.mark.kind("must work")
def test_json_dev_stdout_is_standard_output(tmp_path):
    (tmp_path / "g.txt").write_text(GRAPH1)
    result = runner.invoke(app, ["graph", "laplacian", str(tmp_path / "g.txt"), "--json", "/dev/stdout"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["command"] == "graph laplacian"


@pytest.mark.kind("must work")
def test_report_out_dash(tmp_path, monkeypatch):
    from hw2cli.report import build

    monkeypatch.setattr(build, "build_report", lambda run_dir: build.Report("# report\n", ["graph"], []))
    result = runner.invoke(app, ["report", str(tmp_path), "--out", "-"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "# report\n"


@pytest.mark.kind("must work")
def test_devices_and_fifos_are_written_into_never_replaced(tmp_path, run_hw2):
    (tmp_path / "g.txt").write_text(GRAPH1)
    result = runner.invoke(app, ["graph", "powers", str(tmp_path / "g.txt"), "--json", "/dev/null"])
    assert result.exit_code == 0 and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    done = run_hw2("graph", "powers", str(tmp_path / "g.txt"), "--json", str(fifo), timeout=60)
    reader.join(timeout=60)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert json.loads(got[0])["nodes"] == [1, 2, 3, 4]


@pytest.mark.kind("must work")
def test_weights_beyond_int64_stay_exact_and_check_agrees(tmp_path):
    """1e19 > 2^63 wrapped to -9223372036854775808; now A^2[1,1] = 10^38 exactly and the
    right matrix is called right."""
    (tmp_path / "g.txt").write_text("1 2 1e19\n2 3 1\n")
    (tmp_path / "a.txt").write_text(f"0 {10**19} 0\n{10**19} 0 1\n0 1 0\n")
    powers = runner.invoke(
        app, ["graph", "powers", str(tmp_path / "g.txt"), "--json", str(tmp_path / "p.json")]
    )
    assert powers.exit_code == 0, powers.output
    a2 = json.loads((tmp_path / "p.json").read_text())["powers"]["2"]
    assert a2 == [[10**38, 0, 10**19], [0, 10**38 + 1, 0], [10**19, 0, 1]]
    assert "-9223372036854775808" not in powers.stdout and "2^53" in powers.stdout
    check = runner.invoke(
        app,
        [
            "graph",
            "check",
            str(tmp_path / "g.txt"),
            "--kind",
            "adjacency",
            "--matrix",
            str(tmp_path / "a.txt"),
        ],
    )
    assert check.exit_code == 0, check.output


@pytest.mark.kind("input files")
@pytest.mark.parametrize(
    "name, text",
    [
        ("edge list", "\ufeff3 1\n1 2\n"),
        ("matrix rows", "\ufeff0 1 1\n1 0 0\n1 0 0\n"),
        ("nested-list matrix", "\ufeff[[0, 1, 1], [1, 0, 0], [1, 0, 0]]"),
    ],
)
def test_a_byte_order_mark_is_ignored(tmp_path, name, text):
    """Issue 22 item 11: a BOM (Windows Notepad) turned node 3 into "\ufeff3"; now the graph is
    the star 1-2, 1-3 either way: A^2[1,1] = deg(1) = 2."""
    (tmp_path / "g.txt").write_text(text, encoding="utf-8")
    given = (
        ["{}".format(tmp_path / "g.txt")] if name == "edge list" else ["--matrix", str(tmp_path / "g.txt")]
    )
    result = runner.invoke(app, ["graph", "powers", *given, "--json", "-"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["nodes"] == [1, 2, 3]
    assert data["powers"]["2"] == [[2, 0, 0], [0, 1, 1], [0, 1, 1]]


@pytest.mark.kind("must work")
def test_a_json_name_of_255_bytes_is_written(tmp_path):
    """The longest name the file system takes works: hw2's temporary name is shortened to fit."""
    out = tmp_path / ("n" * 250 + ".json")
    (tmp_path / "g.txt").write_text(GRAPH1)
    result = runner.invoke(app, ["graph", "powers", str(tmp_path / "g.txt"), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["nodes"] == [1, 2, 3, 4]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["g.txt", out.name])  # no temporary left


@pytest.mark.kind("must work")
def test_an_edge_list_from_a_pipe_is_read(run_hw2):
    """`hw2 graph powers /dev/stdin < g.txt` (or <(...)): a pipe, not a regular file."""
    done = run_hw2("graph", "powers", "/dev/stdin", "--json", "-", input=GRAPH1, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["powers"]["2"][0] == [2, 1, 1, 1]


@pytest.mark.kind("input files")
def test_an_input_larger_than_the_limit_is_refused_without_reading_it_all(tmp_path, monkeypatch):
    """/dev/zero never ends: hw2 reads at most MAX_INPUT_BYTES (+1) of any input."""
    from hw2cli.common import inputs

    monkeypatch.setattr(inputs, "MAX_INPUT_BYTES", 1000)
    for source in ("/dev/zero", tmp_path / "big.txt"):
        (tmp_path / "big.txt").write_text("1 2\n" * 300)
        result = runner.invoke(app, ["graph", "powers", str(source)])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == (
            f"error: edge list {source} is larger than 1,000 bytes, the most hw2 reads; give a smaller file"
        )


@pytest.mark.kind("must work")
def test_long_walk_listings_stream_every_line(tmp_path):
    """K5, length 10: (4^10 - (-1)^10)/5 = 209,715 walks from 1 to 2 (for K_n and i != j,
    (A^k)[i, j] = ((n-1)^k - (-1)^k)/n), all listed."""
    (tmp_path / "k5.txt").write_text("".join(f"{i} {j}\n" for i in range(1, 6) for j in range(i + 1, 6)))
    result = runner.invoke(
        app,
        [
            "graph",
            "powers",
            str(tmp_path / "k5.txt"),
            "--walks",
            "1",
            "2",
            "--length",
            "10",
            "--max-walks",
            "1000000",
        ],
    )
    assert result.exit_code == 0
    walks = [line for line in result.stdout.splitlines() if "→" in line and line.strip()[0].isdigit()]
    assert len(walks) == (4**10 - 1) // 5 == 209_715
    assert walks[-1].split(". ", 1)[1].startswith("1 → 5 →")
    assert "209715 walks, and (A¹⁰)[1, 2] = 209715 ✓" in result.stdout


@pytest.mark.kind("must work")
def test_max_walks_help_states_the_cost():
    result = runner.invoke(app, ["graph", "powers", "--help"])
    assert "about 13 bytes of --json per node" in " ".join(result.output.replace("│", " ").split())


@pytest.mark.kind("must work")
def test_plot_into_a_vanished_folder_keeps_the_json(root, tmp_path, monkeypatch):
    """--plot's folder is replaced by a file during the run (a vanished folder alone is made
    again): the --json of the finished work is written and one line names what was lost."""
    from hw2cli.rotation import experiment

    real = experiment.run_rotation_experiment

    def run_then_remove_folder(*args, **kwargs):
        result = real(*args, **kwargs)
        shutil.rmtree(tmp_path / "plots")
        (tmp_path / "plots").write_text("a file now stands where the folder was\n")
        return result

    monkeypatch.setattr(experiment, "run_rotation_experiment", run_then_remove_folder)
    plot = tmp_path / "plots" / "p.png"
    result = runner.invoke(
        app,
        [
            *ROT,
            "--load-models",
            str(root / "models"),
            "--mode",
            "plain",
            "--json",
            str(tmp_path / "r.json"),
            "--plot",
            str(plot),
        ],
    )
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "could not write --plot" in result.stderr
    assert "written: --json" in result.stderr
    assert json.loads((tmp_path / "r.json").read_text())["models"]["plain"]["accuracy"]


@pytest.mark.kind("must work")
def test_json_is_always_valid_and_says_what_was_not_finite(tmp_path):
    from hw2cli.common.io import write_json

    path = write_json(tmp_path / "n.json", {"loss": [1.5, float("nan")], "best": float("inf"), "n": 2**70})
    text = path.read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert data["loss"] == [1.5, None] and data["best"] is None and data["n"] == 2**70
    assert data["non_finite"] == [{"path": "loss[1]", "value": "nan"}, {"path": "best", "value": "inf"}]


# ----------------------------------------------------------------------------- worker pools


@pytest.mark.kind("worker pools")
def test_failing_workers_end_the_run_with_their_error(monkeypatch):
    """A worker that fails at start (it used to be restarted forever) or in a job ends the
    pool with the worker's error in one line; rounds finished before it are kept."""
    from hw2cli.padding import bench
    from hw2cli.padding.model import PaddingNetConfig
    from hw2cli.padding.options import PaddingOptions
    from hw2cli.padding.train import TrainSettings

    monkeypatch.setattr(bench, "matmul_peak_gflops", lambda *args: 10.0)  # not what is tested here
    monkeypatch.setattr(bench, "estimate_seconds", lambda *args: 0.0)
    opts = PaddingOptions(conv_types="valid", rounds=2, epochs=1, device="cpu", workers=2)
    opts.seed = -1  # past the options' check: a seed the workers cannot draw data with
    sizes = {"train": 40, "val": 20, "test": 20}
    r = bench.run_padding_bench(
        opts, path="cpu-processes", data_sizes=sizes, settings=TrainSettings(batch_size=20)
    )
    assert r.error.startswith("worker failed at start: ValueError") and r.rounds_done == 0
    got = []
    data = dict(seed=0, independent_val=False, n_train=40, n_val=20, n_test=20)
    cfg = PaddingNetConfig("net1", "valid")
    jobs = [(cfg, 0), (cfg, 2**70)]  # the second job fails in the worker (seed overflows torch's int64)
    with pytest.raises(bench.WorkerError) as failed:
        bench._cpu_processes(
            jobs, data, TrainSettings(epochs=1, batch_size=20), 1, bench.Reporter(), got.append
        )
    assert str(failed.value).startswith("a worker failed: ValueError: Overflow") and "\n" not in str(
        failed.value
    )
    assert [o.round for o in got] == [0]


@pytest.mark.kind("worker pools")
def test_bench_writes_finished_rounds_when_a_worker_fails(tmp_path, monkeypatch):
    from hw2cli.padding import bench
    from hw2cli.padding.train import RoundOutcome

    def one_round_then_fail(jobs, data_args, settings, workers, reporter, done):
        done(RoundOutcome("valid", 0, 90.0, 90.0, 80.0, 85.0, 1, 1, [0.5]))
        raise bench.WorkerError("a worker failed: RuntimeError: boom")

    monkeypatch.setattr(bench, "_cpu_processes", one_round_then_fail)
    result = runner.invoke(
        app,
        [
            *PB,
            "--rounds",
            "2",
            "--workers",
            "2",
            "--device",
            "cpu",
            "--json",
            str(tmp_path / "b.json"),
            "--csv",
            str(tmp_path / "b.csv"),
        ],
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: a worker failed: RuntimeError: boom; the 1 finished round(s) were written"
    )
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["error"] and [r["round"] for r in data["conv_types"]["valid"]["rounds"]] == [
        1
    ]  # rounds are numbered from 1 in every output
    assert len((tmp_path / "b.csv").read_text().splitlines()) == 2  # header + the finished round


@pytest.mark.kind("input files")
def test_characters_numpy_misreads_never_reach_its_parser(tmp_path):
    """Found by fuzzing: numpy 2.4's loadtxt reads U+20000 as the integer 131024 and dies of
    SIGSEGV on U+C13A5. hw2 reads them as names (in a subprocess: a crash must not take
    pytest down)."""
    edges = tmp_path / "g.txt"
    edges.write_text("\U00020000 1\n\U000c13a5 2\n1 2\n", encoding="utf-8")
    script = "import sys; from hw2cli.graph.io import read_edgelist; print(read_edgelist(sys.argv[1]).nodes)"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-c", script, str(edges)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    names = ["\U00020000", "1", "\U000c13a5", "2"]
    assert done.stdout.strip() == repr(names)
