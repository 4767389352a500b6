"""The example inputs that ship inside the package (``hw2cli/examples``): two small teaching
graphs, the homework's own two graphs with its hand-computed matrices, and a SLURM script.

They are package data, found through ``importlib.resources``, so a wheel installed anywhere
has them: ``hw2 reproduce`` reads the homework's graphs from here, and ``hw2 examples DIR``
copies them out for the README's commands (``examples/graph1.txt`` ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hw2cli.common.options import Spec, check, option

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable


def examples_dir() -> Traversable:
    """The package's examples folder (a real folder for any installed wheel or clone)."""
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
    """Copy every example file into ``opts.folder``. Copying again replaces the copies; a file
    of the same name that hw2 did not write there (a user's own) is refused (Hw2Error, nothing
    written)."""
    from hw2cli.common.io import atomic_write_bytes
    from hw2cli.common.rundir import prepare_folder

    sources = sorted((f for f in examples_dir().iterdir() if f.is_file()), key=lambda f: f.name)
    names = tuple(f.name for f in sources)
    folder = prepare_folder(opts.folder, what="examples folder", replaces=names)
    for source in sources:
        atomic_write_bytes(folder / source.name, source.read_bytes())
    return ExamplesResult(str(folder), names)
