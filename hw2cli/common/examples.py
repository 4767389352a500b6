"""The example inputs shipped as package data (``hw2cli/examples``, in any wheel);
``hw2 examples DIR`` copies them out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hw2cli.common.options import Spec, check, option

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable


def examples_dir() -> Traversable:
    from importlib.resources import files  # here: not on the `hw2 --help` path

    return files("hw2cli") / "examples"


@dataclass
class ExamplesOptions:
    """`hw2 examples`: where the example files go."""

    folder: str = option(
        "examples",
        spec=Spec("Folder to copy the example files into (created if needed).", path=True, argument=True),
    )

    def __post_init__(self) -> None:
        check(self)


@dataclass(frozen=True)
class ExamplesResult:
    folder: str
    files: tuple[str, ...]  # the names copied, sorted


def copy_examples(opts: ExamplesOptions) -> ExamplesResult:
    """Copy every example file into ``opts.folder``, replacing earlier copies, never a user's file."""
    from hw2cli.common.io import atomic_write_bytes
    from hw2cli.common.rundir import prepare_folder

    sources = sorted((f for f in examples_dir().iterdir() if f.is_file()), key=lambda f: f.name)
    names = tuple(f.name for f in sources)
    folder = prepare_folder(opts.folder, what="examples folder", replaces=names)
    for source in sources:
        atomic_write_bytes(folder / source.name, source.read_bytes())
    return ExamplesResult(str(folder), names)
