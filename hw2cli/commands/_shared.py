"""What every command module shares: the one-line error wrapper and the output helpers."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Optional

import typer

from hw2cli.common.errors import Hw2Error


def user_errors(fn: Callable) -> Callable:
    """Turn Hw2Error into one line on stderr and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Hw2Error as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper




def check_outputs(**paths: Optional[Path]) -> None:
    """Fail before any long work if an output given as ``--NAME PATH`` cannot be written."""
    from hw2cli.common.io import check_writable

    for name, path in paths.items():
        if path is not None:
            check_writable(path, f"--{name.replace('_', '-')} file")


def write_json_then_exit(json_path: Optional[Path], make_json: Callable[[], dict], interrupted: bool = False) -> None:
    """Write ``make_json()`` to ``--json`` if given; exit 130 when the work was interrupted."""
    from hw2cli.common.io import write_json

    if json_path is not None:
        write_json(json_path, make_json())
    if interrupted:
        raise typer.Exit(130)

