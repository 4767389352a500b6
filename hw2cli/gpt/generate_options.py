"""The options of `hw2 gpt generate` (torch-free: `hw2 --help` imports them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hw2cli.common.errors import Hw2Error
from hw2cli.common.options import DEVICE, SEED, OptionError, check, option
from hw2cli.gpt.options import DEFAULT_RUN, INIT_FROM


def finished_run(folder: str) -> bool:
    """Whether ``folder`` holds a run that `gpt train` finished (its state.json says so)."""
    from hw2cli.common import schema

    path = Path(folder) / "state.json"
    try:
        state = schema.parse_json(path, "") if path.is_file() else None
    except Hw2Error:
        return False
    return isinstance(state, dict) and state.get("finished") is True


@dataclass
class GenerateOptions:
    """`hw2 gpt generate`: continue a prompt with a trained run's model or GPT-2."""

    prompt: str = option(spec="Text to continue (a char model knows only its training text's characters).")
    run_dir: str | None = option(
        None,
        "Run directory written by `hw2 gpt train` (or give --init-from).",
        path=True,
        argument=True,
        show_default=False,
    )
    init_from: str | None = option(None, INIT_FROM)
    num_samples: int = option(5, "Samples to draw (greedy gives one).", min=1, max=10_000)
    max_new_tokens: int = option(
        200, "Tokens (characters for a char model) to generate per sample.", min=1, max=1_000_000
    )
    greedy: bool = option(False, "Always take the most likely token.")
    temperature: float | None = option(None, "Divide the logits by T.", min=1e-4, max=1e4, show_default="1")
    top_k: int | None = option(None, "Sample among the K most likely tokens.", min=1, max=1_000_000)
    top_p: float | None = option(None, "Nucleus sampling with mass P.", min=1e-6, max=1.0)
    seed: int = option(0, SEED)
    device: str = option("auto", DEVICE)

    def __post_init__(self) -> None:
        check(self)
        if self.run_dir is None and self.init_from is None and finished_run(DEFAULT_RUN):
            self.run_dir = DEFAULT_RUN  # where `gpt train` wrote by default (the CLI says so)
        if (self.run_dir is None) == (self.init_from is None):
            raise OptionError("give a run directory or {init_from} MODEL, one of the two")
        if self.greedy and (self.temperature is not None or self.top_k is not None or self.top_p is not None):
            raise OptionError("{greedy} takes no {temperature}, {top_k} or {top_p}; drop one or the other")
        if self.top_k is not None and self.top_p is not None:
            raise OptionError("give {top_k} or {top_p}, not both")
        if not self.prompt:
            raise OptionError("{prompt} is empty; give at least one character to continue")
