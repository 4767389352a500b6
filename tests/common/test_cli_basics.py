"""The entry point itself: version, help, and that start-up does not import torch."""

from __future__ import annotations

import re
import subprocess
import sys

from typer.testing import CliRunner

from hw2cli import __version__
from hw2cli.cli import app

runner = CliRunner()


def test_version_prints_package_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"hw2 {__version__}"


def test_help_lists_command_groups():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "graph" in result.output and "gpt" in result.output


def _modules_after(argv: list[str]) -> set[str]:
    """Import the CLI in a fresh interpreter, run ``argv`` and return sys.modules' names."""
    code = (
        "import sys\n"
        "from hw2cli.cli import app\n"
        f"try:\n    app({argv!r}, prog_name='hw2')\nexcept SystemExit:\n    pass\n"
        "print('\\n'.join(sys.modules), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return set(proc.stderr.split())


def test_help_does_not_import_torch():
    for argv in (["--help"], ["graph", "--help"], ["gpt", "--help"]):
        mods = _modules_after(argv)
        assert "hw2cli.cli" in mods
        assert "torch" not in mods, f"`hw2 {' '.join(argv)}` imported torch"


def test_user_error_is_one_line_exit_2():
    """A Hw2Error raised in a command becomes `error: ...` on stderr and exit code 2."""
    import typer

    from hw2cli.commands._shared import user_errors
    from hw2cli.common.errors import Hw2Error

    demo = typer.Typer()

    @demo.command()
    @user_errors
    def fail(name: str) -> None:
        raise Hw2Error(f"no such thing {name!r}; use another")

    result = CliRunner().invoke(demo, ["x"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: no such thing 'x'; use another"
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_every_subpackage_is_a_regular_package():
    """setuptools' find_packages skips folders without __init__.py: a wheel would lack them."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "hw2cli"
    folders = {p.parent for p in root.rglob("*.py") if "__pycache__" not in p.parts}
    assert sorted(str(f.relative_to(root)) for f in folders if not (f / "__init__.py").exists()) == []


def _commands(cmd, path=()):
    """Every (path, click command) of the app, groups included."""
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_no_help_text_is_eaten_as_rich_markup():
    """Rich reads "[word...]" in help text as markup and drops it silently: a default written
    as "[default: 3]" inside help= vanished from `--help`. Defaults go in show_default=."""
    import typer
    from rich.markup import render

    texts = [
        (f"hw2 {' '.join(path)} {param.name}", param.help)
        for path, cmd in _commands(typer.main.get_command(app))
        for param in cmd.params
        if getattr(param, "help", None)
    ]
    assert len(texts) > 50
    assert [(where, text) for where, text in texts if render(text).plain != text] == []


def test_computed_defaults_are_shown_in_help():
    result = runner.invoke(app, ["gpt", "train", "--help"])
    assert result.exit_code == 0
    words = " ".join(result.output.replace("│", " ").split())  # undo Rich's panel and wrapping
    words = re.sub(r" \[[-+.\de]+<=x<=[-+.\de]+\]", "", words)  # the ranges shown in the metavar column
    assert "[default: (Grimm's fairy tales, downloaded once)]" in words
    assert "Final cosine learning rate. [default: (lr/10)]" in words
