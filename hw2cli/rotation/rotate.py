"""Rotation of image batches on their device, and the ``--angles`` spec parser.

Angles are in degrees, counter-clockwise for positive values (torchvision's convention, the same
as PIL's). The uncovered corners are filled with black (zeros) and pixels are resampled with
nearest-neighbour interpolation, torchvision's default for ``rotate``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from hw2cli.common.errors import Hw2Error

ANGLES_FORM = (
    "START:STOP:STEP (e.g. 0:360:30, STOP included) or a comma list (e.g. 0,90,180), or both (0:90:30,180)"
)
MAX_ANGLES = 1000


#: Largest |angle| accepted (degrees); keeps START:STOP:STEP arithmetic finite and exact to 1e-9.
MAX_ABS_ANGLE = 1e6


def parse_angles(spec: str) -> list[float]:
    """Parse ``0:360:30`` / ``0,45,90`` / ``0:90:30,180`` into sorted, distinct angles in degrees."""

    def bad(why: str) -> Hw2Error:
        return Hw2Error(f"bad --angles {spec!r}: {why}; use {ANGLES_FORM}")

    def number(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise bad(f"{text.strip()!r} is not a number") from None
        if not math.isfinite(value):
            raise bad(f"{text.strip()!r} is not a finite number")
        if abs(value) > MAX_ABS_ANGLE:
            raise bad(f"{text.strip()!r} is beyond ±{MAX_ABS_ANGLE:,.0f} degrees")
        return value

    angles: set[float] = set()
    for item in spec.split(","):
        if not item.strip():
            raise bad("empty item")
        parts = item.split(":")
        if len(parts) == 1:
            angles.add(number(parts[0]))
        elif len(parts) == 3:
            start, stop, step = (number(p) for p in parts)
            if step <= 0:
                raise bad(f"step {step:g} must be positive")
            if stop < start:
                raise bad(f"stop {stop:g} is below start {start:g}")
            span = (stop - start) / step  # finite: both ends are within ±MAX_ABS_ANGLE, step > 0 ...
            if not math.isfinite(span) or span + 1 > MAX_ANGLES:  # ... but a tiny step still overflows
                raise bad(f"{span + 1:.3g} angles is too many (at most {MAX_ANGLES})")
            count = math.floor(span + 1e-9) + 1
            if count > MAX_ANGLES:
                raise bad(f"{count} angles is too many (at most {MAX_ANGLES})")
            angles.update(round(start + i * step, 9) for i in range(count))
        else:
            raise bad(f"{item.strip()!r} is neither a number nor a START:STOP:STEP range")
        if len(angles) > MAX_ANGLES:
            raise bad(f"more than {MAX_ANGLES} angles")
    return sorted(angles)


def rotate_batch(images: torch.Tensor, angle: float) -> torch.Tensor:
    """Rotate every image of a (B, C, H, W) batch by the same ``angle``, on the batch's device."""
    return TF.rotate(images, angle, interpolation=TF.InterpolationMode.NEAREST)


def rotate_each(images: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate image ``i`` of a float (B, C, H, W) batch by ``angles[i]`` degrees, in one grid_sample.

    Same geometry as :func:`rotate_batch` (torchvision's inverse matrix about the image centre,
    pixel-centre grid, nearest, zero fill), but with one angle per image: used for the random
    rotations of augmented training.
    """
    b, _, h, w = images.shape
    rad = torch.deg2rad(angles.to(images.device, torch.float32))
    cos, sin = torch.cos(rad), torch.sin(rad)
    # Output pixel (x, y), centred -> input (cos x - sin y, sin x + cos y): a counter-clockwise
    # turn on screen (y points down). Normalised coordinates scale x by 2/w and y by 2/h.
    theta = torch.zeros(b, 2, 3, device=images.device)
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin * h / w
    theta[:, 1, 0] = sin * w / h
    theta[:, 1, 1] = cos
    grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
    out = F.grid_sample(images.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return out.to(images.dtype)
