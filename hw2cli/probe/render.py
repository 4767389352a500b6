"""Rich tables and JSON for the probes: ``render(result, console=None)`` prints the probe's
measurements and its verdicts, ``to_json(result)`` gives the ``--json`` data; both dispatch on
the result's type (``functools.singledispatch``), as every family's render module does."""

from __future__ import annotations

import functools
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hw2cli.probe.attention_cost import AttentionCostResult
from hw2cli.probe.common import FAILS, HOLDS, PARTLY, VERDICTS
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


def _mean_spread(mean: float | None, values: list[float], spec: str = ".3f") -> str:
    """``2.295 (0.047)``: the mean over the seeds and their spread (largest - smallest)."""
    if mean is None:
        return "-"
    return f"{mean:{spec}} ({max(values) - min(values):{spec}})" if len(values) > 1 else format(mean, spec)


def _seeds(seeds: list[int]) -> str:
    return ", ".join(map(str, seeds))


@functools.singledispatch
def render(result, console: Console | None = None, **show: Any) -> None:
    """Print the probe's measurement tables, then its verdicts (stdout unless ``console``)."""
    raise TypeError(f"no renderer for {type(result).__name__}")


@functools.singledispatch
def to_json(result) -> dict:
    """The result as JSON-ready data: ``probe``, ``question``, ``verdicts`` and the measurements."""
    raise TypeError(f"no JSON form for {type(result).__name__}")


def _register(cls: type, tables) -> None:
    """``render`` and ``to_json`` for one probe's result type."""
    name = NAMES[cls]

    def show(result, console: Console | None = None, **_: Any) -> None:
        console = console or Console()
        tables(result, console)
        _verdict_table(result, console)

    def as_json(result) -> dict:
        return {"probe": name, "question": QUESTIONS[name], **asdict(result)}

    render.register(cls, show)
    to_json.register(cls, as_json)


_COLOURS = {HOLDS: "green", PARTLY: "yellow", FAILS: "red"}


def _verdict_table(result, console: Console) -> None:
    table = Table(title=f"{QUESTIONS[NAMES[type(result)]]}: the report's claims, measured")
    table.add_column("claim", ratio=2)
    table.add_column("measurement and why", ratio=4)
    table.add_column("verdict", no_wrap=True)
    for v in result.verdicts:
        cell = Text(v.measurement)
        if v.reason:
            cell.append("\n" + v.reason, style="dim")
        table.add_row(v.claim, cell, Text(v.verdict, style="bold " + _COLOURS.get(v.verdict, "magenta")))
    console.print(table)
    if result.interrupted:
        console.print("[yellow]interrupted: the numbers above cover what finished[/]")


def _attention_cost(r: AttentionCostResult, console: Console) -> None:
    table = Table(
        title=f"One causal self-attention layer, {r.n_head} heads x {r.n_embd // r.n_head}, batch 1, "
        f"on {r.device} (time: {r.timing_method}; memory: {r.memory_method})",
        caption="time: the fastest repeat; repeats' spread: how much slower the fastest quarter of the "
        "repeats was than that",
    )
    for col in ("n", "path", "time (ms)", "repeats' spread", "peak memory (MiB)", "n²·heads·4 (MiB)"):
        table.add_column(col, justify="right" if col != "path" else "left")
    for p in r.points:
        table.add_row(
            str(p.n),
            p.path,
            _f(p.seconds * 1e3, ".3f"),
            f"{p.spread:.0%}",
            _f(None if p.peak_bytes is None else p.peak_bytes / _MIB, ".2f"),
            _f(p.theory_bytes / _MIB, ".2f"),
        )
    console.print(table)
    slopes = Table(
        title=f"Fitted log-log slopes for n ≥ {r.fit_from_n} (2 = quadratic, 1 = linear; "
        "± the spread between repeats)"
    )
    for col in ("path", "time", "if attention were quadratic", "memory"):
        slopes.add_column(col, justify="right" if col != "path" else "left")
    labels = {
        "explicit": "explicit softmax, fwd+bwd",
        "sdpa": "scaled_dot_product_attention, fwd+bwd",
        "kv-cache": "KV-cached decoding, one token",
    }
    for path, s in r.slopes.items():
        t = _f(s["time"], ".2f") + ("" if s.get("time_error") is None else f" ± {s['time_error']:.2f}")
        slopes.add_row(labels.get(path, path), t, _f(s.get("quadratic_model"), ".2f"), _f(s["memory"], ".2f"))
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
        train = Table(
            title=f"gpt-nano (head size {r.train_head_size}), {r.train_steps} steps, seeds {_seeds(r.seeds)}"
        )
        train.add_column("attention scale")
        train.add_column("validation loss (spread between seeds)", justify="right")
        for t in r.training:
            train.add_row("1/√d_k" if t.scaled else "none", _mean_spread(t.val_loss, t.val_losses, ".4f"))
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
        table = Table(
            title=f"(b, c) gpt-nano trained {r.train_steps} steps at block T={T} on {r.device}, "
            f"means over seeds {_seeds(r.seeds)}"
        )
        for col in (
            "positions",
            "val loss",
            "KL after shuffling the prefix (spread)",
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
                t.pos_emb,
                _f(t.val_loss),
                _mean_spread(t.shuffle_kl, t.shuffle_kls, ".4f"),
                _f(t.loss_by_span.get("0-T")),
                *far,
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
        title=f"{r.layers} layers x width {r.width}, {r.train_steps} steps, means over seeds "
        f"{_seeds(r.seeds)}, on {r.device}"
    )
    for col in ("heads", "head size", "parameters", "val loss (spread)", "JS bits (spread)", "from uniform"):
        table.add_column(col, justify="right")
    for row in r.rows:
        table.add_row(
            str(row.n_head),
            str(row.head_size),
            f"{row.num_params:,}",
            _mean_spread(row.val_loss, row.val_losses),
            _mean_spread(row.js_bits, row.js_seeds, ".2f"),
            _f(row.focus_bits, ".2f"),
        )
    console.print(table)


for _cls, _tables in (
    (AttentionCostResult, _attention_cost),
    (SoftmaxScaleResult, _softmax_scale),
    (PositionsResult, _positions),
    (ReceptiveFieldResult, _receptive_field),
    (HeadsResult, _heads),
):
    _register(_cls, _tables)


# ----------------------------------------------------------------------------- reading back


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
