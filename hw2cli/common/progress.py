"""Progress that library code reports without printing: a library function takes a ``reporter``
(default ``Reporter()``, which does nothing); the CLI passes a ``RichReporter``."""

from __future__ import annotations

from typing import Any

from hw2cli.common.options import OptionError, flag_of, specs


class Reporter:
    """A progress sink that ignores everything (the default for notebook use)."""

    def start(self, key: str, description: str, total: float | None = None, **fields: Any) -> None:
        """Open a task named ``key`` with ``total`` steps (None when unknown)."""

    def update(self, key: str, advance: float = 0, **fields: Any) -> None:
        """Move task ``key`` on; ``fields``: ``description``, ``completed``, ``total`` or a shown value."""

    def finish(self, key: str) -> None:
        """Close task ``key`` (it disappears from the display)."""

    def log(self, message: str) -> None:
        """A line worth showing above the bars (e.g. a sample during training)."""

    def note(self, message: str) -> None:
        """A line to read even without a terminal (what was chosen and why): on stderr unless quiet."""


class RichReporter(Reporter):
    """Rich progress bars on stderr around the long work; none when ``quiet`` or not a terminal.
    Notes name the ``{field}``s of options dataclass ``options`` by their flags (the CLI's words)."""

    def __init__(
        self,
        quiet: bool = False,
        extra_columns: tuple = (),
        bar_width: int | None = 40,
        options: type | None = None,
    ) -> None:
        from rich import progress as rp
        from rich.console import Console

        self.console = Console(stderr=True)
        self.quiet, self.options = quiet, options
        self.enabled = not quiet and self.console.is_terminal
        self._progress = rp.Progress(
            rp.TextColumn("[progress.description]{task.description}"),
            rp.BarColumn(bar_width=bar_width),
            rp.MofNCompleteColumn(),
            *extra_columns,
            rp.TimeElapsedColumn(),
            rp.TextColumn("eta"),
            rp.TimeRemainingColumn(),
            console=self.console,
            disable=not self.enabled,
            transient=False,
        )
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> RichReporter:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.__exit__(*exc)

    def start(self, key: str, description: str, total: float | None = None, **fields: Any) -> None:
        if key in self._tasks:
            self._progress.reset(self._tasks[key], total=total, description=description, **fields)
        else:
            self._tasks[key] = self._progress.add_task(description, total=total, **fields)

    def update(self, key: str, advance: float = 0, **fields: Any) -> None:
        if key in self._tasks:
            self._progress.update(self._tasks[key], advance=advance, **fields)

    def finish(self, key: str) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            self._progress.remove_task(task)

    def log(self, message: str) -> None:
        if self.enabled:
            self._progress.console.print(message, markup=False, highlight=False)

    def note(self, message: str) -> None:
        if self.options is not None:
            fields = specs(self.options)
            message = OptionError(message).named(
                lambda f: flag_of(self.options, f) if f in fields else f"{{{f}}}"
            )
        if not self.quiet:
            self._progress.console.print(message, markup=False, highlight=False, soft_wrap=True)
