"""matmul_peak_gflops: one thread's (or the GPU's) measured matrix-multiply speed."""

import torch

from hw2cli.common.peak import PEAK_SIZE, matmul_peak_gflops


def test_matmul_peak_is_measured_on_one_thread_and_restores_the_count():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        peak = matmul_peak_gflops(torch.device("cpu"), repeats=2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    # a real product of 2 n^3 flops took between 1 microsecond and 10 seconds
    assert 2 * PEAK_SIZE**3 / 10 / 1e9 < peak < 2 * PEAK_SIZE**3 / 1e-6 / 1e9
