"""Rich tables and JSON for the probes: ``render(result, console)`` and ``to_json(result)``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from hw2cli.probe.attention_cost import AttentionCostResult
from hw2cli.probe.common import FAILS, HOLDS, PARTLY
from hw2cli.probe.heads import HeadsResult
from hw2cli.probe.positions import PositionsResult
from hw2cli.probe.receptive_field import ReceptiveFieldResult
from hw2cli.probe.softmax_scale import SoftmaxScaleResult

NAMES = {
    AttentionCostResult: "attention-cost",
    SoftmaxScaleResult: "softmax-scale",
    PositionsResult: "positions",
    ReceptiveFieldResult: "receptive-field",
    HeadsResult: "heads",
}
QUESTIONS = {
    "attention-cost": "Q2.1a",
    "softmax-scale": "Q2.1c",
    "positions": "Q2.4a/b",
    "receptive-field": "Q2.1b",
    "heads": "Q2.1d",
}
_MIB = 2**20


def _f(value: Any, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def to_json(result) -> dict:
    """The result as JSON-ready data: ``probe``, ``question``, ``verdicts`` and the measurements."""
    name = NAMES[type(result)]
    return {"probe": name, "question": QUESTIONS[name], **asdict(result)}


def _verdict_table(result, console: Console) -> None:
    table = Table(title=f"{QUESTIONS[NAMES[type(result)]]}: the report's claims, measured")
    table.add_column("claim")
    table.add_column("measurement")
    table.add_column("verdict", style="bold")
    colours = {HOLDS: "green", PARTLY: "yellow"}
    for v in result.verdicts:
        table.add_row(v.claim, v.measurement, f"[{colours.get(v.verdict, 'red')}]{v.verdict}[/]")
    console.print(table)
    if result.interrupted:
        console.print("[yellow]interrupted: the numbers above cover what finished[/]")


def _attention_cost(r: AttentionCostResult, console: Console) -> None:
    table = Table(
        title=f"One causal self-attention layer, {r.n_head} heads x {r.n_embd // r.n_head}, batch 1, "
        f"on {r.device} (memory: {r.memory_method})"
    )
    for col in ("n", "path", "time (ms)", "peak memory (MiB)", "n²·heads·4 (MiB)"):
        table.add_column(col, justify="right" if col != "path" else "left")
    for p in r.points:
        table.add_row(
            str(p.n),
            p.path,
            _f(p.seconds * 1e3, ".3f"),
            _f(None if p.peak_bytes is None else p.peak_bytes / _MIB, ".2f"),
            _f(p.theory_bytes / _MIB, ".2f"),
        )
    console.print(table)
    slopes = Table(title=f"Fitted log-log slopes for n ≥ {r.fit_from_n} (2 = quadratic, 1 = linear)")
    for col in ("path", "time", "memory"):
        slopes.add_column(col, justify="right" if col != "path" else "left")
    labels = {
        "explicit": "explicit softmax, fwd+bwd",
        "sdpa": "scaled_dot_product_attention, fwd+bwd",
        "kv-cache": "KV-cached decoding, one token",
    }
    for path, s in r.slopes.items():
        slopes.add_row(labels.get(path, path), _f(s["time"], ".2f"), _f(s["memory"], ".2f"))
    console.print(slopes)


def _softmax_scale(r: SoftmaxScaleResult, console: Console) -> None:
    table = Table(title=f"Random q, k ~ N(0, 1): {r.queries} queries x {r.keys} keys per head size")
    for col in ("d_k", "scale", "Var(q·k)", "max prob", "entropy (nats)", "‖∂softmax/∂s‖"):
        table.add_column(col, justify="right")
    for row in r.rows:
        table.add_row(
            str(row.d_k),
            "1/√d_k" if row.scaled else "none",
            _f(row.score_var, ".2f"),
            _f(row.max_prob),
            _f(row.entropy),
            _f(row.jacobian_norm, ".4f"),
        )
    console.print(table)
    if r.training:
        train = Table(title=f"gpt-nano (head size {r.train_head_size}), {r.train_steps} steps, same seed")
        train.add_column("attention scale")
        train.add_column("validation loss", justify="right")
        for t in r.training:
            train.add_row("1/√d_k" if t.scaled else "none", _f(t.val_loss, ".4f"))
        console.print(train)


def _positions(r: PositionsResult, console: Console) -> None:
    perm = Table(title="(a) Random 2-layer GPT, float64: max |f(P·x) − P·f(x)| for a random permutation P")
    for col in ("causal mask", "positions", "max gap"):
        perm.add_column(col, justify="right")
    for row in r.permutation:
        perm.add_row("yes" if row.causal_mask else "no", row.pos_emb, f"{row.max_gap:.2e}")
    console.print(perm)
    if r.training:
        T = r.block_size
        table = Table(title=f"(b, c) gpt-nano trained {r.train_steps} steps at block T={T} on {r.device}")
        for col in (
            "positions",
            "val loss",
            "KL after shuffling the prefix",
            f"loss 0–{T}",
            f"loss {T}–{2 * T}",
            f"loss {2 * T}–{4 * T}",
        ):
            table.add_column(col, justify="right")
        for t in r.training:
            far = (
                ("n/a: no embedding past T",) * 2
                if t.pos_emb == "learned"
                else (_f(t.loss_by_span.get("T-2T")), _f(t.loss_by_span.get("2T-4T")))
            )
            table.add_row(
                t.pos_emb, _f(t.val_loss), _f(t.shuffle_kl, ".4f"), _f(t.loss_by_span.get("0-T")), *far
            )
        console.print(table)


def _receptive_field(r: ReceptiveFieldResult, console: Console) -> None:
    table = Table(title=f"Gradient receptive fields at initialisation, mean over {r.samples} random inputs")
    for col in (
        "model",
        "layer",
        "by construction",
        "non-zero gradient",
        "90% of the gradient",
        "input size",
    ):
        table.add_column(col, justify="right")
    for row in r.rows:
        if row.model == "cnn":
            table.add_row(
                "Net1 (CNN)",
                str(row.layer),
                f"{row.theory}x{row.theory}",
                f"{row.support}x{row.support}",
                f"{row.width90}x{row.width90}",
                f"{row.size}x{row.size}",
            )
        else:
            table.add_row(
                "GPT",
                str(row.layer),
                f"{row.theory} positions",
                f"{row.support} positions",
                f"last {row.width90}",
                f"{row.size} positions",
            )
    console.print(table)


def _heads(r: HeadsResult, console: Console) -> None:
    table = Table(
        title=f"{r.layers} layers x width {r.width}, {r.train_steps} steps, same seed, on {r.device}"
    )
    for col in ("heads", "head size", "parameters", "val loss", "pairwise JS (bits)"):
        table.add_column(col, justify="right")
    for row in r.rows:
        table.add_row(
            str(row.n_head), str(row.head_size), f"{row.num_params:,}", _f(row.val_loss), _f(row.js_bits)
        )
    console.print(table)


_RENDERERS = {
    AttentionCostResult: _attention_cost,
    SoftmaxScaleResult: _softmax_scale,
    PositionsResult: _positions,
    ReceptiveFieldResult: _receptive_field,
    HeadsResult: _heads,
}


def render(result, console: Console | None = None) -> None:
    """The probe's measurement tables, then its verdicts."""
    console = console or Console()
    _RENDERERS[type(result)](result, console)
    _verdict_table(result, console)


# ----------------------------------------------------------------------------- reading back

#: What a verdict may say ("inconclusive": a measurement that cannot decide).
VERDICTS = (HOLDS, PARTLY, FAILS, "inconclusive")


def from_json(data: dict):
    """The result that :func:`to_json` wrote (``data``: the parsed ``--json`` file of any probe,
    told apart by its ``probe``), checked: types and verdicts
    (hw2cli.common.readback.ResultError names the field)."""
    from hw2cli.common.readback import build, one_of, require

    kinds = {name: cls for cls, name in NAMES.items()}
    name = require(data, "probe")
    one_of(name, kinds, "probe")
    result = build(kinds[name], data)
    for i, v in enumerate(result.verdicts):
        one_of(v.verdict, VERDICTS, f"verdicts.{i}.verdict")
    return result
