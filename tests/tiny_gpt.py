"""The tiny GPT run the training, run-directory and read-back tests share: a 2 kB text and
gpt-nano options that train in well under a second a step."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from hw2cli.gpt.options import TrainOptions

TEXT = "".join(
    f"The {w} sat by the well and spun {n} threads of gold.\n"
    for n in range(12)
    for w in ("miller", "queen", "king", "frog")
)


def write_corpus(folder) -> object:
    path = folder / "tiny.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def tiny(corpus, out, **kw) -> TrainOptions:
    """gpt-nano on ``corpus`` for 12 steps with checkpoints at 6 and 12; ``kw`` overrides."""
    base = dict(
        txt_file=str(corpus),
        model_type="gpt-nano",
        block_size=16,
        batch_size=4,
        max_steps=12,
        eval_interval=6,
        eval_steps=2,
        log_interval=3,
        sample_interval=0,
        device="cpu",
        out=str(out),
    )
    return TrainOptions(**{**base, **kw})


def weights(run_dir) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "model.safetensors"))


def with_three_dropouts(run_dir) -> None:
    """Rewrite ``run_dir``'s config.json as hw2 wrote it before one dropout field: the model's
    dropout as ``embd_pdrop``, ``resid_pdrop`` and ``attn_pdrop`` (config.json is not hashed)."""
    path = run_dir / "config.json"
    config = json.loads(path.read_text())
    dropout = config["model"].pop("dropout")
    config["model"].update(embd_pdrop=dropout, resid_pdrop=dropout, attn_pdrop=dropout)
    path.write_text(json.dumps(config, indent=2) + "\n")
