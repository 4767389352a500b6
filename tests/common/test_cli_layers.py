"""Library code names option fields, never command-line flags (issue 29): the CLI maps a
field to its flag (``OptionError``'s ``{field}``, ``commands/_options.takes``), so the
library reads the same from a notebook and a flag renamed in its Spec changes every message.

Library: hw2cli/ but the CLI (commands/, cli.py, main.py), the grading package, the renderers
(*/render.py: what a command prints) and reproduce/parts.py (which builds public command lines
by design). The options' Specs (``option(...)``/``Spec(...)``: help texts and shown defaults)
are the CLI's own words and are not counted, nor are docstrings and comments.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import hw2cli

ROOT = Path(hw2cli.__file__).parent
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
CLI = ("commands/", "grade/")
CLI_FILES = {"cli.py", "main.py", "reproduce/parts.py"}


def _library_files() -> list[Path]:
    return [
        p
        for p in sorted(ROOT.rglob("*.py"))
        if not (rel := p.relative_to(ROOT).as_posix()).startswith(CLI)
        and rel not in CLI_FILES
        and not rel.endswith("/render.py")
    ]


def flag_strings(source: str) -> list[str]:
    """The flags named in the string literals of ``source``, docstrings and Specs left out."""
    tree = ast.parse(source)
    skip: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            skip.add(id(body[0].value))  # a docstring
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
            "option",
            "Spec",
        ):
            skip.update(id(n) for n in ast.walk(node))
    return [
        flag
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        for flag in FLAG.findall(node.value)
    ]


def test_flag_strings_are_found_in_messages_but_not_in_docstrings_or_specs():
    source = '''
def f(x):
    """Give --force."""
    spec = option(1, "See --power.", show_default="2 (--quick: 1)")
    raise Hw2Error(f"--device {x}: use --device cpu; not a-- b or x--y")
'''
    assert flag_strings(source) == ["--device", "--device"]


def test_library_code_names_no_command_line_flag():
    found = {
        path.relative_to(ROOT).as_posix(): flags
        for path in _library_files()
        if (flags := flag_strings(path.read_text(encoding="utf-8")))
    }
    assert not found, f"flag strings in library code (name the field: OptionError's {{field}}): {found}"
