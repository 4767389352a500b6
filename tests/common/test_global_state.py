"""Library functions leave the process's global state as they found it (issue 29): a notebook
user's random stream is not reseeded by a probe or a training run."""

from __future__ import annotations

import torch

from hw2cli.probe.attention_cost import _workload
from hw2cli.probe.positions import permutation_table
from hw2cli.probe.receptive_field import gpt_fields


def _untouched(call) -> None:
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    call()
    assert torch.equal(torch.rand(3), expected)


def test_probes_leave_torchs_global_generator_alone():
    _untouched(lambda: permutation_table(seed=0, length=8))
    _untouched(lambda: list(gpt_fields(0, 2, 8, torch.device("cpu"))))
    _untouched(lambda: _workload(8, "explicit", 16, 2, torch.device("cpu"), seed=0)())


def test_the_seed_alone_decides_the_probe_numbers():
    torch.manual_seed(1)
    first = permutation_table(seed=0, length=8)
    torch.manual_seed(2)
    assert permutation_table(seed=0, length=8) == first
