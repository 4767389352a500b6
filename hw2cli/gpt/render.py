"""Rich output and JSON for ``hw2 gpt train`` and ``hw2 gpt generate`` (dispatched on the result's type)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hw2cli.common.progress import RichReporter
from hw2cli.gpt.options import TrainOptions
from hw2cli.gpt.sample import GenerateResult
from hw2cli.gpt.train import TrainResult


def train_reporter(quiet: bool) -> RichReporter:
    """Progress bar with the train and validation losses beside the ETA, within 80 columns
    (``-.---`` until the first of each is measured); notes name the flags."""
    from rich.progress import ProgressColumn

    class Losses(ProgressColumn):
        def render(self, task) -> Text:
            loss, val = (task.fields.get(k) for k in ("loss", "val"))
            return Text(f"loss {_fmt(loss, '.3f', '-.---')} val {_fmt(val, '.3f', '-.---')}")

    return RichReporter(quiet, extra_columns=(Losses(),), bar_width=16, options=TrainOptions)


IN_MEMORY = ("model", "tokenizer")  # TrainResult's fields that are no part of its JSON


def _fmt(value: Any, spec: str = ".4f", missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


@functools.singledispatch
def render(result, console: Console | None = None) -> None:
    """Print a GPT result (``console``: stdout by default)."""
    raise TypeError(f"no renderer for {type(result).__name__}")


@functools.singledispatch
def to_json(result) -> dict[str, Any]:
    """A GPT result as plain JSON data (the --json file)."""
    raise TypeError(f"no JSON form for {type(result).__name__}")


@render.register
def _render_train(result: TrainResult, console: Console | None = None) -> None:
    """Summary table of a training run and its last greedy sample."""
    console = console or Console()
    title = "GPT training" + (" [interrupted]" if result.interrupted else "")
    table = Table(title=title, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for name, value in [
        ("run directory", result.run_dir or "none (trained in memory)"),
        ("model", f"{result.model_type}, {result.num_params:,} parameters, vocabulary {result.vocab_size}"),
        (
            "device / precision",
            f"{result.device} / {result.precision}"
            + (f", {result.world_size} processes" if result.world_size > 1 else ""),
        ),
        (
            "steps",
            f"{result.steps} of {result.total_steps}"
            + (f" (resumed at {result.start_step})" if result.start_step else ""),
        ),
        ("train loss", _fmt(result.train_loss)),
        ("val loss (best)", f"{_fmt(result.val_loss)} ({_fmt(result.best_val_loss)}) nats/token"),
        ("val bits/char", _fmt(result.val_bpc)),
        ("tokens/s", _fmt(result.tokens_per_s, ",.0f")),
        ("wall time", f"{result.elapsed_s:.1f} s"),
    ]:
        table.add_row(name, value)
    console.print(table)
    if result.sample:
        console.print(Text("greedy sample: ", style="bold") + Text(result.sample))
    if result.interrupted and result.checkpoint_step is None:
        console.print(f"interrupted at step {result.steps}, before any step finished: nothing was saved")
    elif result.interrupted:
        console.print(
            f"interrupted at step {result.steps}: continue to step {result.total_steps} with "
            f"`hw2 gpt train --resume {result.run_dir}`"
        )


def diverged_message(result: TrainResult) -> str:
    """The one line `hw2 gpt train` ends with when the loss became NaN or infinite."""
    kept = (
        f"the checkpoint of step {result.checkpoint_step} in {result.run_dir} is kept"
        if result.checkpoint_step is not None
        else "no checkpoint was written"
    )
    return (
        f"the loss became NaN or infinite at step {result.diverged_at}; {kept}; "
        "lower --lr (or use --warmup-steps, --clip-grad-norm) and train again"
    )


@to_json.register
def _train_to_json(result: TrainResult) -> dict[str, Any]:
    """Every field of the TrainResult, ``metrics`` as a list of row objects. No NaN (not JSON):
    a loss that is not a finite number is null, and ``diverged_at`` says why."""
    data = {
        "command": "gpt train",
        **{f.name: getattr(result, f.name) for f in fields(result) if f.name not in IN_MEMORY},
    }
    for key in ("train_loss", "val_loss", "best_val_loss", "tokens_per_s"):
        value = data[key]
        if value is not None and not math.isfinite(value):
            data[key] = None
    return data


@render.register
def _render_generate(result: GenerateResult, console: Console | None = None) -> None:
    """The decoding settings, then each sample with its prompt highlighted."""
    console = console or Console()
    s = result.settings
    parts = [s["mode"]]
    if s["temperature"] is not None:
        parts.append(f"temperature {s['temperature']:g}")
    if s["top_k"] is not None:
        parts.append(f"top-k {s['top_k']}")
    if s["top_p"] is not None:
        parts.append(f"top-p {s['top_p']:g}")
    parts += [f"{s['max_new_tokens']} new tokens", f"seed {s['seed']}", s["device"]]
    console.print(Text("decoding: ", style="bold") + Text(", ".join(parts)))
    for i, completion in enumerate(result.completions, 1):
        console.rule(f"sample {i}/{len(result.completions)}")
        console.print(Text(result.prompt, style="bold reverse") + Text(completion), highlight=False)


@to_json.register
def _generate_to_json(result: GenerateResult) -> dict[str, Any]:
    """``{command, run_dir, prompt, settings, samples: [{index, completion, text}], elapsed_s}``."""
    return {
        "command": "gpt generate",
        "run_dir": result.run_dir,
        "prompt": result.prompt,
        "settings": result.settings,
        "samples": [
            {"index": i, "completion": c, "text": result.prompt + c} for i, c in enumerate(result.completions)
        ],
        "elapsed_s": result.elapsed_s,
    }


# ----------------------------------------------------------------------------- reading back


@dataclass
class _SampleSettings:
    """The keys of a GenerateResult's ``settings`` that its readers use (the dict keeps all)."""

    mode: str
    seed: int
    max_new_tokens: int
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None


@dataclass
class _Sample:
    completion: str
    text: str  # the prompt and the completion: checked against them when read back


def from_json(data: dict) -> TrainResult | GenerateResult:
    """The result that :func:`to_json` wrote, checked: types, a training run's options as
    TrainOptions accepts them, a known decoding mode (ResultError names the field)."""
    from hw2cli.common.schema import build, one_of, require, typed

    command = require(data, "command")
    one_of(command, ("gpt train", "gpt generate"), "command")
    if command == "gpt train":
        result = build(TrainResult, data, **dict.fromkeys(IN_MEMORY))  # the model is not in the file
        build(TrainOptions, result.options, at="options")
        return result
    samples = typed(require(data, "samples"), list[_Sample], "samples")
    result = build(GenerateResult, data, completions=[s.completion for s in samples])
    settings = build(_SampleSettings, result.settings, at="settings")
    one_of(settings.mode, ("greedy", "sample", "top-k", "top-p"), "settings.mode")
    return result
