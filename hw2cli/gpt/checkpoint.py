"""The run directory: everything a training run writes, without pickle.

``config.json``
    ``{"format": "hw2-gpt-run", "version": 1, "model": GPTConfig fields, "train": trainer options}``
``vocab.json``
    ``{"chars": [...]}``: the character vocabulary in id order.
``model.safetensors``
    the model weights only (metadata ``step``).
``optimizer.safetensors`` + ``state.json``
    AdamW's tensors (``state.<param index>.<name>``) and, in JSON, its param groups, the
    step reached, the fp16 loss scale and whether the run finished or was interrupted.
``metrics.csv``, ``loss.png``
    step, train loss, val loss, lr, tokens/s; and Figure 3 drawn from them.

Every file is written atomically (a temporary file renamed into place), so an interruption
leaves the previous complete file.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from hw2cli.common.errors import Hw2Error
from hw2cli.common.io import atomic_path, atomic_write_text, write_json
from hw2cli.gpt.data import CharTokenizer
from hw2cli.gpt.model import GPT, GPTConfig

FORMAT = "hw2-gpt-run"
VERSION = 1
METRIC_FIELDS = ("step", "train_loss", "val_loss", "lr", "tokens_per_s")


RUN_FILES = ("config.json", "vocab.json", "model.safetensors", "optimizer.safetensors", "state.json",
             "metrics.csv", "loss.png")


def clear_run(run_dir: Path) -> None:
    """Remove an earlier run's files, so a new run never mixes with them."""
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)


def save_config(run_dir: Path, model_config: GPTConfig, train_options: dict[str, Any], tokenizer: CharTokenizer) -> None:
    """Write ``config.json`` and ``vocab.json`` (once, at the start of a run)."""
    write_json(run_dir / "config.json", {"format": FORMAT, "version": VERSION, "model": asdict(model_config), "train": train_options})
    write_json(run_dir / "vocab.json", tokenizer.to_json())


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise Hw2Error(f"{path} is missing; give a run directory written by `hw2 gpt train`")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Hw2Error(f"{path} is not valid JSON ({exc}); give a run directory written by `hw2 gpt train`") from None


def load_config(run_dir: str | Path) -> tuple[GPTConfig, dict[str, Any], CharTokenizer]:
    """Read the model config, trainer options and vocabulary of a run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise Hw2Error(f"run directory {run_dir} does not exist; give the --out folder of `hw2 gpt train`")
    cfg = _read_json(run_dir / "config.json")
    if cfg.get("format") != FORMAT:
        raise Hw2Error(f"{run_dir / 'config.json'} is not an hw2 GPT run config; give the --out folder of `hw2 gpt train`")
    tokenizer = CharTokenizer.from_json(_read_json(run_dir / "vocab.json"))
    return GPTConfig.from_dict(cfg["model"]), cfg["train"], tokenizer


def save_weights(run_dir: Path, model: GPT, step: int) -> None:
    """Write ``model.safetensors`` (shared tensors are stored once)."""
    with atomic_path(run_dir / "model.safetensors") as tmp:
        save_model(model, str(tmp), metadata={"step": str(step)})


def load_weights(model: GPT, path: Path) -> None:
    """Fill ``model`` from a safetensors file, refusing one that does not fit its config."""
    try:
        load_model(model, str(path), strict=True)
    except (RuntimeError, OSError, SafetensorError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Hw2Error(f"{path} does not match config.json ({first}); give an intact run directory") from None


def load_run(run_dir: str | Path, device: torch.device | str = "cpu") -> tuple[GPT, CharTokenizer, dict[str, Any]]:
    """The trained model (eval mode, on ``device``), its tokenizer and its trainer options."""
    run_dir = Path(run_dir)
    model_config, train_options, tokenizer = load_config(run_dir)
    weights = run_dir / "model.safetensors"
    if not weights.is_file():
        raise Hw2Error(f"{weights} is missing; train first or give a finished run directory")
    model = GPT(model_config)
    load_weights(model, weights)
    return model.to(device).eval(), tokenizer, train_options


def save_training_state(run_dir: Path, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Write the optimizer's tensors to ``optimizer.safetensors`` and ``state`` plus the
    optimizer's param groups to ``state.json``."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for index, param_state in sd["state"].items():
        for name, value in param_state.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"state.{index}.{name}"] = tensor.detach().contiguous().cpu()
    with atomic_path(run_dir / "optimizer.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"step": str(state["step"])})
    write_json(run_dir / "state.json", {**state, "param_groups": sd["param_groups"]})


def load_training_state(run_dir: Path, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore the optimizer from ``run_dir`` and return the rest of ``state.json``."""
    state = _read_json(run_dir / "state.json")
    path = run_dir / "optimizer.safetensors"
    if not path.is_file():
        raise Hw2Error(f"{path} is missing; this run cannot be resumed, start a new one")
    flat = load_file(str(path))
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, tensor in flat.items():
        _, index, name = key.split(".", 2)
        per_param.setdefault(int(index), {})[name] = tensor
    groups = state.pop("param_groups")
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})
    return state


def check_consistent(run_dir: Path, step: int) -> None:
    """Refuse to resume when the weights and optimizer state belong to different steps."""
    from safetensors import safe_open

    with safe_open(str(run_dir / "model.safetensors"), framework="pt") as f:
        weight_step = int((f.metadata() or {}).get("step", -1))
    if weight_step != step:
        raise Hw2Error(
            f"{run_dir}: model.safetensors is from step {weight_step} but state.json from step {step}; "
            "the run was cut while saving, start a new one"
        )


def write_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``metrics.csv`` (one row per logged step; empty val_loss when not evaluated)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in METRIC_FIELDS})
    atomic_write_text(run_dir / "metrics.csv", buf.getvalue())


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``metrics.csv`` as numbers (``None`` for an empty val_loss)."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return []
    rows = []
    with path.open(newline="", encoding="utf-8") as fh:
        for raw in csv.DictReader(fh):
            row: dict[str, Any] = {"step": int(raw["step"])}
            for key in METRIC_FIELDS[1:]:
                row[key] = float(raw[key]) if raw[key] not in ("", None) else None
            rows.append(row)
    return rows


def plot_loss(run_dir: Path, rows: list[dict[str, Any]], title: str = "") -> None:
    """Draw ``loss.png``: train and validation loss against step (Figure 3)."""
    from matplotlib.figure import Figure  # no pyplot: the Agg canvas, no global state

    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    ax = fig.subplots()
    steps = [r["step"] for r in rows if r.get("train_loss") is not None]
    ax.plot(steps, [r["train_loss"] for r in rows if r.get("train_loss") is not None], label="train", lw=1.2)
    val = [(r["step"], r["val_loss"]) for r in rows if r.get("val_loss") is not None]
    if val:
        ax.plot(*zip(*val), "o-", label="validation", lw=1.2, ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy loss (nats/char)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(run_dir / "loss.png") as tmp:
        fig.savefig(tmp, format="png")
