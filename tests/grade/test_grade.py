"""`hw2 grade gpt` over a folder of correct and deliberately buggy submissions of the course
template's gpt.py: the correct ones pass every check, each buggy one fails the check that names
its bug and no other (the checks built on it are skipped, not failed), and the limits stop a
hanging and a memory-eating file. The whole folder is graded once, by the CLI, for the module."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hw2cli.cli import app
from hw2cli.grade.options import CHECKS

CORRECT = (Path(__file__).parent / "grade_submissions" / "gpt.py").read_text(encoding="utf-8")
TIME_LIMIT = 10  # seconds per submission: the correct ones need about 1 s, the hanging one all 10
ESCAPE = "escape.txt"  # in the test's folder, outside the submission's: it must not be written

# name -> (the checks that must fail or error, textual patches (old, new) of the correct file)
VARIANTS: dict[str, tuple[set[str], list[tuple[str, str]]]] = {
    "correct": (set(), []),
    "correct-rotate-half": (  # the other RoPE pairing, the other top-p reading, a temporary file
        set(),
        [
            (
                "even, odd = x[..., 0::2], x[..., 1::2]\n"
                "            return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)",
                "first, second = x.chunk(2, dim=-1)\n"
                "            return torch.cat((first * cos - second * sin, first * sin + second * cos), dim=-1)",
            ),
            ("                    drop[:, 1:] = drop[:, :-1].clone()\n", ""),
            (
                "",
                "\nimport tempfile\n\nwith tempfile.TemporaryFile() as scratch:  # in its folder\n    pass\n",
            ),
        ],
    ),
    "no-causal-mask": (
        {"causal-mask"},
        [('            att = att.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf"))\n', "")],
    ),
    "flash-not-causal": ({"flash-causal"}, [("is_causal=True", "is_causal=False")]),
    "rope-wrong-angles": (  # theta_i = 10000^(-i/d) instead of 10000^(-2i/d): norms are kept
        {"rope-angles"},
        [("torch.arange(0, dim, 2).float() / dim", "torch.arange(dim // 2).float() / dim")],
    ),
    "wrong-top-k": ({"generate-top-k"}, [(".values[:, [-1]]", ".values[:, [0]]")]),
    "block-no-residual": (
        {"block"},
        [("x = x + self.self_attention(", "x = self.self_attention(")],
    ),
    "hangs": ({"imports"}, [("", "\n# left over from an experiment\nwhile True:\n    pass\n")]),
    "import-error": (
        {"imports"},
        [("from torch.nn import functional as F", "from torch.nn import functionnal as F")],
    ),
    "eats-memory": (
        {"imports"},
        [("", "\ncache = []\nwhile True:\n    cache.append(bytearray(64 * 2**20))\n")],
    ),
    "escapes": (  # tries a GPU query, a log file outside its folder and the network; catches the errors
        {"sandbox"},
        [
            (
                "",
                "\nimport subprocess\n\ntry:\n    subprocess.run(['nvidia-smi'], capture_output=True)\n"
                "except OSError:\n    pass\ntry:\n    open(ESCAPE_PATH, 'w').close()\nexcept OSError:\n    pass\n"
                "import socket\n\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
                "except OSError:\n    pass\n",
            )
        ],
    ),
}


def _patched(name: str, escape: Path) -> str:
    text = CORRECT
    for old, new in VARIANTS[name][1]:
        if old:
            assert text.count(old) == 1, (name, old)
            text = text.replace(old, new)
        else:
            text += new
    return text.replace("ESCAPE_PATH", repr(str(escape)))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The folder of every variant (alice/gpt.py style), graded once: (json, csv, exit code, output)."""
    root = tmp_path_factory.mktemp("grade")
    folder = root / "submissions"
    for name in VARIANTS:
        (folder / name).mkdir(parents=True)
        (folder / name / "gpt.py").write_text(_patched(name, root / ESCAPE), encoding="utf-8")
    args = [
        "grade",
        "gpt",
        str(folder),
        "--time-limit",
        str(TIME_LIMIT),
        "--memory-limit",
        "256",
        "--jobs",
        "2",
    ]
    out = CliRunner().invoke(
        app, [*args, "--json", str(root / "r.json"), "--scores-csv", str(root / "s.csv")]
    )
    report = json.loads((root / "r.json").read_text())
    subs = {Path(s["name"]).name: s for s in report["submissions"]}
    return subs, (root / "s.csv").read_text(), out, root


@pytest.mark.parametrize("name", VARIANTS)
def test_each_submission_fails_exactly_the_check_that_names_its_bug(graded, name):
    subs, _, _, _ = graded
    statuses = {c["name"]: c["status"] for c in subs[name]["checks"]}
    assert list(statuses) == [n for n in CHECKS if n != "train-loss"]
    failed = {n for n, s in statuses.items() if s in ("fail", "error")}
    assert failed == VARIANTS[name][0], {
        n: subs[name]["checks"][list(statuses).index(n)]["reason"] for n in failed
    }
    for check_name, status in statuses.items():  # the others passed, or were skipped for a need
        if status == "skipped":
            needs = CHECKS[check_name].needs
            assert any(statuses[n] != "pass" for n in needs) or subs[name]["stopped"], check_name
    assert subs[name]["passed"] == (not failed)


def test_reasons_say_what_was_expected(graded):
    subs, _, _, root = graded

    def reason(sub, check):
        return next(c for c in subs[sub]["checks"] if c["name"] == check)["reason"]

    assert "changing tokens 3.." in reason("no-causal-mask", "causal-mask")
    assert "expected m * 10000^(-2i/16) = m * [1.0, 0.316, 0.1," in reason("rope-wrong-angles", "rope-angles")
    assert "top_k=3 drew the tokens ranked [1]" in reason("wrong-top-k", "generate-top-k")
    assert "no residual around the attention" in reason("block-no-residual", "block")
    assert reason("hangs", "imports") == f"stopped at the time limit of {TIME_LIMIT} s during this check"
    assert subs["hangs"]["stopped"] and reason("hangs", "shapes").startswith("not graded: stopped")
    assert reason("import-error", "imports").startswith("ImportError: cannot import name 'functionnal'")
    assert reason("eats-memory", "imports").startswith("MemoryError")
    assert "memory limit is 256 MiB" in reason("eats-memory", "imports")
    escaped = reason("escapes", "sandbox")
    assert "started a process (subprocess.Popen)" in escaped and f"opened {root / ESCAPE}" in escaped
    assert "used the network (socket." in escaped
    assert not (root / ESCAPE).exists()  # blocked, not only reported
    imp = next(c for c in subs["import-error"]["checks"] if c["name"] == "imports")
    assert "gpt.py" in imp["traceback"] and "functionnal" in imp["traceback"]


def test_exit_code_tables_and_csv(graded):
    subs, scores, out, _ = graded
    assert out.exit_code == 1  # some submissions fail
    assert "2 of 11 submissions pass every check" in out.output
    score = subs["no-causal-mask"]["score"]
    assert score == 100 - 10 - 15  # causal-mask, and the three checks built on it: skipped
    assert f"no-causal-mask: fails, {score:g}/100 points" in " ".join(out.output.split())
    rows = {Path(r["submission"]).name: r for r in csv.DictReader(io.StringIO(scores))}
    assert rows["correct"]["score"] == "100" and rows["correct"]["max_score"] == "100"
    for name, sub in subs.items():
        assert float(rows[name]["score"]) == sub["score"] == sum(c["points"] for c in sub["checks"])


def test_one_submission_gradescope_and_points_file_without_torch_in_the_grader(tmp_path):
    """The CLI's own process never imports torch: only the submissions' processes do."""
    sub = tmp_path / "alice" / "gpt.py"
    sub.parent.mkdir()
    sub.write_text(CORRECT, encoding="utf-8")
    points = tmp_path / "points.toml"
    points.write_text("[points]\ncausal-mask = 20\nsandbox = 0\n", encoding="utf-8")
    gs = tmp_path / "results.json"
    argv = ["grade", "gpt", str(sub.parent), "--points", str(points), "--gradescope", str(gs), "-q"]
    code = (
        "import sys\nfrom hw2cli.cli import app\n"
        f"try:\n    app({argv!r}, prog_name='hw2')\nexcept SystemExit as exc:\n"
        "    print('exit', exc.code, 'torch' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.stdout.splitlines()[-1] == "exit 0 False", proc.stdout + proc.stderr
    result = json.loads(gs.read_text())
    tests = {t["name"]: t for t in result["tests"]}
    assert tests["causal-mask"]["score"] == tests["causal-mask"]["max_score"] == 20
    assert tests["sandbox"]["max_score"] == 0 and result["score"] == 100 - 10 + 20 - 5
    assert all(t["status"] == "passed" for t in result["tests"])


def test_train_compares_the_loss_curve_with_hw2s(tmp_path):
    """--train: a model that trains like hw2's passes; one initialized with std 1 instead of
    0.02 (its forward is right: gpt-forward passes) starts far higher and fails train-loss only."""
    std = "torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)\n            if module.bias"
    for name, text in (("correct", CORRECT), ("bad-init", CORRECT.replace(std, std.replace("0.02", "1.0")))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "gpt.py").write_text(text, encoding="utf-8")
    out = CliRunner().invoke(app, ["grade", "gpt", str(tmp_path), "--train", "--jobs", "2", "--json", "-"])
    assert out.exit_code == 1
    subs = {Path(s["name"]).name: s for s in json.loads(out.stdout)["submissions"]}
    bad = {c["name"]: c for c in subs["bad-init"]["checks"] if c["status"] != "pass"}
    assert list(bad) == ["train-loss"] and "more than 0.1 apart" in bad["train-loss"]["reason"]
    train = next(c for c in subs["correct"]["checks"] if c["name"] == "train-loss")
    assert train["status"] == "pass" and train["reason"].startswith("losses per 50 steps [")
    assert subs["correct"]["max_score"] == 110


@pytest.mark.parametrize(
    "args, message",
    [
        (["nowhere"], "submission nowhere does not exist"),
        (["{empty}"], "holds no gpt.py"),
        (["{sub}", "--points", "{bad_points}"], "unknown check 'causal'"),
        (["{sub}", "{sub}", "--gradescope", "{gs}"], "one submission"),
        (["{sub}", "--jobs", "0"], "--jobs 0 is out of range"),
    ],
)
def test_bad_usage_is_one_line_exit_2(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "sub.py").write_text(CORRECT, encoding="utf-8")
    (tmp_path / "bad.toml").write_text("[points]\ncausal = 3\n", encoding="utf-8")
    paths = dict(
        empty=tmp_path / "empty",
        sub=tmp_path / "sub.py",
        bad_points=tmp_path / "bad.toml",
        gs=tmp_path / "gs.json",
    )
    out = CliRunner().invoke(app, ["grade", "gpt", *(a.format(**paths) for a in args)])
    assert out.exit_code == 2
    assert out.stderr.startswith("error: ") and message in out.stderr and len(out.stderr.splitlines()) == 1
    assert not (tmp_path / "gs.json").exists()


def test_usage_line_names_the_argument_plainly():
    text = CliRunner().invoke(app, ["grade", "gpt", "--help"], env={"COLUMNS": "200"}).output
    line = next(line for line in text.splitlines() if "Usage:" in line)
    assert line.split()[1:] == ["hw2", "grade", "gpt", "[OPTIONS]", "SUBMISSION..."]


def test_every_check_of_the_table_has_its_function():
    from hw2cli.grade import checks

    assert list(checks.FUNCTIONS) == list(CHECKS)
