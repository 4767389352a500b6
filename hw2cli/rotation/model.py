"""The small CNN of the course notebook (homework Q1.2), nanoGPT-style: a config and a module.

Three 3x3 conv blocks (conv -> ReLU -> 2x2 max-pool) shrink a 32x32 image to 4x4 feature maps,
then a two-layer MLP classifies. No normalisation layers, as in the notebook.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class RotationCNNConfig:
    """Shape of the CNN; the defaults are the notebook's (CIFAR-10: 3 channels, 10 classes)."""

    in_channels: int = 3
    n_classes: int = 10
    image_size: int = 32  # input height = width; three 2x2 pools divide it by 8
    channels: tuple[int, int, int] = (32, 64, 64)
    hidden: int = 64

    def to_dict(self) -> dict:
        return {**asdict(self), "channels": list(self.channels)}

    @classmethod
    def from_dict(cls, d: dict) -> "RotationCNNConfig":
        return cls(**{**d, "channels": tuple(d["channels"])})


class RotationCNN(nn.Module):
    """Conv(3->32) -> Conv(32->64) -> Conv(64->64), each ReLU + MaxPool 2, then Linear(64*4*4 -> 64) -> ReLU -> Linear(64 -> 10)."""

    def __init__(self, config: RotationCNNConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3 = config.channels
        self.features = nn.Sequential(
            nn.Conv2d(config.in_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        side = config.image_size // 8
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c3 * side * side, config.hidden), nn.ReLU(),
            nn.Linear(config.hidden, config.n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [0, 1] -> class logits (B, n_classes)."""
        return self.classifier(self.features(x))
