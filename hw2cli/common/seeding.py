"""The one seeding style: weights drawn inside ``seeded(seed)``, every other stream from its own
generator seeded from the run's seed, so the numbers depend on the seed alone and a notebook's
random state (and TF32, thread count: :func:`kept_global_state`) is left as it was."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's CPU generator seeded to ``seed``; restore it on exit."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def kept_global_state() -> Iterator[None]:
    """Run the block (a training, a probe) free to seed torch's global generators, switch TF32
    on or set the thread count: all of it is restored on exit, as the caller had it."""
    import torch

    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()  # else forking would start CUDA
    devices = list(range(torch.cuda.device_count())) if cuda else []
    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    threads = torch.get_num_threads()
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags
        torch.set_num_threads(threads)
