"""Q2.1c: the 1/sqrt(d_k) factor keeps the softmax from saturating and its gradient from vanishing.

Part one draws random queries and keys (standard normal, as after a normalised projection) for
each head size d_k and measures, with and without the factor: the variance of q.k, the largest
softmax probability, its entropy and the norm of the softmax's Jacobian (the factor every
gradient through the attention weights is multiplied by). Part two trains the same small GPT
with and without the factor for the same steps and seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from hw2cli.common.progress import Reporter
from hw2cli.probe import _gpt
from hw2cli.probe.common import FAILS, HOLDS, PARTLY, Verdict, loglog_slope

DEFAULT_DK = (16, 32, 64, 128, 256, 512, 1024)
QUICK_DK = (16, 64, 256)
KEYS = 64  # keys per query: the entropy of a uniform softmax is ln(64) = 4.16 nats
QUERIES = 1024


@dataclass
class ScaleRow:
    d_k: int
    scaled: bool
    score_var: float
    max_prob: float
    entropy: float
    jacobian_norm: float  # mean Frobenius norm of d softmax / d scores


@dataclass
class ScaleTraining:
    scaled: bool
    val_loss: float | None
    curve: list[dict[str, Any]] = field(default_factory=list)  # step, train_loss, val_loss


@dataclass
class SoftmaxScaleResult:
    device: str
    keys: int
    queries: int
    rows: list[ScaleRow] = field(default_factory=list)
    var_slope: float | None = None
    train_head_size: int | None = None
    training: list[ScaleTraining] = field(default_factory=list)
    train_steps: int = 0
    verdicts: list[Verdict] = field(default_factory=list)
    interrupted: bool = False


def softmax_stats(scores: torch.Tensor) -> tuple[float, float, float]:
    """Mean largest probability, mean entropy (nats) and mean Frobenius norm of the softmax
    Jacobian diag(p) - p p^T over the rows of ``scores`` (R, T)."""
    p = torch.softmax(scores.double(), dim=-1)
    entropy = -(p * torch.log(p.clamp_min(1e-300))).sum(-1)
    # ||diag(p) - p p^T||_F^2 = sum p_i^2 - 2 sum p_i^3 + (sum p_i^2)^2
    s2, s3 = (p**2).sum(-1), (p**3).sum(-1)
    jac = torch.sqrt((s2 - 2 * s3 + s2**2).clamp_min(0))
    return p.max(-1).values.mean().item(), entropy.mean().item(), jac.mean().item()


def score_rows(d_k: int, seed: int, queries: int = QUERIES, keys: int = KEYS) -> list[ScaleRow]:
    """The unscaled and the scaled row for one head size."""
    gen = torch.Generator().manual_seed(seed * 100_003 + d_k)
    q = torch.randn(queries, d_k, generator=gen, dtype=torch.float64)
    k = torch.randn(queries, keys, d_k, generator=gen, dtype=torch.float64)
    raw = torch.einsum("rd,rtd->rt", q, k)
    rows = []
    for scaled in (False, True):
        scores = raw / math.sqrt(d_k) if scaled else raw
        rows.append(ScaleRow(d_k, scaled, scores.var().item(), *softmax_stats(scores)))
    return rows


def _verdicts(result: SoftmaxScaleResult) -> list[Verdict]:
    out = []
    slope = result.var_slope
    out.append(
        Verdict(
            "without the factor the variance of q.k grows with d_k",
            f"log-log slope of Var(q.k) against d_k: {slope:.2f} (1 = linear); with the factor it stays near 1",
            HOLDS if slope is not None and 0.9 <= slope <= 1.1 else PARTLY,
        )
    )
    top = max(r.d_k for r in result.rows)
    raw = next(r for r in result.rows if r.d_k == top and not r.scaled)
    sc = next(r for r in result.rows if r.d_k == top and r.scaled)
    ratio = raw.jacobian_norm / sc.jacobian_norm if sc.jacobian_norm else float("nan")
    out.append(
        Verdict(
            "without the factor the softmax saturates and its gradient shrinks",
            f"d_k={top}: max prob {raw.max_prob:.2f} vs {sc.max_prob:.2f}, Jacobian norm "
            f"{raw.jacobian_norm:.3f} vs {sc.jacobian_norm:.3f} ({ratio:.2f}x)",
            HOLDS if ratio < 0.5 else (PARTLY if ratio < 0.9 else FAILS),
        )
    )
    if len(result.training) == 2 and all(t.val_loss is not None for t in result.training):
        with_s = next(t for t in result.training if t.scaled).val_loss
        without = next(t for t in result.training if not t.scaled).val_loss
        gap = without - with_s
        out.append(
            Verdict(
                "without the factor training learns more slowly",
                f"validation loss after {result.train_steps} steps (head size {result.train_head_size}): "
                f"{without:.3f} without, {with_s:.3f} with ({gap:+.3f})",
                HOLDS if gap > 0.02 * with_s else (FAILS if gap < 0.005 * with_s else PARTLY),
            )
        )
    return out


def softmax_scale(
    dks: list[int] | None = None,
    train_steps: int = 500,
    txt_file: str | None = None,
    device: str = "cpu",
    seed: int = 0,
    block_size: int = 64,
    batch_size: int = 32,
    reporter: Reporter | None = None,
) -> SoftmaxScaleResult:
    """Softmax statistics per head size, then the two trainings (skipped when train_steps is 0)."""
    reporter = reporter or Reporter()
    dks = list(dks or DEFAULT_DK)
    result = SoftmaxScaleResult(device=device, keys=KEYS, queries=QUERIES, train_steps=train_steps)
    for d_k in dks:
        result.rows += score_rows(d_k, seed)
    raw = [r for r in result.rows if not r.scaled]
    result.var_slope = loglog_slope([r.d_k for r in raw], [r.score_var for r in raw])
    try:
        if train_steps:
            spec = _gpt.TrainSpec(txt_file, train_steps, seed, device, block_size, batch_size)
            preset = _gpt.gpt_model.PRESETS[spec.model_type]
            result.train_head_size = preset["n_embd"] // preset["n_head"]
            for scaled in (True, False):
                t = _gpt.train_gpt(
                    spec, "with 1/sqrt(d_k)" if scaled else "without 1/sqrt(d_k)", reporter, attn_scale=scaled
                )
                result.device = str(next(t.model.parameters()).device)
                curve = [{k: r.get(k) for k in ("step", "train_loss", "val_loss")} for r in t.metrics]
                result.training.append(ScaleTraining(scaled, t.val_loss, curve))
                if t.interrupted:
                    result.interrupted = True
                    break
    except KeyboardInterrupt:
        result.interrupted = True
    result.verdicts = _verdicts(result)
    return result
