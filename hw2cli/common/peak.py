"""The machine's measured matrix-multiply peak (one CPU thread, or the GPU): a trainer's share of
it reads the same on a laptop, a server and a GPU; GFLOP/s do not."""

from __future__ import annotations

import time

import torch

PEAK_SIZE = 1024  # n of the n x n x n products: large enough for the kernels' best speed


def matmul_peak_gflops(device: torch.device, dtype: torch.dtype = torch.float32, repeats: int = 8) -> float:
    """GFLOP/s of the fastest of ``repeats`` n x n products (after a warm-up) on ``device``."""
    n = PEAK_SIZE
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device, dtype)
    b = torch.randn(n, n, generator=gen).to(device, dtype)
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        best = float("inf")
        for i in range(repeats + 1):
            _sync(device)
            t0 = time.perf_counter()
            torch.mm(a, b)
            _sync(device)
            if i:  # the first product warms the kernels up
                best = min(best, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return 2 * n**3 / best / 1e9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
