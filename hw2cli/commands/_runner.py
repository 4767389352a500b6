"""The one command flow: check outputs -> run -> render -> write.

Every command calls :func:`run_command` with a function that computes its result (a call of
one library function, given the progress reporter) and the family's render module, whose
``render(result, console)`` and ``to_json(result)`` dispatch on the result's type
(``functools.singledispatch``). What the flow guarantees (docs/reliability.md):

1. every output path is checked before any work (``check_outputs``: writable, not an input,
   not inside a run directory being written, no two outputs on one file);
2. torch commands choose and record their thread count (``threads``);
3. Ctrl-C during the work that the library did not catch exits 130 in one line;
4. the result is rendered, then every output written even when one of them fails; the
   exit code is 130 for an interrupted run (its partial result is written), 2 when an
   output was lost, else whatever ``then(result)`` decides (exit 1 for a wrong matrix, 3
   for a diverged training ...).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import typer

from hw2cli.commands._shared import check_outputs, use_threads, write_json_then_exit

#: An extra output: its path (None: not asked for) and writer(result, path).
Output = tuple[Path | None, Callable[[Any, Path], object]]


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
    """Run one command (see the module docstring); returns the result.

    ``compute(reporter)`` does the work; ``view`` is the family's render module; ``outputs``
    maps an option name (``plot``, ``csv`` ...) to (path, writer); ``inputs``/``writes`` are
    what the command reads / the run directories it writes (for the output checks);
    ``threads`` is ``--threads`` (None for commands without torch); ``progress(quiet)`` makes
    the reporter (default: Rich bars); ``show`` holds keyword arguments of ``view.render``."""
    from hw2cli.common.progress import RichReporter

    outputs = outputs or {}
    check_outputs(json=json_path, inputs=inputs, writes=writes, **{k: p for k, (p, _) in outputs.items()})
    if threads is not None:
        use_threads(threads)
    try:
        with (progress or RichReporter)(quiet) as reporter:
            result = compute(reporter)
    except KeyboardInterrupt:
        typer.echo("interrupted before a result was ready; nothing was written", err=True)
        raise typer.Exit(130) from None
    view.render(result, None, **(show or {}))
    interrupted = bool(getattr(result, "interrupted", False))
    write_json_then_exit(
        json_path,
        lambda: view.to_json(result),
        interrupted,
        outputs={name: (path, _bind(write, result)) for name, (path, write) in outputs.items()},
    )
    if then is not None:
        then(result)
    return result


def _bind(write: Callable[[Any, Path], object], result: Any) -> Callable[[Path], object]:
    return lambda path: write(result, path)
