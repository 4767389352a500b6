"""Rotation of image batches on their device: degrees, counter-clockwise (torchvision's and PIL's
convention), the uncovered corners black, nearest-neighbour resampling (torchvision's default)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF


def rotate_batch(images: torch.Tensor, angle: float) -> torch.Tensor:
    """Rotate every image of a (B, C, H, W) batch by the same ``angle``, on the batch's device."""
    return TF.rotate(images, angle, interpolation=TF.InterpolationMode.NEAREST)


def rotate_each(images: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate image ``i`` of a float batch by ``angles[i]`` degrees in one grid_sample, with the
    geometry of :func:`rotate_batch` (the random rotations of augmented training)."""
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
