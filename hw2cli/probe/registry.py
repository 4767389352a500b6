"""The probes, one entry each, iterated by `hw2 probe NAME`, `hw2 reproduce` and `hw2 report`.
Found by the probe's name: module ``hw2cli.probe.<name with underscores>`` defines the function
of that name (options, reporter -> result), ``tables(result, console)`` and ``figure(result)``;
its options are ``<Name>Options`` in hw2cli.probe.options. No torch here: the CLI builds its
commands from this table."""

from __future__ import annotations

import importlib
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hw2cli.probe import options as probe_options


@dataclass(frozen=True)
class Claim:
    """One claim of the report a probe decides: where the report makes it, the start of the
    probe's verdict claim, the verdict at the default sizes (a tuple: the first is the default
    sizes', the others are also accepted from a shorter run) and our paraphrase for report.md."""

    source: str
    start: str
    expected: str | tuple[str, ...]
    paraphrase: str


@dataclass(frozen=True)
class Probe:
    name: str
    claims: tuple[Claim, ...]
    threads: bool = True  # takes --threads (attention-cost times on one thread by design)

    @property
    def options(self) -> type[probe_options.ProbeOptions]:
        """Its options class, whose docstring is the command's help: "QUESTION: what it measures"."""
        return getattr(probe_options, self.name.title().replace("-", "") + "Options")

    @property
    def help(self) -> str:
        return inspect.getdoc(self.options) or ""

    @property
    def question(self) -> str:
        """The homework's question the probe answers."""
        return self.help.split(":", 1)[0]

    @property
    def trains(self) -> bool:
        """It trains GPTs on a text (the reproduction gives it its corpus)."""
        return issubclass(self.options, probe_options.TrainingProbeOptions)

    def function(self) -> Callable[..., Any]:
        """The library function: (options, reporter) -> result."""
        name = self.name.replace("-", "_")
        return getattr(importlib.import_module(f"hw2cli.probe.{name}"), name)

    def result_type(self) -> type:
        return typing.get_type_hints(self.function())["return"]


#: In the report's order (Q2.1a-d, Q2.4): the order of the reproduction and of its report.
PROBES = (
    Probe(
        "attention-cost",
        (
            Claim("Q2.1a", "attention time grows", "holds", "Attention's time grows as n²."),
            Claim(
                "Q2.1a",
                "attention memory grows",
                "partly",
                "Attention's memory grows as n² (only where the n×n scores are kept).",
            ),
        ),
        threads=False,
    ),
    Probe(
        "receptive-field",
        (
            Claim("Q2.1b", "a CNN sees", "holds", "A CNN sees a local window of its input."),
            Claim("Q2.1b", "self-attention sees", "holds", "Self-attention sees the whole sequence at once."),
        ),
    ),
    Probe(
        "softmax-scale",
        (
            Claim(
                "Q2.1c",
                "without the factor the variance",
                "holds",
                "Without 1/√d_k the scores' variance grows with d_k.",
            ),
            Claim(
                "Q2.1c",
                "without the factor the softmax",
                "holds",
                "Without 1/√d_k the softmax saturates and its gradient shrinks.",
            ),
            Claim(
                "Q2.1c",
                "without the factor training",
                "does not hold",
                "Without 1/√d_k training is slower (at head size 16 it is not).",
            ),
        ),
    ),
    Probe(
        "heads",
        (
            Claim("Q2.1d", "the heads capture", "holds", "Several heads capture different patterns."),
            Claim(
                "Q2.1d",
                "several heads beat",
                "inconclusive",
                "Several heads beat one at the same cost (too close to call at full size too).",
            ),
        ),
    ),
    # Two claims also accept the neighbouring verdict of a shorter training (docs/probes.md): the
    # decoder without positions "holds" (after the quick training NoPE uses 0.03-0.14 of RoPE's
    # sensitivity to order, near the 0.1 edge between holds and partly), RoPE's extrapolation
    # "partly" (its loss past the trained length rises less; the report's claim fails either way).
    Probe(
        "positions",
        (
            Claim(
                "Q2.4a",
                "without positions",
                "holds",
                "Without positions (and without a mask) attention ignores word order.",
            ),
            Claim(
                "Q2.4a",
                "a causal decoder",
                ("partly", "holds"),
                "A decoder without positions cannot tell word orders apart (its causal mask partly can).",
            ),
            Claim(
                "Q2.4b",
                "learned absolute",
                "holds",
                "Learned absolute positions cannot serve longer sequences.",
            ),
            Claim(
                "Q2.4b",
                "relative positions",
                ("does not hold", "partly"),
                "Relative positions (RoPE) extrapolate past the trained length (here not, or only partly).",
            ),
        ),
    ),
)
