"""What a training run measures: the rows of metrics.csv (:class:`Metrics`), the end of a run
whose loss or weights stopped being finite (:class:`Diverged`: the last finite checkpoint stays,
the CLI exits with ``NONFINITE_EXIT``) and the estimated wall time (:class:`WallTime`)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from hw2cli.common.progress import Reporter, estimate_message
from hw2cli.gpt.dist import Dist, all_mean


class Diverged(Exception):
    """The loss (or the weights) stopped being finite at ``step``."""

    def __init__(self, step: int) -> None:
        super().__init__(step)
        self.step = step


def check_finite_weights(model: torch.nn.Module, step: int) -> None:
    """Raise Diverged when a weight is no longer finite (the same on every process)."""
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise Diverged(step)


@dataclass
class Metrics:
    """The rows of metrics.csv, the losses of the steps since the last row (on the device: the
    host reads them once a row, not once a step) and what the progress bar and summary show.

    A row's time runs from :meth:`mark` (after the last row's evaluation, sample and checkpoint)
    to :meth:`close`, which waits for the device: on a GPU, the time of the steps themselves."""

    rows: list[dict[str, Any]]
    best_val: float | None = None
    losses: list[torch.Tensor] = field(default_factory=list)
    since: float = 0.0
    trained_steps: int = 0  # steps timed in this process (for its tokens/s)
    train_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.last_train = next((r["train_loss"] for r in reversed(self.rows)), None)
        self.last_val = next((r["val_loss"] for r in reversed(self.rows) if r["val_loss"] is not None), None)

    def mark(self) -> None:
        self.since = time.perf_counter()

    def close(self, step: int, lr: float, tokens_per_step: int, dist: Dist, device) -> tuple[dict, int]:
        """Append the row of the steps since the last one (their mean loss over all processes)
        and return it with their number; Diverged names the first step whose loss is not finite."""
        stacked = torch.stack(self.losses).float()
        mean = all_mean(stacked.mean().item(), dist, device)
        n, seconds = len(self.losses), max(time.perf_counter() - self.since, 1e-9)
        if not math.isfinite(mean):
            bad = (~torch.isfinite(stacked)).nonzero()
            raise Diverged(step - n + 1 + (int(bad[0]) if len(bad) else n - 1))
        row = {
            "step": step,
            "train_loss": mean,
            "val_loss": None,
            "lr": lr,
            "tokens_per_s": tokens_per_step * n / seconds,
        }
        self.rows.append(row)
        self.trained_steps, self.train_seconds = self.trained_steps + n, self.train_seconds + seconds
        self.losses, self.last_train = [], mean
        return row, n

    def add_val(self, row: dict[str, Any], val: float | None, bpc: float | None) -> None:
        """The validation loss of ``row`` (None: none, or a Ctrl-C abandoned it); one that is
        not finite ends the run (Diverged), the row dropped."""
        if val is None:
            return
        if not math.isfinite(val):
            self.rows.pop()
            raise Diverged(row["step"])
        self.last_val = val
        self.best_val = val if self.best_val is None else min(self.best_val, val)
        row["val_loss"], row["val_bpc"] = val, bpc


class WallTime:
    """Times the steps after the first (which pays for start-up and compilation) and announces
    the run's estimated wall time, evaluations included, once. With ``sync`` (a GPU) it waits
    for the device at each of those few readings of the clock, never later."""

    def __init__(self, step: int, total: int, opts, reporter: Reporter, sync: bool = False) -> None:
        self.first, self.total, self.opts, self.reporter, self.sync = step + 1, total, opts, reporter, sync
        self.t0: float | None = None

    def step_done(self, step: int) -> None:
        if self.first is None or step < self.first:
            return
        if self.sync:
            torch.cuda.synchronize()
        now = time.perf_counter()
        if self.t0 is None:
            self.t0 = now
            return
        timed = step - self.first
        if now - self.t0 < 1.0 and timed < 5 and step < self.total:
            return
        per_step, left = (now - self.t0) / timed, self.total - step
        seconds = (
            left * per_step + (left // self.opts.eval_interval + 1) * self.opts.eval_steps * per_step / 3
        )
        basis = f"{timed} timed step{'s' if timed > 1 else ''} of {per_step:.2f} s, {left:,} to go, evaluation included"
        line = estimate_message(seconds, "the training", basis, "give --max-steps or a smaller --model-type")
        if line:
            self.reporter.note(line)
        self.first = None
