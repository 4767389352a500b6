"""The options of `hw2 report` (hw2cli.common.options): no torch here."""

from __future__ import annotations

from dataclasses import dataclass

from hw2cli.common.options import OUT, Spec, check, option


@dataclass
class ReportOptions:
    """`hw2 report`: which reproduction folder, and where the Markdown goes."""

    run_dir: str = option(
        spec=Spec("The --out folder of hw2 reproduce.", path=True, argument=True, show_default=False)
    )
    out: str | None = option(None, OUT, short="-o", show_default="RUN_DIR/report.md")

    def __post_init__(self) -> None:
        check(self)

    def target(self) -> str:
        """Where the report goes: ``out``, else ``RUN_DIR/report.md``."""
        from pathlib import Path

        return self.out if self.out is not None else str(Path(self.run_dir) / "report.md")
