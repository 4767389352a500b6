"""The README's quick start and the Python examples of README.md and docs/python.md run as written.

They run in a copy of the clone's tracked files (so nothing here can change the checkout), and
must leave every tracked file of that copy unchanged (outputs go to git-ignored folders).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs a git checkout to know the tracked files")
    return [p for p in out.decode().split("\0") if p and (ROOT / p).is_file()]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A copy of the tracked files, as a fresh clone has them."""
    dest = tmp_path_factory.mktemp("clone")
    for rel in tracked_files():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    return dest


def digest(root: Path, files: list[str]) -> dict[str, str]:
    return {
        rel: hashlib.sha256((root / rel).read_bytes()).hexdigest() for rel in files if (root / rel).is_file()
    }


def code_blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def quick_start_commands() -> list[tuple[list[str], int]]:
    """The `hw2 ...` lines of the README's quick-start block, as argument lists (comments dropped),
    each with its expected exit code: 0, or 1 where the next line says `exit 1`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    lines = block.splitlines() + [""]
    return [
        (shlex.split(line, comments=True)[1:], 1 if "exit 1" in lines[i + 1] else 0)
        for i, line in enumerate(lines)
        if line.startswith("hw2 ")
    ]


def small(args: list[str]) -> list[str]:
    """The same command with the sizes of a test: one round of one epoch of two conv types."""
    args = list(args)
    for option in ("--rounds", "--epochs"):
        if option in args:
            args[args.index(option) + 1] = "1"
    if args[0] == "padding-bench":
        args += ["--conv-types", "valid,circular", "--quiet"]
    if args[0] == "reproduce":  # the whole quick profile runs once, in test_reproduce.py
        args += ["--parts", "graph", "--quiet"]
    return args


# One interpreter runs every command in turn (CliRunner, as `hw2` runs it: the root group's one-line
# errors and exit codes), from the clone's own code: one start-up and one torch import, not six.
_RUN_ALL = """
import json, sys
from typer.testing import CliRunner
from hw2cli.cli import app
runner = CliRunner()
codes = []
for args in json.loads(sys.argv[1]):
    result = runner.invoke(app, args)
    codes.append([result.exit_code, (result.stderr if result.exit_code else "")[-2000:]])
print(json.dumps(codes))
"""


def test_readme_quick_start_runs_in_a_fresh_clone(clone):
    commands = quick_start_commands()
    names = {c[0] for c, _ in commands}
    assert {"examples", "padding-bench", "graph", "reproduce"} <= names
    files = tracked_files()
    before = digest(clone, files)
    env = {**os.environ, "PYTHONPATH": str(clone), "OMP_NUM_THREADS": "1"}
    argv = json.dumps([small(args) for args, _ in commands])
    proc = subprocess.run(
        [sys.executable, "-c", _RUN_ALL, argv],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    codes = json.loads(proc.stdout.strip().splitlines()[-1])
    for (args, code), (got, err) in zip(commands, codes, strict=True):
        assert got == code, f"hw2 {' '.join(args)}: {err}"
        for i, arg in enumerate(args[:-1]):  # every output the command names exists afterwards
            if arg == "--json":
                assert (clone / args[i + 1]).is_file()
    assert digest(clone, files) == before
    outputs = ["out/x.json", "repro/report.md", "examples/graph1.txt"]  # examples: `hw2 examples`
    ignored = subprocess.run(["git", "check-ignore", *outputs], cwd=ROOT, capture_output=True)
    assert ignored.stdout.decode().split() == outputs


def run_blocks(path: Path, clone: Path) -> tuple[dict, str]:
    namespace: dict = {}
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(clone)
    try:
        with contextlib.redirect_stdout(out):
            for block in code_blocks(path, "python"):
                exec(compile(block, str(path), "exec"), namespace)
    finally:
        os.chdir(cwd)
    return namespace, out.getvalue()


def test_readme_python_example(clone):
    ns, _ = run_blocks(clone / "README.md", clone)
    # examples/graph2.txt by hand: edges 1-2 1-3 1-4 2-3 3-4 4-5
    a = np.zeros((5, 5))
    for u, v in [(1, 2), (1, 3), (1, 4), (2, 3), (3, 4), (4, 5)]:
        a[u - 1, v - 1] = a[v - 1, u - 1] = 1
    lap = np.diag(a.sum(1)) - a
    np.testing.assert_allclose(ns["result"].laplacian.toarray(), lap)
    np.testing.assert_allclose(ns["result"].spectrum.values, np.linalg.eigvalsh(lap), atol=1e-9)
    assert ns["result"].components.count == 1


def test_python_page_examples(clone):
    ns, printed = run_blocks(clone / "docs" / "python.md", clone)
    # examples/graph1.txt: edges 1-2 1-3 2-3 3-4; walks of length 3 from 1 to 3 counted by hand: 4
    assert int(ns["a3"][0, 2]) == 4
    assert not ns["check"].ok
    assert [(c.row, c.col) for c in ns["check"].wrong] == [(2, 2), (2, 4)]
    assert len(ns["result"].outcomes["valid"]) == 1
    assert ns["rotation"].angles == [0, 90, 180, 270, 360] and len(ns["rotation"].models[0].accuracy) == 5
    assert "should be" in printed
    assert ns["run"].steps == 20 and len(ns["samples"].completions) == 2
