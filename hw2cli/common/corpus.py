"""A training text that needs no download: this project's own prose, the docstrings of the
hw2cli package as they stood in December 2026, shipped as ``hw2cli/data/corpus.txt`` and read
through importlib.resources, so it is the same from a wheel as from a clone.

It is English about neural networks and shells, about 140k characters: enough for the quick
training runs (``--quick``, the quick reproduction, gpu-check's smoke run) to learn something
measurable offline. It is a frozen file, not read from the sources each time, so that editing
a docstring never changes what the quick profile trains on. Grimm's fairy tales, the
homework's corpus, stays the default of the full runs.
"""

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

    atomic_write_text(Path(path), builtin_corpus())
    return Path(path)
