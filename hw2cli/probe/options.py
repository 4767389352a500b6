"""The options of `hw2 probe NAME`, one dataclass per probe (hw2cli.common.options). No torch
here: the probe, which knows the device, checks what a size implies for memory. A size left out
(None) is its default or quick one, declared with :func:`sized`, picked by :meth:`ProbeOptions.size`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hw2cli.common.options import DEVICE, SEED, TXT_FILE, OptionError, Spec, check, option

MAX_SIZE = 65_536  # the largest sequence length or head size a list may hold
GPT_WIDTH = 48  # gpt-nano's width: the heads probe splits it into 1, 2, 4 ... heads
HEAD_COUNTS = tuple(h for h in range(1, GPT_WIDTH + 1) if GPT_WIDTH % h == 0 and (GPT_WIDTH // h) % 2 == 0)

QUICK = Spec("Small sizes: seconds to a minute on a laptop CPU, offline; verdicts may then say inconclusive.")
STEPS = Spec("Training steps per model.", min=1, max=100_000)
REPEATS = Spec(
    "Trainings per configuration, with seeds SEED, SEED+1, ...: a difference counts only when it "
    "exceeds their spread.",
    min=2,
    max=100,
)


def sized(default: Any, quick: Any, spec: Spec, shown: str = "", **listed: Any) -> Any:
    """A size whose None means ``default``, or ``quick`` with --quick (``shown`` in --help for a
    long list); ``listed``: a list of sizes, checked by :func:`parse_sizes` with these keywords."""
    spec = dataclasses.replace(spec, show_default=shown or f"{default} (quick: {quick})")
    meta = {"hw2": spec, "sizes": (default, quick)}
    return dataclasses.field(default=None, metadata=meta | ({"listed": listed} if listed else {}))


def parse_sizes(
    value: str | Sequence[int], field: str, *, low: int = 1, high: int = MAX_SIZE, power_of_two: bool = True
) -> tuple[int, ...]:
    """``"64,128,256"`` or ``[64, 128, 256]`` -> (64, 128, 256): increasing integers from ``low``
    to ``high``, powers of two when ``power_of_two`` (the fits want even steps on a log axis)."""
    if isinstance(value, str):
        try:
            sizes = [int(part) for part in value.split(",") if part.strip()]
        except ValueError:
            raise OptionError(
                f"{{{field}}} {value!r} is not a comma-separated list of integers; e.g. 64,128"
            ) from None
    else:
        sizes = list(value)
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in sizes):
            raise OptionError(f"{{{field}}} {value!r} must hold integers; e.g. 64,128")
    if not sizes:
        raise OptionError(f"{{{field}}} is empty; give a comma-separated list such as 64,128,256")
    for n in sizes:
        if n < low or n > high:
            raise OptionError(f"{{{field}}}: {n:,} is out of range; give sizes from {low:,} to {high:,}")
        if power_of_two and n & (n - 1):
            raise OptionError(f"{{{field}}}: {n} is not a power of two; give e.g. 64,128,256")
    if sorted(set(sizes)) != sizes:
        raise OptionError(f"{{{field}}} {value!r} must increase without repeats; e.g. 64,128,256")
    return tuple(sizes)


@dataclass
class ProbeOptions:
    """What every probe takes."""

    seed: int = option(0, SEED)
    device: str = option("auto", DEVICE)
    quick: bool = option(False, QUICK)

    def __post_init__(self) -> None:
        check(self)
        for f in dataclasses.fields(self):
            if "listed" in f.metadata and getattr(self, f.name) is not None:
                setattr(self, f.name, parse_sizes(getattr(self, f.name), f.name, **f.metadata["listed"]))

    def size(self, name: str) -> Any:
        """The size ``name`` a run uses: the given one, else its quick or default size (:func:`sized`)."""
        if (value := getattr(self, name)) is not None:
            return value
        return self.__dataclass_fields__[name].metadata["sizes"][self.quick]


@dataclass
class TrainingProbeOptions(ProbeOptions):
    """What the probes that train GPTs take besides: steps, repeats (seeds) and the text."""

    # quick: the fewest steps at which the probe's verdicts are the default run's
    steps: int | None = sized(500, 300, STEPS)
    repeats: int | None = sized(3, 2, REPEATS)
    txt_file: str | None = option(
        None, TXT_FILE, show_default="Grimm's fairy tales, downloaded once; quick: hw2's own docstrings"
    )

    @property
    def seeds(self) -> list[int]:
        """SEED, SEED+1 ... (below 2**32): one training per seed and configuration."""
        return [(self.seed + i) % 2**32 for i in range(self.size("repeats"))]

    @property
    def block_size(self) -> int:
        return 32 if self.quick else 64

    @property
    def batch_size(self) -> int:
        return 16 if self.quick else 32


@dataclass
class AttentionCostOptions(ProbeOptions):
    """Q2.1a: time and measured peak memory of attention against n, with fitted log-log slopes.

    On the CPU each point is timed on one thread in process CPU time (the fastest of 5+ calls)."""

    # default None: the device's sizes; quick: the three the default run fits over (at 512..2048
    # the sdpa slope is near the midpoint between linear and quadratic, so load can leave it undecided)
    n: str | Sequence[int] | None = sized(
        None,
        (1024, 2048, 4096),
        Spec(f"Sequence lengths: powers of two from 2 to {MAX_SIZE:,}, comma-separated."),
        "64,...,4096 (CPU), ...,16384 (GPU); quick: 1024,2048,4096",
        low=2,
    )
    n_embd: int = option(
        128, "Width of the attention layer (it must split into heads of even size).", min=2, max=8192
    )
    n_head: int = option(4, "Heads of the attention layer.", min=1, max=4096)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_embd % self.n_head or (self.n_embd // self.n_head) % 2:
            raise OptionError(
                f"{{n_embd}} {self.n_embd} does not split into {{n_head}} {self.n_head} heads of even size; "
                "e.g. {n_embd} 128 with {n_head} 4"
            )


@dataclass
class SoftmaxScaleOptions(TrainingProbeOptions):
    """Q2.1c: softmax saturation and gradient with and without 1/sqrt(d_k), and short trainings."""

    steps: int | None = sized(500, 200, STEPS)
    dk: str | Sequence[int] | None = sized(
        (16, 32, 64, 128, 256, 512, 1024),
        (16, 64, 256),
        Spec(f"Head sizes d_k: powers of two from 1 to {MAX_SIZE:,}, comma-separated (trends need two)."),
        "16,...,1024; quick: 16,64,256",
        low=1,
    )


@dataclass
class PositionsOptions(TrainingProbeOptions):
    """Q2.4a/b: permutation equivariance, NoPE vs learned vs RoPE, and length extrapolation."""

    steps: int | None = sized(500, 400, STEPS)  # quick at 300: one seed's RoPE ratio sits at the 1.05 edge

    @property
    def windows(self) -> int:  # held-out windows the trained models are measured on
        return 16 if self.quick else 64


@dataclass
class ReceptiveFieldOptions(ProbeOptions):
    """Q2.1b: gradient receptive fields of the padding-bench CNN and the GPT, layer by layer."""

    samples: int | None = sized(32, 4, Spec("Random inputs averaged.", min=1, max=65_536))
    seq_len: int | None = sized(64, 16, Spec("Positions of the GPT's input.", min=2, max=MAX_SIZE))


@dataclass
class HeadsOptions(TrainingProbeOptions):
    """Q2.1d: 1, 2, 4, 8 heads at the same width: validation loss and how differently the heads attend."""

    heads: str | Sequence[int] | None = sized(
        (1, 2, 4, 8),
        (1, 2),
        Spec(
            f"Head counts to train at width {GPT_WIDTH}, comma-separated: any of {', '.join(map(str, HEAD_COUNTS))}."
        ),
        "1,2,4,8; quick: 1,2",
        high=GPT_WIDTH,
        power_of_two=False,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [h for h in self.heads or () if h not in HEAD_COUNTS]
        if bad:
            raise OptionError(
                f"{{heads}}: {bad[0]} does not split width {GPT_WIDTH} into heads of even size; "
                f"use some of {', '.join(map(str, HEAD_COUNTS))}"
            )

    @property
    def windows(self) -> int:
        return 8 if self.quick else 32
