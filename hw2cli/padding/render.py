"""Tables 1 and 2 as Rich tables, CSV and JSON, and the JSON read back."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from hw2cli.padding import CONV
from hw2cli.padding.bench import PaddingBenchResult
from hw2cli.padding.preview import PreviewResult

PERCENT_METRICS = ("val_acc", "val_acc_kept", "test_acc", "test_unshifted_acc")
CSV_FIELDS = ("net", "conv_type", "round", "init_seed", *PERCENT_METRICS, "epochs", "best_epoch", "seconds")
#: The rows of each conv type, as the report's tables name them (set, metric); the figure plots
#: exactly these. "Test" is the test set with its boxes moved 16 pixels.
SETS = (("Validation", "val_acc"), ("Test", "test_acc"))
UNSHIFTED = ("Test (unshifted)", "test_unshifted_acc")


def table_rows(result: PaddingBenchResult, unshifted: bool = False) -> list[list[str]]:
    """The table as text cells: conv type, set, one accuracy (%) per round, mean, std."""
    sets = [*SETS, UNSHIFTED] if unshifted else list(SETS)
    rows = []
    for ct in result.settings["conv_types"]:
        outcomes = result.outcomes.get(ct, [])
        for i, (label, metric) in enumerate(sets):
            mean, std = result.summary(ct, metric)
            cells = [f"{getattr(o, metric):.2f}" for o in outcomes]
            cells += [""] * (result.settings["rounds"] - len(cells))
            rows.append([CONV[ct].label if i == 0 else "", label, *cells, f"{mean:.4f}", f"{std:.4f}"])
    return rows


def settings_line(result: PaddingBenchResult) -> str:
    """The protocol of the run in words, printed above the table."""
    s = result.settings
    if result.path == "batched":
        where = f"{result.device}, the rounds of a conv type trained together"
    elif result.path == "cpu-processes":
        where = f"{result.device}, {result.workers} worker processes of 1 thread"
    else:
        where = f"{result.device}, 1 process of 1 thread" if result.device == "cpu" else result.device
    return (
        f"{s['net']}, conv types {', '.join(s['conv_types'])}; {s['rounds']} round(s) of at most "
        f"{s['epochs']} epoch(s); data seed {s['seed']}, round m initialised with seed m - 1; "
        f"{s['precision']} on {where}"
    )


def footer(result: PaddingBenchResult, verbose: bool = False) -> str:
    """What was done and the share of the measured matmul peak it used (``verbose``: throughput)."""
    n = result.rounds_done
    cores = f"{result.workers} CPU core{'s' if result.workers > 1 else ''}"
    on = cores if result.device == "cpu" else result.device
    text = f"trained {n} network{'s' if n != 1 else ''} in {result.seconds:.0f} s on {on}"
    if result.peak_fraction is not None:
        whose = "their" if result.workers > 1 else "its"
        text += f" at {100 * result.peak_fraction:.0f}% of {whose} measured matmul peak"
    if result.interrupted:
        text += f" (interrupted: {n} of {len(result.settings['conv_types']) * result.settings['rounds']})"
    if verbose:
        text += (
            f"\n{result.path} trainer: {result.flop / 1e9:.0f} GFLOP of training arithmetic, "
            f"{result.gflops:.1f} GFLOP/s; matmul peak {result.peak_gflops or float('nan'):.0f} GFLOP/s"
        )
    return text


def render(result, console: Console | None = None, *, unshifted: bool = False, verbose: bool = False) -> None:
    """Print a preview's PNG files, or a run's settings, table (``unshifted``: with the test set
    before its shift) and what was done (``verbose``: with the trainer's throughput)."""
    if isinstance(result, PreviewResult):
        console = console or Console(highlight=False, soft_wrap=True)
        for path in result.files:
            console.print(str(path), markup=False)
        return
    console = console or Console()
    console.print(settings_line(result), highlight=False, soft_wrap=True)
    number = 1 if result.settings["net"] == "net1" else 2
    title = f"Table {number}: {result.settings['net'].capitalize()} accuracy (%) per round"
    if result.interrupted:
        title += " (interrupted: finished rounds only)"
    table = Table("Conv type", "Set", title=title)
    for name in [*map(str, range(1, result.settings["rounds"] + 1)), "Mean", "Std"]:
        table.add_column(name, justify="right")
    per = 3 if unshifted else 2  # rows of a conv type
    for i, row in enumerate(table_rows(result, unshifted)):
        table.add_row(*row, end_section=i % per == per - 1)
    # Ten rounds need ~125 columns: a file or pipe (80 columns by default) gets the whole
    # table instead of cells cut to "…"; a terminal keeps its own width.
    width = console.width
    if not console.is_terminal:
        console.width = max(
            width, Measurement.get(console, console.options.update_width(10_000), table).maximum
        )
    try:
        console.print(table)
    finally:
        console.width = width
    console.print(footer(result, verbose), highlight=False, soft_wrap=True)


def to_csv(result: PaddingBenchResult) -> str:
    """One line per (conv type, round)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    for ct in result.settings["conv_types"]:
        for o in result.outcomes.get(ct, []):
            metrics = [getattr(o, m) for m in PERCENT_METRICS]
            row = [result.settings["net"], ct, o.round + 1, o.round, *metrics, o.epochs, o.best_epoch]
            writer.writerow([*row, round(o.seconds, 3)])
    return out.getvalue()


def _none(x: float) -> float | None:  # NaN: no round finished
    return None if x != x else x


def to_json(result: PaddingBenchResult) -> dict:
    """Everything of a run as plain JSON data (weights left out)."""
    conv = {}
    for ct in result.settings["conv_types"]:
        # numbered from 1 as in the table; round m's network is initialised with seed m - 1
        rounds = []
        for o in result.outcomes.get(ct, []):
            row = {k: v for k, v in asdict(o).items() if k not in ("state", "conv_type")}
            rounds.append({**row, "round": o.round + 1, "init_seed": o.round})
        summary = {}
        for metric in PERCENT_METRICS:  # "val_acc_kept" -> "val_kept"
            mean, std = result.summary(ct, metric)
            summary[metric.replace("_acc", "")] = {"mean": _none(mean), "std": _none(std)}
        conv[ct] = {"rounds": rounds, "summary": summary}
    run = {k: getattr(result, k) for k in ("settings", "path", "device", "seconds")}
    speed = {k: getattr(result, k) for k in ("gflops", "peak_gflops", "peak_fraction")}
    end = {k: getattr(result, k) for k in ("interrupted", "workers", "error")}
    return {"command": "padding-bench", **run, "gflop": result.flop / 1e9, **speed, **end, "conv_types": conv}


@dataclass
class _Settings:
    """The keys of ``settings`` that the tables and the report read (the dict keeps the rest)."""

    net: str
    conv_types: list[str]
    rounds: int
    epochs: int
    precision: str
    seed: int


def upgrade_json(data: dict) -> dict:
    """``data`` in the current format: files written before rounds were numbered from 1 (no
    ``init_seed``) get their rounds renumbered."""
    conv = data.get("conv_types") if isinstance(data, dict) else None
    rounds = [r for e in (conv or {}).values() if isinstance(e, dict) for r in e.get("rounds") or []]
    if not rounds or not all(isinstance(r, dict) and "init_seed" not in r for r in rounds):
        return data

    def renumbered(r: dict) -> dict:
        return {**r, "round": r.get("round", -1) + 1, "init_seed": r.get("round")}

    conv = {ct: {**e, "rounds": [renumbered(r) for r in e["rounds"]]} for ct, e in conv.items()}
    return {**data, "conv_types": conv}


def from_json(data: dict) -> PaddingBenchResult:
    """The result that :func:`to_json` wrote (any format :func:`upgrade_json` knows), checked (a
    ResultError names the field): types, net and conv types, round numbers, accuracies in 0-100 %."""
    from hw2cli.common.schema import ResultError, build, one_of, require, within
    from hw2cli.padding import NETS
    from hw2cli.padding.train import RoundOutcome

    data = upgrade_json(data)
    result = build(PaddingBenchResult, data, rename={"gflop": "flop"}, outcomes={})
    result.flop *= 1e9
    settings = build(_Settings, result.settings, at="settings")
    one_of(settings.net, NETS, "settings.net")
    for i, ct in enumerate(settings.conv_types):
        one_of(ct, tuple(CONV), f"settings.conv_types.{i}")
    within(settings.rounds, 0, None, "settings.rounds")
    conv = require(data, "conv_types")
    if not isinstance(conv, dict):
        raise ResultError("conv_types", "is not an object")
    for ct, entry in conv.items():
        at = f"conv_types.{ct}"
        one_of(ct, settings.conv_types, at)
        rounds = require(entry, "rounds", at)
        if not isinstance(rounds, list) or len(rounds) > settings.rounds:
            n = len(rounds) if isinstance(rounds, list) else "no"
            raise ResultError(
                f"{at}.rounds", f"holds {n} rounds, settings.rounds says at most {settings.rounds}"
            )
        outcomes = []
        for i, r in enumerate(rounds):
            o = build(RoundOutcome, r, at=f"{at}.rounds.{i}", conv_type=ct)
            within(o.round, 1, settings.rounds, f"{at}.rounds.{i}.round")
            o.round -= 1  # numbered from 1 in the file, from 0 in the result
            for metric in PERCENT_METRICS:
                within(getattr(o, metric), 0, 100, f"{at}.rounds.{i}.{metric}")
            outcomes.append(o)
        result.outcomes[ct] = outcomes
    return result
