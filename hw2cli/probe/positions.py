"""Q2.4a/b: what position information does, measured on the project's GPT.

(a) Without a causal mask and without positions, self-attention is permutation-equivariant:
permuting the input permutes the output, exactly (up to rounding; computed in float64). With
the causal mask, or with positions, it is not.
(b) The same small GPT trained on the same text for the same steps with no positions (NoPE),
learned absolute positions and RoPE: validation loss, and how much the last position's
next-token distribution moves when the characters before it are shuffled (mean KL). A causal
decoder can learn order from its mask alone (Haviv et al., 2022, "Transformer Language Models
without Positional Encodings Still Learn Positional Information").
(c) Length extrapolation: loss per position on sequences up to 4x the trained block size for
RoPE and NoPE (learned absolute positions have no embedding past the block size).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from hw2cli.common.errors import Hw2Error
from hw2cli.common.progress import Reporter
from hw2cli.probe import _gpt
from hw2cli.probe.common import FAILS, HOLDS, PARTLY, Verdict

EXTRAPOLATION = 4  # evaluate up to this many times the trained block size


@dataclass
class PermutationRow:
    causal_mask: bool
    pos_emb: str
    max_gap: float  # max |f(P x) - P f(x)| over the outputs (float64 logits)


@dataclass
class PositionsTraining:
    pos_emb: str
    val_loss: float | None
    shuffle_kl: float | None  # mean KL(p(next | prefix) || p(next | shuffled prefix))
    loss_by_span: dict[str, float | None] = field(default_factory=dict)  # "0-T", "T-2T", "2T-4T"
    loss_curve: list[float] = field(default_factory=list)  # loss per position, 0 .. 4T-1


@dataclass
class PositionsResult:
    device: str
    block_size: int
    train_steps: int
    permutation: list[PermutationRow] = field(default_factory=list)
    training: list[PositionsTraining] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    interrupted: bool = False


@contextlib.contextmanager
def bidirectional(model):
    """Let every position attend to every other while the block runs (the causal mask off)."""
    masks = [block.attn.mask for block in model.blocks]
    saved = [m.clone() for m in masks]
    for m in masks:
        m.fill_(True)
    try:
        yield model
    finally:
        for m, s in zip(masks, saved, strict=False):
            m.copy_(s)


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
        torch.manual_seed(seed)
        model = _gpt.gpt_model.GPT(_gpt.make_config(2, 2, 32, 32, length, pos_emb=pos)).double().eval()
        ctx = contextlib.nullcontext() if causal else bidirectional(model)
        with ctx:
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


def _span_means(curve: torch.Tensor, block: int) -> dict[str, float | None]:
    spans = {"0-T": (0, block), "T-2T": (block, 2 * block), "2T-4T": (2 * block, 4 * block)}
    return {name: (curve[a:b].mean().item() if len(curve) >= b else None) for name, (a, b) in spans.items()}


def _verdicts(result: PositionsResult) -> list[Verdict]:
    out = []
    bi = next(r for r in result.permutation if not r.causal_mask and r.pos_emb == "none")
    causal = next(r for r in result.permutation if r.causal_mask and r.pos_emb == "none")
    out.append(
        Verdict(
            "without positions (and without a causal mask) attention ignores word order",
            f"permuted input vs permuted output: max gap {bi.max_gap:.1e} (float64); "
            f"with the causal mask {causal.max_gap:.1e}",
            HOLDS if bi.max_gap < 1e-9 else FAILS,
        )
    )
    runs = {t.pos_emb: t for t in result.training}
    if {"none", "rope"} <= runs.keys() and runs["none"].shuffle_kl is not None:
        nope, rope = runs["none"], runs["rope"]
        untrained = rope.shuffle_kl < 1e-4  # RoPE ignores order too: too few steps to tell
        share = nope.shuffle_kl / rope.shuffle_kl if not untrained else float("nan")
        out.append(
            Verdict(
                "a causal decoder without positions cannot tell word orders apart",
                f"shuffling the prefix moves the next-char distribution by KL {nope.shuffle_kl:.3f} (NoPE) vs "
                f"{rope.shuffle_kl:.3f} (RoPE); val loss {nope.val_loss:.3f} vs {rope.val_loss:.3f}"
                + ("; neither model uses order yet, train longer" if untrained else ""),
                PARTLY if untrained else (HOLDS if share < 0.1 else (PARTLY if share < 0.5 else FAILS)),
            )
        )
    if "learned" in runs:
        out.append(
            Verdict(
                "learned absolute positions cannot serve sequences longer than the trained length",
                f"the position table has {result.block_size} rows: positions past T={result.block_size} have no "
                "embedding (the model refuses longer input)",
                HOLDS,
            )
        )
    if "rope" in runs and runs["rope"].loss_by_span.get("2T-4T") is not None:
        spans = runs["rope"].loss_by_span
        ratio = spans["2T-4T"] / spans["0-T"]
        nope_far = runs.get("none").loss_by_span.get("2T-4T") if "none" in runs else None
        extra = f"; NoPE {nope_far:.3f}" if nope_far is not None else ""
        out.append(
            Verdict(
                "relative positions (RoPE) extrapolate past the trained length",
                f"RoPE loss at positions 2T-4T {spans['2T-4T']:.3f} vs 0-T {spans['0-T']:.3f} "
                f"({ratio:.2f}x){extra}",
                HOLDS if ratio <= 1.05 else (PARTLY if ratio <= 1.25 else FAILS),
            )
        )
    return out


def positions(
    train_steps: int = 500,
    txt_file: str | None = None,
    device: str = "cpu",
    seed: int = 0,
    block_size: int = 64,
    batch_size: int = 32,
    windows: int = 64,
    reporter: Reporter | None = None,
) -> PositionsResult:
    """(a) the permutation table, then (b) and (c) from three trainings (none, learned, rope)."""
    reporter = reporter or Reporter()
    if block_size < 2:
        raise Hw2Error(f"--block-size must be at least 2, got {block_size}")
    result = PositionsResult(device=device, block_size=block_size, train_steps=train_steps)
    result.permutation = permutation_table(seed)
    spec = _gpt.TrainSpec(txt_file, train_steps, seed, device, block_size, batch_size)
    try:
        for pos in ("none", "learned", "rope"):
            t = _gpt.train_gpt(spec, f"pos_emb={pos}", reporter, pos_emb=pos)
            result.device = str(next(t.model.parameters()).device)
            val = _gpt.validation_ids(txt_file, t.tokenizer, block_size)
            batch = _gpt.windows(val, block_size, windows, seed)
            row = PositionsTraining(pos, t.val_loss, shuffle_kl(t.model, batch, seed))
            if pos != "learned":
                long_model = _gpt.with_block_size(t.model, EXTRAPOLATION * block_size)
                long_batch = _gpt.windows(val, EXTRAPOLATION * block_size, max(8, windows // 4), seed)
                curve = _gpt.loss_per_position(long_model, long_batch)
            else:
                short_batch = _gpt.windows(val, block_size, max(8, windows // 4), seed)
                curve = _gpt.loss_per_position(t.model, short_batch)
            row.loss_curve = curve.tolist()
            row.loss_by_span = _span_means(curve, block_size)
            result.training.append(row)
            if t.interrupted:
                result.interrupted = True
                break
    except KeyboardInterrupt:
        result.interrupted = True
    result.verdicts = _verdicts(result)
    return result
