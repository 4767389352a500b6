"""What each rotate-eval mode costs: parameters, multiply-adds, training step and inference time.

The plain CNN (the baseline), the p4 CNN and TTA over the plain CNN's four quarter turns, on
random 32x32 RGB images, in one process. The timed kinds alternate in every round (A B C A B C
...) so that all see the same machine load; the medians and their ratios to plain are printed.

- train: one Adam step (forward, backward, update) on a batch of ``--train-batch`` (64, the
  rotate-eval default); ms per image. TTA trains the plain model, so it has no row.
- infer: a no-grad forward pass on a batch of ``--eval-batch`` (256, rotate-eval's evaluation
  batch); ms per image. TTA includes its four rotations (``torchvision`` rotate, exact for 90°).
- MACs per image are counted from the layer shapes, not timed (convs and linears; a p4 conv is an
  ordinary Conv2d with 4x the output channels, and the group convs 4x the input channels).

    OMP_NUM_THREADS=1 python benchmarks/bench_rotation_modes.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from hw2cli.rotation.model import (  # noqa: E402
    P4CNN,
    P4CNNConfig,
    P4Conv,
    RotationCNN,
    RotationCNNConfig,
    RotationTTA,
    count_parameters,
)


def macs_per_image(model: torch.nn.Module, size: int = 32) -> int:
    """Multiply-adds of one 32x32 image through every conv and linear layer (hooks on shapes)."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d | P4Conv):
            weight = module.weight if isinstance(module, torch.nn.Conv2d) else module.filters()
            total += output.shape[2] * output.shape[3] * weight.numel()
        elif isinstance(module, torch.nn.Linear):
            total += module.weight.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return total


def time_train_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return (time.perf_counter() - start) / len(x)


@torch.no_grad()
def time_inference(model: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x)
    return (time.perf_counter() - start) / len(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--train-batch", type=int, default=64)
    parser.add_argument("--eval-batch", type=int, default=256)
    args = parser.parse_args()

    torch.manual_seed(0)
    plain = RotationCNN(RotationCNNConfig())
    p4 = P4CNN(P4CNNConfig())
    models = {"plain": plain, "p4": p4, "tta": RotationTTA(plain)}
    xt, yt = torch.rand(args.train_batch, 3, 32, 32), torch.randint(0, 10, (args.train_batch,))
    xe = torch.rand(args.eval_batch, 3, 32, 32)
    train = {"plain": [], "p4": []}
    infer = {name: [] for name in models}
    for name in train:  # warm-up round, not counted
        time_train_step(models[name], xt, yt)
    for name in infer:
        time_inference(models[name], xe)
    for _ in range(args.rounds):
        for name in train:
            train[name].append(time_train_step(models[name], xt, yt))
        for name in infer:
            infer[name].append(time_inference(models[name].eval(), xe))

    print(
        f"torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} thread(s), "
        f"{args.rounds} rounds, medians"
    )
    header = ("model", "params", "MACs/img", "train ms/img", "x plain", "infer ms/img", "x plain")
    print("{:6} {:>8} {:>11} {:>13} {:>8} {:>13} {:>8}".format(*header))
    base_train, base_infer = statistics.median(train["plain"]), statistics.median(infer["plain"])
    for name, model in models.items():
        macs = macs_per_image(model)
        tr = statistics.median(train[name]) if name in train else None
        inf = statistics.median(infer[name])
        tr_text = f"{1000 * tr:13.3f} {tr / base_train:7.2f}x" if tr else f"{'(plain)':>13} {'':>8}"
        params = count_parameters(model)
        print(f"{name:6} {params:8,} {macs:11,} {tr_text} {1000 * inf:13.3f} {inf / base_infer:7.2f}x")


if __name__ == "__main__":
    main()
