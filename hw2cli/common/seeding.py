"""The project's one seeding style.

Initial weights are drawn inside ``seeded(seed)``, which seeds torch's global generator on a
forked copy and restores it afterwards; every other random stream (batch order, augmentation,
sampling) gets its own ``torch.Generator`` or ``numpy.random.Generator`` seeded from the run's
seed. The numbers then depend only on the seed, not on what ran before, and a notebook user's own
random state is left as it was.
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
