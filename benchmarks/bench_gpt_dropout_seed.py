"""Seeding a GPT step's dropout: ``torch.manual_seed`` against the generator's own ``manual_seed``.

Every training step of ``hw2 gpt train`` seeds its dropout from ``(seed, rank, step)`` so that a
resumed run draws what the uninterrupted one would have. ``torch.manual_seed`` seeds every
generator torch has (the CPU's, each CUDA device's, ...); the step needs only the CPU generator
and, on a GPU, its device's. This checks that both give the same dropout masks and times them.

    python benchmarks/bench_gpt_dropout_seed.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import timeit

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()

    seed, x = 1234567, torch.ones(64, 128)
    torch.manual_seed(seed)
    baseline = torch.nn.functional.dropout(x, 0.1)
    torch.default_generator.manual_seed(seed)
    assert torch.equal(baseline, torch.nn.functional.dropout(x, 0.1)), "the masks differ"

    old = timeit.timeit(lambda: torch.manual_seed(seed), number=args.calls) / args.calls
    new = timeit.timeit(lambda: torch.default_generator.manual_seed(seed), number=args.calls) / args.calls
    print(f"torch.manual_seed                   {old * 1e6:9.2f} us per call")
    print(f"torch.default_generator.manual_seed {new * 1e6:9.2f} us per call")
    print(f"ratio: {old / new:.0f}x (the same dropout masks)")


if __name__ == "__main__":
    main()
