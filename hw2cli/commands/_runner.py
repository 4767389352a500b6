"""The one command flow (docs/reliability.md): every output path is checked before any work
(:func:`check_outputs`), from where Ctrl-C keeps what finished; torch commands choose their
thread count for the command and record it; the result is rendered, then every output is
written even when one fails (one line names what was lost, exit 2; 130 when interrupted);
else ``then(result)`` decides the exit code. ``-`` and ``/dev/stdout`` mean standard output
(text outputs only), the tables then going to standard error."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import typer

from hw2cli.commands._shared import catch_interrupts
from hw2cli.common.errors import Hw2Error
from hw2cli.common.io import resolve_path
from hw2cli.common.options import default_flag

#: An extra output: its path (None: not asked for) and writer(result, path).
Output = tuple[Path | None, Callable[[Any, Path], object]]
#: Outputs that may be standard output (text); the others need a file.
TEXT_OUTPUTS = ("json", "csv", "out")
#: Inputs (``inputs=`` label -> their name in messages) that must exist before outputs are checked.
NAMED_INPUTS = {
    "EDGES": "edge list",
    "--matrix": "matrix",
    "--features": "feature table",
    "--txt-file": "--txt-file",
    "--load-models": "--load-models",
    "RUN_DIR": "run directory",
}


def run_command(
    compute: Callable[[Any], Any],
    view: ModuleType,
    *,
    json_path: Path | None = None,
    outputs: dict[str, Output] | None = None,
    inputs: dict[str, Path | None] | None = None,
    writes: dict[str, Path | None] | None = None,
    quiet: bool = False,
    threads: int | None = None,
    progress: Callable[[bool], Any] | None = None,
    show: dict[str, Any] | None = None,
    then: Callable[[Any], None] | None = None,
) -> Any:
    """Run one command and return its result: ``compute(reporter)`` does the work, ``view`` is
    the family's render module (``show``: its keyword arguments); ``outputs``: option name ->
    (path, writer); ``inputs``/``writes``: what it reads / the run directories it writes;
    ``threads``: ``--threads`` (None without torch); ``progress(quiet)`` makes the reporter."""
    from hw2cli.common.io import write_json
    from hw2cli.common.progress import RichReporter
    from hw2cli.common.threads import using_threads

    outputs = outputs or {}
    paths = {"json": json_path, **{name: path for name, (path, _) in outputs.items()}}
    to_stdout = check_outputs(paths, inputs=inputs, writes=writes)
    real_stdout = sys.stdout
    with contextlib.ExitStack() as stack:
        if to_stdout:  # tables and messages go to stderr; the output alone to stdout
            stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        choice = None if threads is None else stack.enter_context(using_threads(threads))
        if choice is not None and choice.source == "threads":  # its flag, as printed and recorded
            choice = dataclasses.replace(choice, source=default_flag("threads"))
        try:
            with (progress or RichReporter)(quiet) as reporter:
                result = compute(reporter)
        except KeyboardInterrupt:
            typer.echo("interrupted before a result was ready; nothing was written", err=True)
            raise typer.Exit(130) from None
        view.render(result, None, **(show or {}))
        jobs = {name: (path, functools.partial(write, result)) for name, (path, write) in outputs.items()}
        if choice is not None:  # beside the tables (stderr when --json - holds standard output)
            typer.echo(f"threads: {choice.describe()}")
        if json_path is not None:
            extra = {} if choice is None else {"threads": choice.to_json()}
            jobs["json"] = (json_path, lambda path: write_json(path, {**view.to_json(result), **extra}))
        write_outputs(jobs, bool(getattr(result, "interrupted", False)), real_stdout)
        if then is not None:
            then(result)
    return result


def _identity(path: Path) -> tuple:
    """What makes two paths the same file: device and inode when it exists, else the resolved path."""
    try:
        st = path.stat()
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", str(resolve_path(path)))


def _inside(path: Path, folder: Path) -> bool:
    resolved, base = resolve_path(path), resolve_path(folder)
    return resolved == base or base in resolved.parents


def check_outputs(
    paths: dict[str, Path | None],
    *,
    inputs: dict[str, Path | None] | None = None,
    writes: dict[str, Path | None] | None = None,
) -> list[str]:
    """Fail before any work when an output (option name -> path) cannot be written, is an input
    (``inputs``: label -> file, or folder whose existing files count), lies in a run directory
    being written (``writes``) or is another output's file. Returns those on standard output."""
    from hw2cli.common.inputs import stat_input
    from hw2cli.common.io import check_name_length, check_writable, is_stdout

    catch_interrupts()  # every command checks its outputs first: its work starts here
    inputs, writes = inputs or {}, writes or {}
    for label, source in inputs.items():  # a missing input is the first thing to say
        if label in NAMED_INPUTS and source is not None:
            stat_input(source, NAMED_INPUTS[label])
    given = {name: path for name, path in paths.items() if path is not None}
    to_stdout = [name for name, path in given.items() if is_stdout(path)]
    for name in to_stdout:
        if name not in TEXT_OUTPUTS:
            raise Hw2Error(
                f"{default_flag(name)} {given[name]}: standard output takes only text (--json, --csv); "
                "give a file path"
            )
    if len(to_stdout) > 1:
        raise Hw2Error(
            f"{' and '.join(map(default_flag, to_stdout))} both write to standard output; send one to a file"
        )
    if to_stdout and sys.stdout is None:  # `>&-`: the JSON would go to whatever opens fd 1 next
        raise Hw2Error(
            f"{default_flag(to_stdout[0])} {given[to_stdout[0]]}: standard output is closed; "
            "give a file path, or run hw2 with standard output open"
        )
    files = {name: Path(path) for name, path in given.items() if name not in to_stdout}
    for name, path in files.items():  # before any look at the disk: a too-long name fails every call
        check_name_length(path, f"{default_flag(name)} file")
    _check_clashes(files, inputs, writes)
    for name, path in files.items():
        check_writable(path, f"{default_flag(name)} file", create=False)
    for name, path in files.items():  # only once every check passed: create missing folders
        check_writable(path, f"{default_flag(name)} file")
    return to_stdout


def _check_clashes(
    files: dict[str, Path], inputs: dict[str, Path | None], writes: dict[str, Path | None]
) -> None:
    """Refuse an output that is another output's file, an input, or inside a run directory written."""
    seen: dict[tuple, str] = {}
    for name, path in files.items():
        key = _identity(path)
        if key in seen:
            raise Hw2Error(
                f"{default_flag(seen[key])} and {default_flag(name)} both name {path}; give each output its own file"
            )
        seen[key] = name
        for label, source in inputs.items():
            if source is None:
                continue
            source = Path(source)
            inside = os.path.isdir(source) and _inside(path, source) and os.path.exists(path)
            if inside or (not os.path.isdir(source) and _identity(source) == key):
                raise Hw2Error(
                    f"{default_flag(name)} {path} would overwrite the input {label} {source}; "
                    "write the output somewhere else"
                )
        for label, folder in writes.items():
            if folder is not None and _inside(path, Path(folder)):
                raise Hw2Error(
                    f"{default_flag(name)} {path} lies inside the run directory {label} {folder} "
                    "that this command writes; put the output outside it"
                )


def write_outputs(
    jobs: dict[str, tuple[Path | None, Callable[[Path], object]]], interrupted: bool, stdout
) -> None:
    """Write every output (name -> (path or None, writer(path))), ``-`` to ``stdout``; one that
    fails does not stop the others. Exits 2 naming what was lost, 130 when ``interrupted``."""
    from hw2cli.common.io import STDOUT, is_stdout

    lost, written = [], []
    for name, (path, write) in jobs.items():
        if path is None:
            continue
        target = Path(STDOUT) if is_stdout(path) else Path(path)
        try:
            with contextlib.redirect_stdout(stdout):
                write(target)
            written.append(f"{default_flag(name)} {path}")
        except Exception as exc:  # noqa: BLE001 -- any failure of one output must not lose the others
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else None
            reason = reason or (str(exc).splitlines() or [type(exc).__name__])[0]
            lost.append(f"{default_flag(name)} {path} ({reason})")
    if lost:
        kept = f"; written: {', '.join(written)}" if written else ""
        typer.echo(f"error: could not write {', '.join(lost)}{kept}", err=True)
        raise typer.Exit(130 if interrupted else 2)
    if interrupted:
        raise typer.Exit(130)
