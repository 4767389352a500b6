"""Q2.4a/b: what position information does, measured on the project's GPT.

(a) Without a causal mask and positions, self-attention is permutation-equivariant (exactly, in
float64); with either it is not. (b) A small GPT trained per seed with no positions (NoPE),
learned absolute positions and RoPE: validation loss, and how far the last position's next-token
distribution moves when the characters before it are shuffled (mean KL); a causal decoder can
learn order from its mask alone (Haviv et al., 2022). (c) Loss per position up to 4x the trained
block size. (b) and (c) decide only once RoPE itself uses word order (shuffling its prefix moves
it by ORDER_KL or more): before that every model ignores order and extrapolates trivially."""

from __future__ import annotations

import contextlib
import statistics
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console

from hw2cli.common.progress import Reporter
from hw2cli.common.seeding import seeded
from hw2cli.probe import _gpt
from hw2cli.probe.common import FAILS, HOLDS, INCONCLUSIVE, PARTLY, Verdict, band, mean
from hw2cli.probe.options import PositionsOptions

EXTRAPOLATION = 4  # evaluate up to this many times the trained block size
ORDER_KL = 0.05  # nats: a model whose prediction moves less when its prefix is shuffled ignores order
POSITIONS = ("none", "learned", "rope")


@dataclass
class PermutationRow:
    causal_mask: bool
    pos_emb: str
    max_gap: float  # max |f(P x) - P f(x)| over the outputs (float64 logits)


@dataclass
class PositionsTraining:
    """One position scheme; the numbers are means over the seeds, the lists hold one per seed."""

    pos_emb: str
    val_loss: float | None
    shuffle_kl: float | None  # mean KL(p(next | prefix) || p(next | shuffled prefix))
    loss_by_span: dict[str, float | None] = field(default_factory=dict)  # "0-T", "T-2T", "2T-4T"
    loss_curve: list[float] = field(default_factory=list)  # loss per position, 0 .. 4T-1
    val_losses: list[float] = field(default_factory=list)
    shuffle_kls: list[float] = field(default_factory=list)
    far_ratios: list[float] = field(default_factory=list)  # loss at 2T-4T / loss at 0-T


@dataclass
class PositionsResult:
    device: str
    block_size: int
    train_steps: int
    seeds: list[int] = field(default_factory=list)
    permutation: list[PermutationRow] = field(default_factory=list)
    training: list[PositionsTraining] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    interrupted: bool = False


@contextlib.contextmanager
def bidirectional(model):
    """Let every position attend to every other while the block runs (the causal mask off)."""
    saved = [block.attn.mask.clone() for block in model.blocks]
    for block in model.blocks:
        block.attn.mask.fill_(True)
    try:
        yield model
    finally:
        for block, mask in zip(model.blocks, saved, strict=True):
            block.attn.mask.copy_(mask)


def permutation_gap(model, idx: torch.Tensor, perm: torch.Tensor) -> float:
    """max |model(idx[:, perm]) - model(idx)[:, perm]|: 0 for a permutation-equivariant model."""
    with torch.no_grad():
        return (model(idx[:, perm]) - model(idx)[:, perm]).abs().max().item()


def permutation_table(seed: int = 0, length: int = 16) -> list[PermutationRow]:
    """The permutation gap of a random 2-layer GPT in float64 for each mask/position setting."""
    rows = []
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 32, (4, length), generator=gen)
    perm = torch.randperm(length, generator=gen)
    for causal, pos in ((False, "none"), (True, "none"), (False, "learned"), (False, "rope")):
        with seeded(seed):
            model = _gpt.gpt_model.GPT(_gpt.make_config(2, 2, 32, 32, length, pos_emb=pos)).double().eval()
        with contextlib.nullcontext() if causal else bidirectional(model):
            rows.append(PermutationRow(causal, pos, permutation_gap(model, idx, perm)))
    return rows


def shuffle_kl(model, batch: torch.Tensor, seed: int) -> float:
    """Mean KL between the next-token distributions at the last position of each window,
    before and after shuffling the characters that precede it (the last one stays)."""
    device = next(model.parameters()).device
    x = batch[:, :-1]
    gen = torch.Generator().manual_seed(seed)
    shuffled = x.clone()
    for row in range(len(x)):
        perm = torch.randperm(x.size(1) - 1, generator=gen)
        shuffled[row, :-1] = x[row, :-1][perm]
    with torch.no_grad():
        a = F.log_softmax(model(x.to(device))[:, -1].double(), -1)
        b = F.log_softmax(model(shuffled.to(device))[:, -1].double(), -1)
    return F.kl_div(b, a, log_target=True, reduction="batchmean").item()


def _banded(
    claim: str,
    measurement: str,
    values: list[float],
    edges: tuple[float, float],
    guard: str | None,
    rule: str,
) -> Verdict:
    """Holds below the first edge, partly below the second, else does not hold, in every seed;
    inconclusive when the guard says the models cannot show it yet, or the seeds fall on both
    sides of an edge."""
    verdict = INCONCLUSIVE if guard else band(values, list(edges), [HOLDS, PARTLY, FAILS])
    why = guard or (rule if verdict else f"the seeds' ratios straddle {edges[0]:g} or {edges[1]:g}")
    return Verdict(claim, measurement, verdict or INCONCLUSIVE, why)


def _order_guard(rope: PositionsTraining) -> str | None:
    """Why the trained models cannot decide yet (None when RoPE uses order in every seed)."""
    if len(rope.shuffle_kls) < 2:
        return "one training: no spread between seeds to judge by"
    if min(rope.shuffle_kls) < ORDER_KL:
        return (
            f"RoPE itself hardly uses word order yet (shuffling its prefix moves it by KL "
            f"{min(rope.shuffle_kls):.3f} < {ORDER_KL} in some seed): train longer"
        )
    return None


def _verdicts(result: PositionsResult) -> list[Verdict]:
    gaps = {(r.causal_mask, r.pos_emb): r.max_gap for r in result.permutation}
    bi, causal = gaps[False, "none"], gaps[True, "none"]
    claim = "without positions (and without a causal mask) attention ignores word order"
    measurement = f"permuted input vs permuted output: max gap {bi:.1e} (float64); "
    measurement += f"with the causal mask {causal:.1e}"
    exact = "exact: float64 rounding is below 1e-9"
    out = [Verdict(claim, measurement, HOLDS if bi < 1e-9 else FAILS, exact)]
    runs = {t.pos_emb: t for t in result.training}
    rope, nope = runs.get("rope"), runs.get("none")
    guard = _order_guard(rope) if rope is not None and rope.shuffle_kls else None
    if rope is not None and nope is not None and rope.shuffle_kls and nope.shuffle_kls:
        shares = [n / max(r, 1e-12) for n, r in zip(nope.shuffle_kls, rope.shuffle_kls, strict=False)]
        measurement = (
            f"shuffling the prefix moves the next-char distribution by KL {nope.shuffle_kl:.3f} (NoPE) vs "
            f"{rope.shuffle_kl:.3f} (RoPE), NoPE/RoPE {min(shares):.2f}..{max(shares):.2f} over {len(shares)} seeds; "
            f"val loss {nope.val_loss:.3f} vs {rope.val_loss:.3f}"
        )
        claim = "a causal decoder without positions cannot tell word orders apart"
        rule = "NoPE/RoPE below 0.1 holds, below 0.5 partly, in every seed"
        out.append(_banded(claim, measurement, shares, (0.1, 0.5), guard, rule))
    if "learned" in runs:
        claim = "learned absolute positions cannot serve sequences longer than the trained length"
        T = result.block_size
        measurement = f"the position table has {T} rows: positions past T={T} have no embedding"
        measurement += " (the model refuses longer input)"
        out.append(Verdict(claim, measurement, HOLDS, "by construction"))
    if rope is not None and rope.far_ratios:
        spans = rope.loss_by_span
        nope_far = nope.loss_by_span.get("2T-4T") if nope is not None else None
        extra = f"; NoPE {nope_far:.3f}" if nope_far is not None else ""
        ratios = rope.far_ratios
        measurement = f"RoPE loss at positions 2T-4T {spans['2T-4T']:.3f} vs 0-T {spans['0-T']:.3f} "
        measurement += f"({min(ratios):.2f}..{max(ratios):.2f}x over {len(ratios)} seeds){extra}"
        claim = "relative positions (RoPE) extrapolate past the trained length"
        rule = "at most 1.05x holds, at most 1.25x partly, in every seed"
        out.append(_banded(claim, measurement, ratios, (1.05, 1.25), guard, rule))
    return out


def _measure(t: _gpt.TrainResult, txt: str, opts: PositionsOptions, seed: int) -> PositionsTraining:
    """Shuffle KL on held-out windows, and the loss per position (up to 4T where the positions allow)."""
    block = opts.block_size
    val = _gpt.validation_ids(txt, t.tokenizer, block)
    batch = _gpt.windows(val, block, opts.windows, seed)
    row = PositionsTraining(t.model.config.pos_emb, t.val_loss, shuffle_kl(t.model, batch, seed))
    long = block if row.pos_emb == "learned" else EXTRAPOLATION * block
    model = t.model if long == block else _gpt.with_block_size(t.model, long)
    curve = _gpt.loss_per_position(model, _gpt.windows(val, long, max(8, opts.windows // 4), seed))
    row.loss_curve = curve.tolist()
    spans = {"0-T": (0, block), "T-2T": (block, 2 * block), "2T-4T": (2 * block, 4 * block)}
    row.loss_by_span = {
        name: curve[a:b].mean().item() if len(curve) >= b else None for name, (a, b) in spans.items()
    }
    return row


def _mean_row(pos: str, rows: list[PositionsTraining]) -> PositionsTraining:
    """The seeds' rows of one position scheme as one: means, and the per-seed lists."""
    val_losses = [r.val_loss for r in rows if r.val_loss is not None]
    kls = [r.shuffle_kl for r in rows]
    out = PositionsTraining(pos, mean(val_losses), mean(kls), val_losses=val_losses, shuffle_kls=kls)
    out.loss_curve = torch.tensor([r.loss_curve for r in rows]).mean(0).tolist()
    for span, first in rows[0].loss_by_span.items():
        spans = [r.loss_by_span[span] for r in rows]
        out.loss_by_span[span] = None if first is None else statistics.fmean(spans)
    if out.loss_by_span.get("2T-4T") is not None:
        out.far_ratios = [r.loss_by_span["2T-4T"] / r.loss_by_span["0-T"] for r in rows]
    return out


def positions(opts: PositionsOptions, reporter: Reporter | None = None) -> PositionsResult:
    """(a) the permutation table, then (b) and (c) from three trainings (none, learned, rope) per seed."""
    reporter = reporter or Reporter()
    result = PositionsResult(opts.device, opts.block_size, opts.size("steps"), seeds=opts.seeds)
    result.permutation = permutation_table(opts.seed)
    rows: dict[str, list[PositionsTraining]] = {pos: [] for pos in POSITIONS}
    configs = {pos: (f"pos_emb={pos}", {"pos_emb": pos}) for pos in POSITIONS}
    try:
        for txt, seed, pos, t in _gpt.trainings(opts, reporter, "positions", configs, result):
            rows[pos].append(_measure(t, txt, opts, seed))
    except KeyboardInterrupt:
        result.interrupted = True
    result.training = [_mean_row(pos, found) for pos, found in rows.items() if found]
    result.verdicts = _verdicts(result)
    return result


def tables(r: PositionsResult, console: Console) -> None:
    from hw2cli.probe.common import cell, mean_spread, show

    title = "(a) Random 2-layer GPT, float64: max |f(P·x) − P·f(x)| for a random permutation P"
    rows = [("yes" if x.causal_mask else "no", x.pos_emb, f"{x.max_gap:.2e}") for x in r.permutation]
    show(console, title, ("causal mask", "positions", "max gap"), rows)
    if not r.training:
        return
    T, seeds = r.block_size, ", ".join(map(str, r.seeds))
    title = f"(b, c) gpt-nano trained {r.train_steps} steps at block T={T} on {r.device}, means over seeds {seeds}"
    columns = ("positions", "val loss", "KL after shuffling the prefix (spread)", f"loss 0–{T}")
    columns += (f"loss {T}–{2 * T}", f"loss {2 * T}–{4 * T}")
    rows = []
    for t in r.training:
        spans = t.loss_by_span
        far = [cell(spans.get("T-2T")), cell(spans.get("2T-4T"))]
        if t.pos_emb == "learned":
            far = ["n/a: no embedding past T"] * 2
        kl = mean_spread(t.shuffle_kl, t.shuffle_kls, ".4f")
        rows.append((t.pos_emb, cell(t.val_loss), kl, cell(spans.get("0-T")), *far))
    show(console, title, columns, rows)


def figure(r: PositionsResult) -> Any:
    import numpy as np

    from hw2cli.probe.render import distinct_lines, finish, new_figure

    fig = new_figure(figsize=(11, 4))
    ax_c, ax_k = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    width = max(1, r.block_size // 8)  # a moving mean: single positions are noisy
    curves = {}
    for t in r.training:
        curve = np.convolve(t.loss_curve, np.ones(width) / width, mode="valid")
        curves[t.pos_emb] = list(zip(np.arange(len(curve)) + (width - 1) / 2, curve, strict=True))
    distinct_lines(ax_c, curves)
    ax_c.axvline(r.block_size - 0.5, color="k", ls="--", lw=0.8, label="trained block size")
    ax_c.set(
        xlabel="position",
        ylabel=f"next-char loss (mean of {width} positions)",
        title="loss per position (extrapolation)",
    )
    ax_k.bar([t.pos_emb for t in r.training], [t.shuffle_kl or 0 for t in r.training])
    ax_k.set(ylabel="mean KL (nats)", title="prefix shuffled: next-char change")
    return finish(fig, ax_c, ax_k)
