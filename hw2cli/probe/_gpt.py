"""The probes' one door to the GPT model and trainer (hw2cli.gpt): ``GPTConfig.pos_emb``
("rope" | "learned" | "none"), ``GPTConfig.attn_scale``, ``model.record_attention()`` and the
matching ``TrainOptions`` fields.

Training goes through ``hw2cli.gpt.train.train`` in memory (no run directory): the trained model
comes back in its result. Nothing here copies the trainer or the model.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F

from hw2cli.common.errors import Hw2Error
from hw2cli.common.options import OptionError
from hw2cli.common.progress import Reporter
from hw2cli.gpt import model as gpt_model
from hw2cli.gpt.data import load_text, split_data
from hw2cli.gpt.options import TrainOptions
from hw2cli.gpt.tokens import CharTokenizer
from hw2cli.gpt.train import TrainResult, train


def make_config(
    n_layer: int,
    n_head: int,
    n_embd: int,
    vocab_size: int,
    block_size: int,
    pos_emb: str = "rope",
    attn_scale: bool = True,
    flash: bool = False,
) -> gpt_model.GPTConfig:
    """A dropout-free GPTConfig with the given positions and attention scale."""
    return gpt_model.GPTConfig(
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        vocab_size=vocab_size,
        block_size=block_size,
        dropout=0.0,
        use_flash_attn=flash,
        pos_emb=pos_emb,
        attn_scale=attn_scale,
    )


def with_block_size(model: gpt_model.GPT, block_size: int) -> gpt_model.GPT:
    """The same weights in a model built for ``block_size`` positions (RoPE tables and the
    causal mask are buffers made from the config); refused for learned absolute positions."""
    if model.config.pos_emb == "learned" and block_size > model.config.block_size:
        raise Hw2Error("learned absolute positions have no embedding past the trained block size")
    config = replace(model.config, block_size=block_size)
    longer = gpt_model.GPT(config)
    longer.load_state_dict(model.state_dict())
    return longer.to(next(model.parameters()).device).eval()


def attention_maps(model: gpt_model.GPT, idx: torch.Tensor) -> list[torch.Tensor]:
    """One (B, n_head, T, T) tensor of softmax attention weights per layer."""
    with torch.no_grad(), model.record_attention() as maps:
        model(idx)
    return list(maps)


def train_options(
    txt_file: str | None, steps: int, seed: int, device: str, block_size: int = 64, batch_size: int = 32
) -> TrainOptions:
    """The probes' training run, in memory: gpt-nano without dropout, five validation losses,
    no samples; a probe varies it with ``train_gpt``'s ``changes``."""
    return TrainOptions(
        txt_file=txt_file,
        model_type="gpt-nano",
        block_size=block_size,
        batch_size=batch_size,
        lr=1e-3,
        max_steps=steps,
        seed=seed,
        device=device,
        dropout=0.0,
        eval_interval=max(1, steps // 5),
        eval_steps=10,
        log_interval=max(1, steps // 50),
        sample_interval=0,
        sample_tokens=0,  # not even the greedy sample at the end
        out=None,
    )


def train_gpt(opts: TrainOptions, label: str, reporter: Reporter, **changes: Any) -> TrainResult:
    """Train ``opts`` with ``changes`` (e.g. ``pos_emb``, ``n_head``) by hw2cli.gpt.train.train."""
    reporter.log(f"training {label} ({opts.max_steps} steps)")
    return train(replace(opts, **changes), reporter=reporter)


def validation_ids(
    txt_file: str | None, tokenizer: CharTokenizer, block_size: int, val_fraction: float = 0.1
) -> torch.Tensor:
    """The held-out ids the trainer validates on (its default split of the same text)."""
    text, _ = load_text(txt_file)
    data = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    return split_data(data, val_fraction, block_size)[1]


def windows(ids: torch.Tensor, length: int, count: int, seed: int) -> torch.Tensor:
    """``count`` windows of ``length + 1`` ids drawn with a seeded generator (inputs + target)."""
    if len(ids) < length + 1:
        raise OptionError(
            f"the validation text has {len(ids)} characters, fewer than {length + 1}; use a longer {{txt_file}}"
        )
    gen = torch.Generator().manual_seed(seed)
    starts = torch.randint(len(ids) - length, (count,), generator=gen)
    return ids[starts[:, None] + torch.arange(length + 1)]


def loss_per_position(model, batch: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy at each position of ``batch`` (B, T + 1) -> (T,)."""
    device = next(model.parameters()).device
    x, y = batch[:, :-1].to(device), batch[:, 1:].to(device)
    with torch.no_grad():
        logits = model(x)
    loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="none")
    return loss.view(y.shape).mean(0).cpu()
