"""Q2.1c: the 1/sqrt(d_k) factor keeps the softmax from saturating and its gradient from vanishing.

Part one draws standard normal queries and keys (as after a normalised projection) per head size
d_k and measures, with and without the factor: the variance of q.k, the largest softmax
probability, its entropy and the norm of the softmax's Jacobian (which multiplies every gradient
through the attention weights). Part two trains gpt-nano with and without it, seed by seed.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

import torch
from rich.console import Console

from hw2cli.common.progress import Reporter
from hw2cli.probe import _gpt
from hw2cli.probe.common import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    PARTLY,
    Verdict,
    check_fits,
    compared,
    loglog_slope,
    spread,
)
from hw2cli.probe.options import SoftmaxScaleOptions

KEYS = 64  # keys per query: the entropy of a uniform softmax is ln(64) = 4.16 nats
QUERIES = 1024
SATURATED = 0.9  # an unscaled softmax whose largest probability reaches this is saturated
FALLS = -0.1  # a Jacobian norm whose log-log slope against d_k is below this falls with d_k


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
    val_loss: float | None  # mean over the seeds
    curve: list[dict[str, Any]] = field(default_factory=list)  # step, train_loss, val_loss: mean over seeds
    val_losses: list[float] = field(default_factory=list)  # one per seed


@dataclass
class SoftmaxScaleResult:
    device: str
    keys: int
    queries: int
    rows: list[ScaleRow] = field(default_factory=list)
    var_slope: float | None = None
    jacobian_slope: float | None = None  # unscaled, over the three largest d_k
    train_head_size: int | None = None
    training: list[ScaleTraining] = field(default_factory=list)
    train_steps: int = 0
    seeds: list[int] = field(default_factory=list)
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


def _variance_verdict(result: SoftmaxScaleResult) -> Verdict:
    claim = "without the factor the variance of q.k grows with d_k"
    raw = [r for r in result.rows if not r.scaled]
    scaled = [r.score_var for r in result.rows if r.scaled]
    if len(raw) < 2:
        measurement = f"Var(q.k) = {raw[0].score_var:.2f} at d_k = {raw[0].d_k} (1 with the factor)"
        why = "one head size shows no growth; measure two or more (e.g. dk 16,64,256)"
        return Verdict(claim, measurement, INCONCLUSIVE, why)
    slope = result.var_slope
    measurement = (
        f"log-log slope of Var(q.k) against d_k: {slope:.2f} (1 = linear); with the factor it stays at "
        f"{min(scaled):.2f}..{max(scaled):.2f}"
    )
    verdict = HOLDS if 0.9 <= slope <= 1.1 else (FAILS if slope < 0.5 else PARTLY)
    why = "Var(q.k) = d_k for unit-variance q and k: a slope of 0.9..1.1 holds, below 0.5 does not"
    return Verdict(claim, measurement, verdict, why)


def _saturation_verdict(result: SoftmaxScaleResult) -> Verdict:
    """The unscaled softmax's gradient must fall as d_k grows; it cannot be judged before the
    softmax saturates (at small d_k a sharper softmax has the larger gradient)."""
    claim = "without the factor the softmax saturates and its gradient shrinks"
    top = max(r.d_k for r in result.rows)
    raw, sc = (next(r for r in result.rows if r.d_k == top and r.scaled == s) for s in (False, True))
    measurement = (
        f"d_k={top}: max prob {raw.max_prob:.2f} vs {sc.max_prob:.2f}, Jacobian norm "
        f"{raw.jacobian_norm:.3f} vs {sc.jacobian_norm:.3f} ({raw.jacobian_norm / sc.jacobian_norm:.2f}x)"
    )
    slope = result.jacobian_slope
    if slope is None:
        return Verdict(claim, measurement, INCONCLUSIVE, "one head size shows no trend; measure two or more")
    measurement += f"; unscaled Jacobian norm ~ d_k^{slope:.2f}"
    if slope <= FALLS:
        return Verdict(claim, measurement, HOLDS, "the unscaled gradient falls as d_k grows")
    if raw.max_prob >= SATURATED:
        why = "saturated, yet the unscaled gradient does not fall with d_k"
        return Verdict(claim, measurement, FAILS, why)
    why = (
        f"the unscaled softmax is not saturated at d_k <= {top} (max prob {raw.max_prob:.2f} < {SATURATED}): "
        "there a sharper softmax has the larger gradient; measure larger d_k"
    )
    return Verdict(claim, measurement, INCONCLUSIVE, why)


def _training_verdict(result: SoftmaxScaleResult) -> Verdict | None:
    runs = {t.scaled: t for t in result.training}
    if set(runs) != {True, False} or not (runs[True].val_losses and runs[False].val_losses):
        return None
    with_s, without = runs[True].val_losses, runs[False].val_losses
    mean_without, mean_with = statistics.fmean(without), statistics.fmean(with_s)
    measurement = (
        f"validation loss after {result.train_steps} steps (head size {result.train_head_size}), mean of "
        f"{len(with_s)} seeds: {mean_without:.3f} without, {mean_with:.3f} with "
        f"({mean_without - mean_with:+.3f}; spread between seeds {max(spread(with_s), spread(without)):.3f})"
    )
    return compared("without the factor training learns more slowly", measurement, without, with_s)


def _verdicts(result: SoftmaxScaleResult) -> list[Verdict]:
    """Ctrl-C may leave no head size measured: then only the training verdict (if any)."""
    out = [_variance_verdict(result), _saturation_verdict(result)] if result.rows else []
    trained = _training_verdict(result)
    return out + ([trained] if trained is not None else [])


def softmax_scale(opts: SoftmaxScaleOptions, reporter: Reporter | None = None) -> SoftmaxScaleResult:
    """Softmax statistics per head size, then trainings with and without the factor (one per seed)."""
    reporter = reporter or Reporter()
    top = max(opts.size("dk"))
    need, why = 2 * QUERIES * KEYS * top * 8, f"{QUERIES} queries x {KEYS} keys in float64"
    check_fits(need, "cpu", f"{{dk}} {top:,}", why, "use smaller {dk}")
    result = SoftmaxScaleResult(opts.device, KEYS, QUERIES, train_steps=opts.size("steps"), seeds=opts.seeds)
    preset = _gpt.gpt_model.PRESETS["gpt-nano"]
    result.train_head_size = preset["n_embd"] // preset["n_head"]
    curves: dict[bool, list] = {True: [], False: []}
    configs = {s: (("with" if s else "without") + " 1/sqrt(d_k)", {"attn_scale": s}) for s in (True, False)}
    try:
        for d_k in opts.size("dk"):
            result.rows += score_rows(d_k, opts.seed)
        for _, _, scaled, t in _gpt.trainings(opts, reporter, "softmax-scale", configs, result):
            if t.val_loss is not None:
                curves[scaled].append((t.val_loss, t.metrics))
    except KeyboardInterrupt:
        result.interrupted = True
    raw = [r for r in result.rows if not r.scaled]
    result.var_slope = loglog_slope([r.d_k for r in raw], [r.score_var for r in raw])
    result.jacobian_slope = loglog_slope([r.d_k for r in raw[-3:]], [r.jacobian_norm for r in raw[-3:]])
    for scaled, runs in curves.items():
        if runs:
            losses = [loss for loss, _ in runs]
            curve = [_mean_step(rows) for rows in zip(*(m for _, m in runs), strict=False)]
            result.training.append(ScaleTraining(scaled, statistics.fmean(losses), curve, losses))
    result.verdicts = _verdicts(result)
    return result


def _mean_step(rows: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """The seeds' metric rows of one step as one: their mean losses (None unless every seed has one)."""
    out: dict[str, Any] = {"step": rows[0]["step"]}
    for key in ("train_loss", "val_loss"):
        values = [r.get(key) for r in rows if r.get(key) is not None]
        out[key] = statistics.fmean(values) if len(values) == len(rows) else None
    return out


def tables(r: SoftmaxScaleResult, console: Console) -> None:
    from hw2cli.probe.common import cell, mean_spread, show

    title = f"Random q, k ~ N(0, 1): {r.queries} queries x {r.keys} keys per head size"
    columns = ("d_k", "scale", "Var(q·k)", "max prob", "entropy (nats)", "‖∂softmax/∂s‖")
    rows = [
        (str(x.d_k), "1/√d_k" if x.scaled else "none", cell(x.score_var, ".2f"))
        + (cell(x.max_prob), cell(x.entropy), cell(x.jacobian_norm, ".4f"))
        for x in r.rows
    ]
    show(console, title, columns, rows)
    if r.training:
        title = f"gpt-nano (head size {r.train_head_size}), {r.train_steps} steps, seeds {', '.join(map(str, r.seeds))}"
        columns = ("attention scale", "validation loss (spread between seeds)")
        rows = [
            ("1/√d_k" if t.scaled else "none", mean_spread(t.val_loss, t.val_losses, ".4f"))
            for t in r.training
        ]
        show(console, title, columns, rows, left=columns[:1])


def figure(r: SoftmaxScaleResult) -> Any:
    from hw2cli.probe.render import distinct_lines, finish, new_figure

    fig = new_figure(figsize=(12, 4))
    ax_j, ax_p, ax_l = fig.subplots(1, 3)
    for scaled, style in ((False, "o-"), (True, "s-")):
        rows = [x for x in r.rows if x.scaled == scaled]
        label = "q·k/√d_k" if scaled else "q·k"
        ax_j.semilogx([x.d_k for x in rows], [x.jacobian_norm for x in rows], style, base=2, label=label)
        ax_p.semilogx([x.d_k for x in rows], [x.max_prob for x in rows], style, base=2, label=label)
    ax_j.set(xlabel="d_k", ylabel="mean ‖∂softmax/∂scores‖_F", title="softmax gradient")
    ax_p.set(xlabel="d_k", ylabel="mean largest probability", title=f"saturation ({r.keys} keys)")
    curves = {}
    for t in r.training:
        pts = [(c["step"], c["train_loss"]) for c in t.curve if c.get("train_loss") is not None]
        if pts:
            curves[("with" if t.scaled else "without") + " 1/√d_k"] = pts
    distinct_lines(ax_l, curves)
    title = f"gpt-nano, head size {r.train_head_size}"
    ax_l.set(xlabel="step", ylabel="training loss (mean over seeds)", title=title)
    return finish(fig, ax_j, ax_p, ax_l)
