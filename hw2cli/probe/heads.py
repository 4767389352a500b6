"""Q2.1d: several heads, at the cost of one, attend to different things.

gpt-nano (3 layers of width 48) is trained with 1, 2, 4 and 8 heads, once per seed: parameters and
attention FLOPs do not depend on the head count. Measured: the validation loss, the mean pairwise
Jensen-Shannon divergence (bits, 0 = same, 1 = disjoint) between the heads' attention rows on
held-out text, and each head's distance from uniform attention (untrained heads are alike too)."""

from __future__ import annotations

import itertools
import textwrap
from dataclasses import dataclass, field
from typing import Any

import torch
from rich.console import Console

from hw2cli.common.progress import Reporter
from hw2cli.probe import _gpt
from hw2cli.probe.common import FAILS, HOLDS, INCONCLUSIVE, Verdict, band, combine, compared, mean, spread
from hw2cli.probe.options import HeadsOptions

NANO = _gpt.gpt_model.PRESETS["gpt-nano"]  # its width stays, the heads vary
WIDTH, LAYERS = NANO["n_embd"], NANO["n_layer"]
PROMPT_LENGTH = 32
DIFFERENT = 0.1  # bits of JS divergence from which two attention patterns count as different


@dataclass
class HeadsRow:
    n_head: int
    head_size: int
    num_params: int
    val_loss: float | None  # mean over the seeds
    js_bits: float | None  # mean pairwise Jensen-Shannon divergence, mean over the seeds; None for one head
    val_losses: list[float] = field(default_factory=list)  # one per seed
    js_seeds: list[float] = field(default_factory=list)
    focus_bits: float | None = None  # mean JS divergence between a head's attention and uniform attention


@dataclass
class HeadsResult:
    device: str
    width: int
    layers: int
    train_steps: int
    prompt: str = ""
    seeds: list[int] = field(default_factory=list)
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


def focus_bits(maps: list[torch.Tensor]) -> float:
    """Mean JS divergence (bits) between each head's attention rows and uniform causal attention
    (row i spread evenly over keys 0..i), over query positions 1.., heads and layers."""
    values = []
    for layer in maps:  # (B, H, T, T)
        uniform = torch.tril(torch.ones(layer.shape[-2:], dtype=torch.float64))
        uniform = (uniform / uniform.sum(-1, keepdim=True)).expand_as(layer)
        values.append(js_bits(layer.double()[:, :, 1:], uniform[:, :, 1:]).mean())
    return torch.stack(values).mean().item()


def _diversity_verdict(result: HeadsResult) -> Verdict | None:
    """Each head count's heads are different (every seed >= DIFFERENT bits) or alike (every seed
    below); heads near uniform attention cannot be told apart yet, so they do not decide."""
    multi = [r for r in result.rows if r.js_seeds]
    if not multi:
        return None
    listing = ", ".join(f"{r.n_head} heads {r.js_bits:.2f} (spread {spread(r.js_seeds):.2f})" for r in multi)
    focus = min(r.focus_bits for r in multi)
    measurement = (
        f"mean pairwise Jensen-Shannon divergence of the heads' attention (bits, 0..1), mean of "
        f"{len(multi[0].js_seeds)} seeds: {listing}; distance from uniform attention >= {focus:.2f}"
    )
    claim = "the heads capture different patterns"
    if focus < DIFFERENT:
        why = f"the heads still attend almost uniformly ({focus:.2f} bits from uniform): train longer"
        return Verdict(claim, measurement, INCONCLUSIVE, why)
    if min(len(r.js_seeds) for r in multi) < 2:
        return Verdict(claim, measurement, INCONCLUSIVE, "one training: no spread between seeds to judge by")
    kinds = [band(r.js_seeds, [DIFFERENT], [FAILS, HOLDS]) or INCONCLUSIVE for r in multi]  # alike, different
    if INCONCLUSIVE in kinds:
        why = f"for some head counts the seeds fall on both sides of {DIFFERENT} bits"
        return Verdict(claim, measurement, INCONCLUSIVE, why)
    why = f"{DIFFERENT} bits or more counts as different, in every seed"
    return Verdict(claim, measurement, combine(kinds), why)


def _loss_verdict(result: HeadsResult) -> Verdict | None:
    """One head against the best of the others, mean over seeds, against their spread."""
    one = next((r for r in result.rows if r.n_head == 1 and r.val_losses), None)
    others = [r for r in result.rows if r.n_head > 1 and r.val_losses]
    if one is None or not others:
        return None
    best = min(others, key=lambda r: r.val_loss)
    gain = one.val_loss - best.val_loss
    noise = max(spread(one.val_losses), spread(best.val_losses))
    measurement = (
        f"validation loss after {result.train_steps} steps, mean of {len(one.val_losses)} seeds: 1 head "
        f"{one.val_loss:.3f}, best {best.n_head} heads {best.val_loss:.3f} ({-gain:+.3f}; spread between "
        f"seeds {noise:.3f}); {one.num_params:,} parameters each"
    )
    return compared("several heads beat one at the same cost", measurement, one.val_losses, best.val_losses)


def heads(opts: HeadsOptions, reporter: Reporter | None = None) -> HeadsResult:
    """Train one model per head count and seed, then measure loss and head diversity on held-out text."""
    reporter = reporter or Reporter()
    result = HeadsResult(opts.device, WIDTH, LAYERS, opts.size("steps"), seeds=opts.seeds)
    counts = opts.size("heads")
    rows = {h: HeadsRow(h, WIDTH // h, 0, None, None) for h in counts}
    focus: dict[int, list[float]] = {h: [] for h in counts}
    configs = {h: (f"{h} head{'s' if h > 1 else ''}", {"n_head": h}) for h in counts}
    try:
        for txt, seed, h, t in _gpt.trainings(opts, reporter, "heads", configs, result):
            model, row = t.model, rows[h]
            val = _gpt.validation_ids(txt, t.tokenizer, opts.block_size)
            batch = _gpt.windows(val, opts.block_size, opts.windows, seed)[:, :-1]
            maps = _gpt.attention_maps(model, batch.to(result.device))
            focus[h].append(focus_bits(maps))
            if h > 1:
                row.js_seeds.append(mean_pairwise_js(maps))
            if t.val_loss is not None:
                row.val_losses.append(t.val_loss)
            row.num_params = sum(p.numel() for p in model.parameters())
            if h not in result.maps:  # the figure: the first seed's model
                prompt = val[: min(PROMPT_LENGTH, opts.block_size)]
                result.prompt = t.tokenizer.decode(prompt.tolist())
                last = _gpt.attention_maps(model, prompt[None].to(result.device))[-1]
                result.maps[h] = last[0].cpu().tolist()
    except KeyboardInterrupt:
        result.interrupted = True
    for h, row in rows.items():
        if focus[h]:
            row.val_loss, row.js_bits = mean(row.val_losses), mean(row.js_seeds)
            row.focus_bits = mean(focus[h])
            result.rows.append(row)
    result.verdicts = [v for v in (_diversity_verdict(result), _loss_verdict(result)) if v is not None]
    return result


def tables(r: HeadsResult, console: Console) -> None:
    from hw2cli.probe.common import cell, mean_spread, show

    seeds = ", ".join(map(str, r.seeds))
    title = f"{r.layers} layers x width {r.width}, {r.train_steps} steps, means over seeds {seeds}"
    title += f", on {r.device}"
    columns = ("heads", "head size", "parameters", "val loss (spread)", "JS bits (spread)", "from uniform")
    rows = [
        (str(x.n_head), str(x.head_size), f"{x.num_params:,}", mean_spread(x.val_loss, x.val_losses))
        + (mean_spread(x.js_bits, x.js_seeds, ".2f"), cell(x.focus_bits, ".2f"))
        for x in r.rows
    ]
    show(console, title, columns, rows)


def figure(r: HeadsResult) -> Any:
    """One row per head count, one panel per head: the last layer's attention on the prompt."""
    from hw2cli.probe.render import new_figure

    counts = sorted(r.maps, key=int)
    cols = max((int(h) for h in counts), default=1)
    fig = new_figure(figsize=(1.9 * cols + 1.6, 2.0 * max(1, len(counts)) + 1.0), layout="constrained")
    axes, image = [], None
    for i, h in enumerate(counts):
        for j, head_map in enumerate(r.maps[h]):
            ax = fig.add_subplot(len(counts), cols, i * cols + j + 1)
            image = ax.imshow(head_map, cmap="viridis", vmin=0, vmax=1)
            ax.set(xticks=[], yticks=[])
            ax.set_xlabel("key position →", fontsize=8)
            ax.set_title(f"head {j + 1}", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{h} head{'s' if int(h) > 1 else ''}\n← query position", fontsize=9)
            axes.append(ax)
    if image is not None:
        fig.colorbar(image, ax=axes, label="attention weight", shrink=0.8)
    prompt = textwrap.fill(repr(r.prompt), width=max(40, int(14 * cols)))
    fig.suptitle(f"last layer's attention (seed {r.seeds[0] if r.seeds else 0}) on\n{prompt}", fontsize=9)
    return fig
