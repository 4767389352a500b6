"""The fixed choices of command options, as Enums so that `--help` and shell completion list them.

Commands pass ``.value`` (a plain string) to the library functions. Only the standard library
is imported here: `hw2 --help` must not import torch (tests/test_cli_choices.py checks that
ModelType matches hw2cli.gpt.model.PRESETS).
"""

from __future__ import annotations

from enum import Enum


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class GptPrecision(str, Enum):
    """Autocast precision of `gpt train` (fp16 with a gradient scaler, CUDA only)."""

    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class LrSchedule(str, Enum):
    constant = "constant"
    cosine = "cosine"


class MatrixKind(str, Enum):
    adjacency = "adjacency"
    power = "power"
    degree = "degree"
    laplacian = "laplacian"


ModelType = Enum(  # the presets of hw2cli.gpt.model.PRESETS, without importing torch
    "ModelType",
    {
        name: name
        for name in (
            "gpt-nano",
            "gpt-micro",
            "gpt-mini",
            "gopher-44m",
            "gpt2",
            "gpt2-medium",
            "gpt2-large",
            "gpt2-xl",
        )
    },
    type=str,
)


class PosEmb(str, Enum):
    """Position information of the GPT: rotary, learned absolute, or none."""

    rope = "rope"
    learned = "learned"
    none = "none"
