"""`hw2 report`: the report.md of a scripts/reproduce.sh folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hw2cli.commands._shared import user_errors



@user_errors
def report(
    run_dir: Path = typer.Argument(..., help="The --out folder of scripts/reproduce.sh."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write the Markdown.", show_default="RUN_DIR/report.md"),
) -> None:
    """Turn the JSON and PNG outputs of scripts/reproduce.sh into one report.md."""
    from hw2cli.common.io import atomic_write_text, check_writable
    from hw2cli.report.build import build_report

    target = check_writable(out if out is not None else run_dir / "report.md", "report file")
    result = build_report(run_dir)
    atomic_write_text(target, result.markdown)
    typer.echo(result.written_message(target))
