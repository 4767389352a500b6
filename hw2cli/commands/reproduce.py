"""`hw2 reproduce`: every part of the report, then report.md (docs/report.md)."""

from __future__ import annotations

import typer

from hw2cli.commands._options import JsonOut, Quiet, flag_notes, takes
from hw2cli.commands._runner import run_command
from hw2cli.commands._shared import exit_if_a_conclusion_disagrees, user_errors
from hw2cli.reproduce.options import ReproduceOptions


def _exit_as_the_run_went(result) -> None:
    failed = result.failed
    if failed is None:
        exit_if_a_conclusion_disagrees(result.conclusions)
        return
    from pathlib import Path

    log = Path(failed.log) if failed.log else None
    if log is not None and log.is_file():
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:]
        typer.echo("\n".join(tail), err=True)
    typer.echo(
        f"error: part '{failed.name}' failed with exit code {failed.exit_code} at `{failed.step}` "
        f"(log: {failed.log}); the finished parts are kept, fix that and run the same command again",
        err=True,
    )
    raise typer.Exit(failed.exit_code or 1)


@user_errors
@takes(ReproduceOptions)
def reproduce(opts: ReproduceOptions, json_path: JsonOut = None, quiet: Quiet = False) -> None:
    """Reproduce the report: Tables 1 and 2, Figures 1-3 and the samples, Q3.1 and the probes,
    each part with the public hw2 commands, then OUT/report.md, which opens with the report's
    conclusions against this run (exit code 4 when one disagrees). Finished parts are skipped;
    an interrupted part continues where it stopped (a GPT run from its last checkpoint)."""
    from hw2cli.report import render
    from hw2cli.report.build import build_report
    from hw2cli.reproduce.run import run_reproduce

    run_command(
        lambda reporter: run_reproduce(opts, reporter, build_report),
        render,
        json_path=json_path,
        writes={"--out": opts.folder()},
        quiet=quiet,
        progress=flag_notes(ReproduceOptions),  # the run's notes name its options
        then=_exit_as_the_run_went,
    )
