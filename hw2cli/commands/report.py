"""`hw2 report`: the report.md of a `hw2 reproduce` folder."""

from __future__ import annotations

from pathlib import Path

import typer

from hw2cli.commands._options import JsonOut, takes
from hw2cli.commands._runner import run_command
from hw2cli.commands._shared import exit_if_a_conclusion_disagrees, user_errors
from hw2cli.common.errors import Hw2Error
from hw2cli.report.options import ReportOptions


@user_errors
@takes(ReportOptions)
def report(opts: ReportOptions, json_path: JsonOut = None) -> None:
    """Turn the JSON and PNG outputs of hw2 reproduce into one report.md, and print the homework
    report's conclusions against that run (exit code 4 when one disagrees)."""
    from hw2cli.common.io import atomic_write_text, is_stdout, resolve_path
    from hw2cli.report import render
    from hw2cli.report.build import build_report
    from hw2cli.reproduce.parts import PART_NAMES

    if not Path(opts.run_dir).is_dir():  # the input before the output
        raise Hw2Error(f"{opts.run_dir} is not a folder; run hw2 reproduce --out {opts.run_dir} first")
    target = Path(opts.target())
    # Figures are linked relative to the report's folder; on standard output, to RUN_DIR (what
    # RUN_DIR/report.md would hold).
    links = None if is_stdout(target) else resolve_path(target).parent

    def said(result) -> None:
        if not is_stdout(target):
            typer.echo(result.written_message(target))
        exit_if_a_conclusion_disagrees(result.conclusions.findings)

    run_command(
        lambda reporter: build_report(opts.run_dir) if links is None else build_report(opts.run_dir, links),
        render,
        json_path=json_path,
        outputs={"out": (target, lambda result, path: atomic_write_text(path, result.markdown))},
        inputs={f"part folder {name}": Path(opts.run_dir) / name for name in PART_NAMES},
        quiet=True,
        then=said,
    )
