"""Batched tensor rotation (rotate-eval's path) against per-image PIL rotation.

Both rotate the same N CIFAR-sized images (32x32 RGB) by each of 13 angles (0, 30, ..., 360)
and deliver a float tensor batch ready for the CNN. The baseline turns every image with PIL
(``Image.rotate``, nearest, black fill: the same geometry) and converts it back to a tensor;
the new path rotates whole batches (256 images, as evaluate() does) with torchvision on the tensors. For scale, the
script also times the 13 inference passes of the CNN alone and the full evaluation (rotation +
inference). Runs are interleaved in one process; medians are printed with the ratio.

    PYTHONPATH=. python benchmarks/bench_rotation.py [--images 10000] [--repeats 3] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from PIL import Image

from hw2cli.rotation.data import to_float
from hw2cli.rotation.experiment import EVAL_BATCH, evaluate
from hw2cli.rotation.model import RotationCNN, RotationCNNConfig
from hw2cli.rotation.options import parse_angles  # noqa: E402
from hw2cli.rotation.rotate import rotate_batch

ANGLES = parse_angles("0:360:30")


def per_image_pil(images_hwc: np.ndarray) -> float:
    """Rotate every image on its own with PIL, then stack into a float tensor per angle."""
    checksum = 0.0
    for angle in ANGLES:
        turned = [
            np.asarray(Image.fromarray(img).rotate(angle, resample=Image.NEAREST, fillcolor=(0, 0, 0)))
            for img in images_hwc
        ]
        batch = to_float(torch.from_numpy(np.stack(turned)).permute(0, 3, 1, 2))
        checksum += float(batch[:, :, 16, 16].sum())
    return checksum


def batched_tensor(images: torch.Tensor, device: torch.device) -> float:
    """Rotate batches of EVAL_BATCH images at once on the device, as evaluate() does."""
    checksum = torch.zeros((), device=device)
    for i in range(0, len(images), EVAL_BATCH):
        x = to_float(images[i : i + EVAL_BATCH].to(device))
        for angle in ANGLES:
            checksum += rotate_batch(x, angle)[:, :, 16, 16].sum()
    return float(checksum)


@torch.no_grad()
def inference_only(model: RotationCNN, images: torch.Tensor, device: torch.device) -> float:
    """13 plain inference passes over the images (no rotation): the floor for evaluation."""
    checksum = torch.zeros((), device=device)
    for i in range(0, len(images), EVAL_BATCH):
        x = to_float(images[i : i + EVAL_BATCH].to(device))
        for _ in ANGLES:
            checksum += model(x).argmax(1).sum()
    return float(checksum)


def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (PIL uses one)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    rng = np.random.default_rng(0)
    images_hwc = rng.integers(0, 256, size=(args.images, 32, 32, 3), dtype=np.uint8)
    images = torch.from_numpy(images_hwc).permute(0, 3, 1, 2).contiguous()
    labels = torch.from_numpy(rng.integers(0, 10, size=args.images))
    model = RotationCNN(RotationCNNConfig()).to(device).eval()

    # Same geometry: PIL and torchvision agree pixel for pixel (up to ties of nearest rounding).
    sample = images[:64]
    pil = torch.stack(
        [
            torch.from_numpy(np.array(Image.fromarray(img).rotate(30, resample=Image.NEAREST))).permute(
                2, 0, 1
            )
            for img in images_hwc[:64]
        ]
    )
    agree = (rotate_batch(sample, 30) == pil).float().mean().item()

    times: dict[str, list[float]] = {"pil": [], "batched": [], "inference": [], "evaluate": []}
    for _ in range(args.repeats):
        times["pil"].append(timed(per_image_pil, images_hwc))
        times["batched"].append(timed(batched_tensor, images, device))
        times["inference"].append(timed(inference_only, model, images, device))
        times["evaluate"].append(timed(evaluate, {"plain": model}, images, labels, ANGLES, device=device))
    med = {k: statistics.median(v) for k, v in times.items()}

    print(
        f"{args.images} images x {len(ANGLES)} angles, device {device}, torch threads {args.threads}, "
        f"{args.repeats} repeats (medians)"
    )
    print(f"pixels equal between PIL and torchvision at 30 degrees: {100 * agree:.2f}%")
    print(f"per-image PIL rotation      {med['pil']:8.3f} s")
    print(
        f"batched tensor rotation     {med['batched']:8.3f} s   "
        f"ratio PIL / batched = {med['pil'] / med['batched']:.1f}x"
    )
    print(f"13 inference passes alone   {med['inference']:8.3f} s")
    print(
        f"full evaluation (rot + inf) {med['evaluate']:8.3f} s   "
        f"= {med['evaluate'] / med['inference']:.2f}x the inference passes"
    )


if __name__ == "__main__":
    main()
