"""The machine's measured matrix-multiply peak, to say how much of it a trainer uses.

A fraction of a measured peak reads the same on an AVX2 laptop, an AVX-512 server and a GPU,
where GFLOP/s alone does not. The peak is the best of a few square fp32 matrix products
(bf16 under ``precision="bf16"``) on one thread of the CPU, or on the GPU; a CPU run of
``workers`` single-thread processes has ``workers`` times that peak.
"""

from __future__ import annotations

import time

import torch

PEAK_SIZE = 1024  # n of the n x n x n products: large enough for the kernels' best speed


def matmul_peak_gflops(device: torch.device, dtype: torch.dtype = torch.float32, repeats: int = 8) -> float:
    """GFLOP/s of the fastest of ``repeats`` n x n products (after a warm-up) on ``device``,
    on one thread when it is the CPU."""
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
