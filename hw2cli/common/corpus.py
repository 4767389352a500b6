"""A training text that needs no download: this project's own prose, the docstrings of every
hw2cli module, class and function, read from the installed sources (never imported) through
importlib.resources, so it is the same from a wheel as from a clone.

It is English about neural networks and shells, about 80k characters: enough for the quick
training runs (``--quick``, the quick reproduction, gpu-check's smoke run) to learn something
measurable offline. Grimm's fairy tales, the homework's corpus, stays the default of the full
runs; this is what runs use when they must not touch the network.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

NAME = "hw2's own docstrings"
_TABLE_DRAWING = {cp: None for cp in range(0x2500, 0x2580)}  # box characters of pasted tables


def _modules(folder: Traversable) -> Iterator[Traversable]:
    """The ``.py`` files under ``folder``, in path order."""
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            yield from _modules(entry)
        elif entry.name.endswith(".py"):
            yield entry


def builtin_corpus() -> str:
    """The docstrings of the hw2cli package, module by module in path order, as one text."""
    parts = []
    for module in _modules(files("hw2cli")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef | ast.FunctionDef))]
        for node in nodes:
            doc = ast.get_docstring(node)
            if doc:
                parts.append(doc.translate(_TABLE_DRAWING).strip())
    return "\n\n".join(parts) + "\n"


def write_builtin_corpus(path: str | Path) -> Path:
    """Write :func:`builtin_corpus` to ``path`` (atomically) and return it."""
    from hw2cli.common.io import atomic_write_text

    atomic_write_text(Path(path), builtin_corpus())
    return Path(path)
