"""The options of `hw2 probe NAME`, one dataclass per probe (hw2cli.common.options): the CLI
derives its flags from them, the library functions take them. No torch here. Size lists (``n``,
``dk``, ``heads``) are comma-separated text or integers, a tuple once checked; what a size
implies for memory is checked by the probe itself (it needs the device). The properties give
the sizes a run uses: the given ones, else the quick or the default ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from hw2cli.common.options import DEVICE, SEED, TXT_FILE, OptionError, Spec, check, option

MAX_SIZE = 65_536  # the largest sequence length or head size a list may hold
GPT_WIDTH = 48  # gpt-nano's width: the heads probe splits it into 1, 2, 4 ... heads
HEAD_COUNTS = tuple(h for h in range(1, GPT_WIDTH + 1) if GPT_WIDTH % h == 0 and (GPT_WIDTH // h) % 2 == 0)

QUICK = Spec("Small sizes: seconds to a minute on a laptop CPU, offline; verdicts may then say inconclusive.")
STEPS = Spec(
    "Training steps per model.",
    min=1,
    max=100_000,
    show_default="500 (quick: softmax-scale 200, heads 300, positions 400)",
)
REPEATS = Spec(
    "Trainings per configuration, with seeds SEED, SEED+1, ...: a difference counts only when it "
    "exceeds their spread.",
    min=2,
    max=100,
    show_default="3 (quick: 2)",
)


def parse_sizes(
    value: str | Sequence[int], field: str, *, low: int = 1, high: int = MAX_SIZE, power_of_two: bool = True
) -> tuple[int, ...]:
    """``"64,128,256"`` (or ``[64, 128, 256]``) -> (64, 128, 256): integers from ``low`` to
    ``high``, increasing, powers of two when ``power_of_two`` (the fits assume evenly spaced
    points on a log axis)."""
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


@dataclass
class TrainingProbeOptions(ProbeOptions):
    """What the probes that train GPTs take besides: steps, repeats (seeds) and the text."""

    steps: int | None = option(None, STEPS)
    repeats: int | None = option(None, REPEATS)
    txt_file: str | None = option(
        None, TXT_FILE, show_default="Grimm's fairy tales, downloaded once; quick: hw2's own docstrings"
    )

    QUICK_STEPS: ClassVar[int] = 300  # the fewest at which the probe's verdicts are the default run's

    @property
    def train_steps(self) -> int:
        return self.steps or (self.QUICK_STEPS if self.quick else 500)

    @property
    def seeds(self) -> list[int]:
        """SEED, SEED+1 ... (below 2**32): one training per seed and configuration."""
        count = self.repeats or (2 if self.quick else 3)
        return [(self.seed + i) % 2**32 for i in range(count)]

    @property
    def block_size(self) -> int:
        return 32 if self.quick else 64

    @property
    def batch_size(self) -> int:
        return 16 if self.quick else 32


@dataclass
class AttentionCostOptions(ProbeOptions):
    """`hw2 probe attention-cost` (Q2.1a)."""

    n: str | Sequence[int] | None = option(
        None,
        f"Sequence lengths: powers of two from 2 to {MAX_SIZE:,}, comma-separated.",
        show_default="64,...,4096 (CPU), ...,16384 (GPU); quick: 1024,2048,4096",
    )
    n_embd: int = option(
        128, "Width of the attention layer (it must split into heads of even size).", min=2, max=8192
    )
    n_head: int = option(4, "Heads of the attention layer.", min=1, max=4096)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n is not None:
            self.n = parse_sizes(self.n, "n", low=2)
        if self.n_embd % self.n_head or (self.n_embd // self.n_head) % 2:
            raise OptionError(
                f"{{n_embd}} {self.n_embd} does not split into {{n_head}} {self.n_head} heads of even size; "
                "e.g. {n_embd} 128 with {n_head} 4"
            )

    @property
    def sizes(self) -> tuple[int, ...] | None:
        """The lengths to measure; None: the device's defaults."""
        # quick: the three sizes the default run fits over (at 512..2048 the sdpa slope is near
        # the midpoint between linear and quadratic, so load can leave it undecided)
        return (1024, 2048, 4096) if self.n is None and self.quick else self.n


@dataclass
class SoftmaxScaleOptions(TrainingProbeOptions):
    """`hw2 probe softmax-scale` (Q2.1c)."""

    QUICK_STEPS: ClassVar[int] = 200

    dk: str | Sequence[int] | None = option(
        None,
        f"Head sizes d_k: powers of two from 1 to {MAX_SIZE:,}, comma-separated (trends need two).",
        show_default="16,...,1024; quick: 16,64,256",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dk is not None:
            self.dk = parse_sizes(self.dk, "dk")

    @property
    def sizes(self) -> tuple[int, ...]:
        return self.dk or ((16, 64, 256) if self.quick else (16, 32, 64, 128, 256, 512, 1024))


@dataclass
class PositionsOptions(TrainingProbeOptions):
    """`hw2 probe positions` (Q2.4a/b)."""

    QUICK_STEPS: ClassVar[int] = 400  # at 300 one seed's RoPE extrapolation ratio sits at the 1.05 edge

    @property
    def windows(self) -> int:  # held-out windows the trained models are measured on
        return 16 if self.quick else 64


@dataclass
class ReceptiveFieldOptions(ProbeOptions):
    """`hw2 probe receptive-field` (Q2.1b)."""

    samples: int | None = option(
        None, "Random inputs averaged.", min=1, max=65_536, show_default="32 (quick: 4)"
    )
    seq_len: int | None = option(
        None, "Positions of the GPT's input.", min=2, max=MAX_SIZE, show_default="64 (quick: 16)"
    )

    @property
    def n_samples(self) -> int:
        return self.samples or (4 if self.quick else 32)

    @property
    def length(self) -> int:
        return self.seq_len or (16 if self.quick else 64)


@dataclass
class HeadsOptions(TrainingProbeOptions):
    """`hw2 probe heads` (Q2.1d)."""

    heads: str | Sequence[int] | None = option(
        None,
        f"Head counts to train at width {GPT_WIDTH}, comma-separated: any of {', '.join(map(str, HEAD_COUNTS))}.",
        show_default="1,2,4,8; quick: 1,2",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.heads is not None:
            self.heads = parse_sizes(self.heads, "heads", high=GPT_WIDTH, power_of_two=False)
            bad = [h for h in self.heads if h not in HEAD_COUNTS]
            if bad:
                raise OptionError(
                    f"{{heads}}: {bad[0]} does not split width {GPT_WIDTH} into heads of even size; "
                    f"use some of {', '.join(map(str, HEAD_COUNTS))}"
                )

    @property
    def counts(self) -> tuple[int, ...]:
        return self.heads or ((1, 2) if self.quick else (1, 2, 4, 8))

    @property
    def windows(self) -> int:
        return 8 if self.quick else 32
