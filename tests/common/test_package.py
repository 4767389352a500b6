"""hw2 as an installed package: what it reads at run time ships inside it and is found through
importlib.resources from any folder, and it imports no other package's private modules.
(Building and installing the wheel itself is scripts/wheel-check.sh, run by CI.)"""

from __future__ import annotations

import ast
import fnmatch
import os
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "hw2cli"
EXAMPLES = PACKAGE / "examples"


def test_every_data_file_of_the_package_is_declared_package_data():
    """setuptools puts into the wheel only the non-Python files that package-data names."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["hw2cli"]
    data = [
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    ]
    assert len(data) >= 12  # the example graphs, matrices and the SLURM script
    assert [f for f in data if not any(fnmatch.fnmatch(f, pat) for pat in patterns)] == []


def test_run_time_files_are_found_through_importlib_resources_from_another_folder(tmp_path):
    """From a folder that is not a checkout: the examples the graph part of `hw2 reproduce`
    reads, `hw2 examples`' files and the built-in corpus all come from the package."""
    code = (
        "import hw2cli\n"
        "from hw2cli.common.corpus import builtin_corpus\n"
        "from hw2cli.reproduce.parts import PARTS, PROFILES\n"
        "part = next(p for p in PARTS if p.name == 'graph')\n"
        "paths = [a for s in part.steps(PROFILES['quick'], 'cpu', None) for a in s.argv if a.endswith('.txt')]\n"
        "print('\\n'.join(paths))\n"
        "assert 'Reproduce the experiments' in builtin_corpus()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    paths = [Path(p) for p in proc.stdout.split()]
    assert {p.name for p in paths} == {
        "report_graph1.txt",
        "report_graph2.txt",
        "report_graph2_laplacian.txt",
    }
    assert all(p.is_absolute() and p.parent == EXAMPLES for p in paths)


def test_hw2_examples_copies_the_package_files_and_keeps_a_users_own(tmp_path, monkeypatch):
    """In-process from another folder (the files come through importlib.resources, not the
    working folder); the subprocess entry point is tested in tests/common/test_adversarial_*."""
    from typer.testing import CliRunner

    from hw2cli.cli import app

    monkeypatch.chdir(tmp_path)
    first = CliRunner().invoke(app, ["examples"])
    assert first.exit_code == 0, first.output
    shipped = {p.name: p.read_bytes() for p in EXAMPLES.iterdir() if p.is_file()}
    copied = {p.name: p.read_bytes() for p in (tmp_path / "examples").iterdir() if not p.name.startswith(".")}
    assert copied == shipped
    assert f"{len(shipped)} example files in examples" in first.stdout

    (tmp_path / "examples" / "graph1.txt").write_bytes(b"1 2\n")  # a copy changed: now the user's
    again = CliRunner().invoke(app, ["examples"])
    assert again.exit_code == 2 and again.stderr.count("\n") == 1
    assert "examples folder examples holds files hw2 did not write (graph1.txt)" in again.stderr
    assert (tmp_path / "examples" / "graph1.txt").read_bytes() == b"1 2\n"

    other = CliRunner().invoke(app, ["examples", "elsewhere"])  # a fresh folder
    assert (
        other.exit_code == 0 and (tmp_path / "elsewhere" / "graph1.txt").read_bytes() == shipped["graph1.txt"]
    )


def _private_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) for each module of another package that ``source`` imports through a
    private (``_``) part."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] not in ("hw2cli", "__future__") and any(p.startswith("_") for p in parts):
                found.append((node.lineno, name))
    return found


def test_no_private_module_of_another_package_is_imported():
    sources = [*PACKAGE.rglob("*.py"), *(ROOT / "scripts").glob("*.py"), *(ROOT / "benchmarks").glob("*.py")]
    hits = [
        (str(p.relative_to(ROOT)), *hit) for p in sources for hit in _private_imports(p.read_text("utf-8"))
    ]
    assert hits == []
    for path in PACKAGE.rglob("*.py"):  # nor reached as an attribute (typer._click.core ...)
        text = path.read_text(encoding="utf-8")
        assert "typer._" not in text and "click._" not in text, path


def test_the_private_import_check_catches_one():
    source = "from typer._click.core import ParameterSource\nimport torch._dynamo\nfrom os import path\n"
    assert _private_imports(source) == [
        (1, "typer._click.core"),
        (1, "typer._click.core.ParameterSource"),
        (2, "torch._dynamo"),
    ]
