"""``--tensorboard DIR``: the training curves and samples as TensorBoard events (the course's logger).

Written through ``torch.utils.tensorboard``, which needs the optional ``tensorboard`` package
(``pip install 'hw2[tensorboard]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hw2cli.common.errors import Hw2Error
from hw2cli.common.options import OptionError

SCALARS = {
    "train_loss": "loss/train",
    "val_loss": "loss/val",
    "val_bpc": "bits_per_char/val",
    "lr": "lr",
    "tokens_per_s": "tokens_per_s",
}


class TensorBoardLog:
    """One SummaryWriter on ``log_dir`` (None: logs nothing); ``row`` logs a metrics.csv row,
    ``text`` a sample."""

    def __init__(self, log_dir: str | Path | None):
        self.writer = None
        try:
            if log_dir:
                self.writer = self.summary_writer_class()(log_dir=str(log_dir))
        except OSError as exc:
            raise Hw2Error(
                f"cannot write TensorBoard events to {log_dir} ({exc.strerror}); pick another DIR"
            ) from None

    @staticmethod
    def summary_writer_class() -> type:
        """torch's SummaryWriter, or a Hw2Error saying how to install tensorboard (call it
        before any work to fail early)."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise OptionError(
                "{tensorboard} needs the tensorboard package; pip install 'hw2[tensorboard]' (or tensorboard)"
            ) from None
        return SummaryWriter

    def row(self, row: dict[str, Any]) -> None:
        for key, tag in SCALARS.items():
            if row.get(key) is not None and self.writer:
                self.writer.add_scalar(tag, row[key], row["step"])

    def text(self, step: int, sample: str) -> None:
        if self.writer:
            self.writer.add_text("sample", sample, step)

    def close(self) -> None:
        if self.writer:
            self.writer.close()
