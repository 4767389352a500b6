"""`hw2 report`: the report.md of a scripts/reproduce.sh folder."""

from __future__ import annotations

from pathlib import Path

import typer

from hw2cli.commands._shared import check_outputs, user_errors, write_json_then_exit


@user_errors
def report(
    run_dir: Path = typer.Argument(..., help="The --out folder of scripts/reproduce.sh."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Where to write the Markdown.", show_default="RUN_DIR/report.md"
    ),
) -> None:
    """Turn the JSON and PNG outputs of scripts/reproduce.sh into one report.md."""
    from hw2cli.common.io import atomic_write_text, is_stdout
    from hw2cli.report.build import PARTS, build_report

    target = out if out is not None else run_dir / "report.md"
    check_outputs(out=target, inputs={f"part folder {name}": run_dir / name for name, _, _ in PARTS})
    result = build_report(run_dir)
    write_json_then_exit(
        None, dict, outputs={"out": (target, lambda p: atomic_write_text(p, result.markdown))}
    )
    if is_stdout(target):
        return
    typer.echo(result.written_message(target))
