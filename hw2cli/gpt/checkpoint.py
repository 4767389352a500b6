"""The checkpoints of ``hw2 gpt train``, committed by hw2cli.common.rundir with ``state.json`` last."""

from __future__ import annotations

import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file, save_model

from hw2cli.common import rundir
from hw2cli.common.errors import Hw2Warning
from hw2cli.common.jsonsafe import dumps
from hw2cli.common.options import OptionError
from hw2cli.gpt import saved
from hw2cli.gpt.model import GPT
from hw2cli.gpt.plot import save_loss_plot
from hw2cli.gpt.saved import MANIFEST
from hw2cli.gpt.tokens import TOKENIZER_FILE, BPETokenizer

CHECKPOINT_FILES = ("model.safetensors", "optimizer.safetensors", "metrics.csv")


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for index, param_state in optimizer.state_dict()["state"].items():
        for name, value in param_state.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"state.{index}.{name}"] = tensor.detach().contiguous().cpu()
    return tensors


def metrics_csv(rows: list[dict[str, Any]]) -> str:
    """``metrics.csv`` text (an empty cell for a value not measured)."""
    lines = [",".join(saved.METRIC_FIELDS)]
    lines += [
        ",".join("" if row.get(k) is None else repr(row[k]) for k in saved.METRIC_FIELDS) for row in rows
    ]
    return "\n".join(lines) + "\n"


class Checkpoints:
    """Commits the checkpoints of one run (rank 0 writes) and draws Figure 3 from the last one."""

    def __init__(self, folder: Path | None, rank: int, first: tuple | None, saved_step: int | None) -> None:
        self.folder, self.rank, self.saved_step = folder, rank, saved_step
        self.first = first  # (model config, recorded options, tokenizer) until the first commit

    def save(self, state: dict[str, Any], model: GPT, optimizer, rows: list[dict[str, Any]]) -> None:
        """Commit weights, optimizer tensors and metrics, then ``state.json`` naming them. The first
        checkpoint of a new run brings ``config.json`` and ``vocab.json`` and removes an earlier run's files."""
        if self.folder is None or self.rank != 0:
            return
        step, meta, tensors = state["step"], {"step": str(state["step"])}, _optimizer_tensors(optimizer)
        files = {
            "model.safetensors": lambda tmp: save_model(model, str(tmp), metadata=meta),
            "optimizer.safetensors": lambda tmp: save_file(tensors, str(tmp), metadata=meta),
            "metrics.csv": lambda tmp: tmp.write_text(metrics_csv(rows), encoding="utf-8"),
        }
        if self.first is not None:
            config, options, tok = self.first
            run_config = {"format": "hw2-gpt-run", "version": 1, "model": asdict(config), "train": options}
            files["config.json"] = lambda tmp: tmp.write_text(dumps(run_config) + "\n", encoding="utf-8")
            if isinstance(tok, BPETokenizer):  # the tokenizer itself, and a vocab.json naming it
                files[TOKENIZER_FILE] = lambda tmp: tmp.write_text(tok.json_text, encoding="utf-8")
            vocab = {"tokenizer": TOKENIZER_FILE} if isinstance(tok, BPETokenizer) else tok.to_json()
            files["vocab.json"] = lambda tmp: tmp.write_text(dumps(vocab) + "\n", encoding="utf-8")
        remove = (
            () if self.first is None else tuple(name for name in saved.ALL_RUN_FILES if name not in files)
        )
        manifest = {**state, "param_groups": optimizer.state_dict()["param_groups"]}
        try:
            rundir.commit(
                self.folder, MANIFEST, saved.State, manifest, files, hashed=CHECKPOINT_FILES, remove=remove
            )
        except (OSError, SafetensorError) as exc:  # safetensors reports a full disk as its own error
            fix = "fix that (disk space, the folder, ulimit -f) and"
            kept = (  # a hint to resume only where there is a checkpoint to resume
                f"nothing was saved: {fix} run the same command again"
                if self.saved_step is None
                else f"the checkpoint of step {self.saved_step} stays: {fix} continue with {{resume}} {self.folder}"
            )
            reason = getattr(exc, "strerror", None) or exc
            raise OptionError(
                f"cannot write the checkpoint of step {step} into {self.folder} ({reason}); {kept}"
            ) from None
        self.first, self.saved_step = None, step

    def figure(self, rows: list[dict[str, Any]], title: str) -> None:
        """Figure 3 (loss.png) from the rows of the last checkpoint; nothing before one exists."""
        if self.folder is None or self.rank != 0 or self.saved_step is None:
            return
        path = self.folder / "loss.png"
        try:  # drawn from metrics.csv: losing it loses no training
            save_loss_plot(path, [r for r in rows if r["step"] <= self.saved_step], title=title)
        except OSError as exc:
            message = f"cannot write {path} ({exc.strerror or exc}); the checkpoint is complete"
            warnings.warn(message, Hw2Warning, stacklevel=2)
