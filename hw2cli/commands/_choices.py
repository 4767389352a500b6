"""The fixed choices of command options, as Enums so that `--help` and shell completion list them.

Commands pass ``.value`` (a plain string) to the library functions. Only the standard library
is imported here: `hw2 --help` must not import torch. (The GPT family's choices live in its
options model, hw2cli/gpt/config.py.)
"""

from __future__ import annotations

from enum import Enum


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class MatrixKind(str, Enum):
    adjacency = "adjacency"
    power = "power"
    degree = "degree"
    laplacian = "laplacian"
