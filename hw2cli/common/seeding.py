"""The project's one seeding style, and the process-wide state a library call must leave as it
found it.

Initial weights are drawn inside ``seeded(seed)`` (torch's global generator, forked and
restored); every other random stream (batch order, augmentation, sampling) gets its own
``torch.Generator`` or ``numpy.random.Generator`` seeded from the run's seed. The numbers then
depend on the seed alone, not on what ran before, and a notebook's own random state is kept.
"""

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
