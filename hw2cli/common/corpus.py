"""A training text that needs no download: hw2's own docstrings as of December 2026 (about 140k
characters of English), shipped as ``hw2cli/data/corpus.txt`` for the quick runs. Frozen, so
that editing a docstring never changes what the quick profile trains on."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

NAME = "hw2's own docstrings"


def builtin_corpus() -> str:
    """The shipped training text."""
    return files("hw2cli").joinpath("data/corpus.txt").read_text(encoding="utf-8")


def write_builtin_corpus(path: str | Path) -> Path:
    """Write :func:`builtin_corpus` to ``path`` (atomically) and return it."""
    from hw2cli.common.io import atomic_write_text

    return atomic_write_text(path, builtin_corpus())
