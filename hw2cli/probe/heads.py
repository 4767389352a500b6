"""Q2.1d: several heads, at the cost of one, attend to different things.

The same width (gpt-nano: 3 layers, 48 channels) is trained with 1, 2, 4 and 8 heads for the
same steps and seed; the parameter count and the attention FLOPs do not depend on the number of
heads. Measured: the validation loss, and how different the heads' attention is: the mean
pairwise Jensen-Shannon divergence (bits, 0 = same, 1 = disjoint) between the heads' attention
rows on held-out text, averaged over query positions, layers and pairs of heads.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch

from hw2cli.common.errors import Hw2Error
from hw2cli.common.progress import Reporter
from hw2cli.gpt.model import PRESETS
from hw2cli.probe import _gpt
from hw2cli.probe.common import FAILS, HOLDS, PARTLY, Verdict

DEFAULT_HEADS = (1, 2, 4, 8)
MODEL_TYPE = "gpt-nano"  # 3 layers of width 48: the heads vary, the width stays
WIDTH, LAYERS = PRESETS[MODEL_TYPE]["n_embd"], PRESETS[MODEL_TYPE]["n_layer"]
PROMPT_LENGTH = 32


@dataclass
class HeadsRow:
    n_head: int
    head_size: int
    num_params: int
    val_loss: float | None
    js_bits: float | None  # mean pairwise Jensen-Shannon divergence; None for one head


@dataclass
class HeadsResult:
    device: str
    width: int
    layers: int
    train_steps: int
    prompt: str = ""
    rows: list[HeadsRow] = field(default_factory=list)
    maps: dict[int, list] = field(default_factory=dict)  # n_head -> last layer's (n_head, T, T) on the prompt
    verdicts: list[Verdict] = field(default_factory=list)
    interrupted: bool = False


def js_bits(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence in bits between distributions along the last axis."""
    m = (p + q) / 2

    def kl(a, b):
        log_ratio = torch.log2(a.clamp_min(1e-300)) - torch.log2(b.clamp_min(1e-300))
        return torch.where(a > 0, a * log_ratio, 0).sum(-1)

    return (kl(p, m) + kl(q, m)) / 2


def mean_pairwise_js(maps: list[torch.Tensor]) -> float | None:
    """Mean JS divergence over pairs of heads, query positions 1.. (row 0 sees one key), layers."""
    values = []
    for layer in maps:  # (B, H, T, T)
        layer = layer.double()
        for i, j in itertools.combinations(range(layer.size(1)), 2):
            values.append(js_bits(layer[:, i, 1:], layer[:, j, 1:]).mean())
    return torch.stack(values).mean().item() if values else None


def _verdicts(result: HeadsResult) -> list[Verdict]:
    out = []
    multi = [r for r in result.rows if r.js_bits is not None]
    if multi:
        low = min(r.js_bits for r in multi)
        listing = ", ".join(f"{r.n_head} heads {r.js_bits:.2f}" for r in multi)
        out.append(
            Verdict(
                "the heads capture different patterns",
                f"mean pairwise Jensen-Shannon divergence of the heads' attention (bits, 0..1): {listing}",
                HOLDS if low >= 0.1 else (PARTLY if max(r.js_bits for r in multi) >= 0.1 else FAILS),
            )
        )
    one = next((r for r in result.rows if r.n_head == 1 and r.val_loss is not None), None)
    others = [r for r in result.rows if r.n_head > 1 and r.val_loss is not None]
    if one and others:
        best = min(others, key=lambda r: r.val_loss)
        gain = one.val_loss - best.val_loss
        out.append(
            Verdict(
                "several heads beat one at the same cost",
                f"validation loss after {result.train_steps} steps: 1 head {one.val_loss:.3f}, "
                f"best {best.n_head} heads {best.val_loss:.3f} ({-gain:+.3f}); "
                f"{one.num_params:,} parameters each",
                HOLDS if gain > 0.01 * one.val_loss else (FAILS if gain < 0 else PARTLY),
            )
        )
    return out


def heads(
    n_heads: list[int] | None = None,
    train_steps: int = 500,
    txt_file: str | None = None,
    device: str = "cpu",
    seed: int = 0,
    block_size: int = 64,
    batch_size: int = 32,
    windows: int = 32,
    reporter: Reporter | None = None,
) -> HeadsResult:
    """Train one model per head count, then measure loss and head diversity on held-out text."""
    reporter = reporter or Reporter()
    n_heads = list(n_heads or DEFAULT_HEADS)
    for h in n_heads:
        if h < 1 or WIDTH % h or (WIDTH // h) % 2:
            raise Hw2Error(
                f"--heads: {h} does not split width {WIDTH} into heads of even size; use 1, 2, 4, 8, 12 or 24"
            )
    result = HeadsResult(device=device, width=WIDTH, layers=LAYERS, train_steps=train_steps)
    spec = _gpt.TrainSpec(txt_file, train_steps, seed, device, block_size, batch_size)
    try:
        for h in n_heads:
            t = _gpt.train_gpt(
                spec, f"{h} head{'s' if h > 1 else ''}", reporter, model_type=MODEL_TYPE, n_head=h
            )
            model = t.model
            result.device = str(next(model.parameters()).device)
            val = _gpt.validation_ids(txt_file, t.tokenizer, block_size)
            batch = _gpt.windows(val, block_size, windows, seed)[:, :-1]
            maps = _gpt.attention_maps(model, batch.to(result.device))
            js = mean_pairwise_js(maps) if h > 1 else None
            prompt = val[: min(PROMPT_LENGTH, block_size)]
            result.prompt = t.tokenizer.decode(prompt.tolist())
            result.maps[h] = _gpt.attention_maps(model, prompt[None].to(result.device))[-1][0].cpu().tolist()
            params = sum(p.numel() for p in model.parameters())
            result.rows.append(HeadsRow(h, WIDTH // h, params, t.val_loss, js))
            if t.interrupted:
                result.interrupted = True
                break
    except KeyboardInterrupt:
        result.interrupted = True
    result.verdicts = _verdicts(result)
    return result
