"""`hw2 padding-bench`: padding and translation invariance (homework Q1.1, Tables 1 and 2); the
library entry point is :func:`hw2cli.padding.bench.run_padding_bench`."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ConvType:
    """One row of Tables 1 and 2: every fact about a conv type lives here (CONTRIBUTING.md)."""

    label: str  # the row's name in the tables and the figure
    mode: str  # nn.Conv2d's padding_mode
    pad: int  # padding width of each 3x3 convolution
    cpu_cost: float  # a round's CPU time relative to valid: the worker pool starts the slow ones first


# The report's row order; here so that `hw2 report` and the options read it without torch.
CONV = {
    "valid": ConvType("Valid", "zeros", 0, 1.0),
    "replicate": ConvType("Replicate", "replicate", 2, 2.3),
    "reflect": ConvType("Reflect", "reflect", 2, 2.2),
    "circular": ConvType("Circular", "circular", 2, 2.3),
    "sconv": ConvType("sconv", "zeros", 1, 1.3),
    "fconv": ConvType("fconv", "zeros", 2, 1.6),
}
CONV_TYPES = tuple(CONV)  # for readers outside the family; the family itself reads CONV
NETS = ("net1", "net2")  # the report's table order
