"""The small CNN of the course notebook (homework Q1.2), nanoGPT-style: a config and a module.

Three 3x3 conv blocks (conv -> ReLU -> 2x2 max-pool) shrink a 32x32 image to 4x4 feature maps,
then a two-layer MLP classifies. No normalisation layers, as in the notebook.

Also its p4 group-equivariant version (``P4CNN``, invariant to quarter turns of the input) and a
test-time-augmentation wrapper (``RotationTTA``): the rotate-eval modes ``p4``, ``augmented-tta``
and ``plain-tta``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hw2cli.rotation.rotate import rotate_batch


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


class RotationCNN(nn.Module):
    """Conv(3->32) -> Conv(32->64) -> Conv(64->64), each ReLU + MaxPool 2, then
    Linear(64*4*4 -> 64) -> ReLU -> Linear(64 -> 10)."""

    def __init__(self, config: RotationCNNConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3 = config.channels
        self.features = nn.Sequential(
            nn.Conv2d(config.in_channels, c1, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        side = config.image_size // 8
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c3 * side * side, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, config.n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [0, 1] -> class logits (B, n_classes)."""
        return self.classifier(self.features(x))


# --- p4: the same CNN made equivariant to quarter turns (Cohen & Welling 2016, "Group Equivariant
# Convolutional Networks"). A feature map has C fields x 4 rotation channels, stored as a plain
# (B, 4 * C, H, W) tensor with channel 4 * c + r, so ReLU and max-pool apply unchanged. Rotating the
# input by 90° counter-clockwise (torch.rot90, k=1) rotates every map the same way and shifts the
# rotation channels cyclically by one (r -> r + 1). Zero padding 1 around 3x3 filters and 2x2 pools
# on even sides (32 -> 16 -> 8 -> 4) commute with rot90, so the equivariance is exact.


@dataclass
class P4CNNConfig(RotationCNNConfig):
    """Shape of the p4 CNN. Widths count fields (each 4 rotation channels); the defaults, half the
    notebook's, give about the plain CNN's parameter count (121,706 against 122,570). The image
    side must be a multiple of 8, so that every pool sees an even side."""

    channels: tuple[int, int, int] = (16, 32, 32)
    hidden: int = 32


class P4Conv(nn.Module):
    """A p4 group convolution: each output field has one learned filter, applied at its four quarter
    turns. ``in_rotations=1`` is the lifting layer (image -> p4 maps); ``in_rotations=4`` maps p4 maps
    to p4 maps, where turning the filter also shifts its input rotation channels cyclically."""

    def __init__(
        self, in_fields: int, out_fields: int, kernel_size: int, padding: int, in_rotations: int
    ) -> None:
        super().__init__()
        self.padding = padding
        self.in_rotations = in_rotations
        self.weight = nn.Parameter(torch.empty(out_fields, in_fields, in_rotations, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_fields))  # one per field, shared by its rotations
        fan_in = in_fields * in_rotations * kernel_size**2
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's initialisation
        nn.init.uniform_(self.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))

    def filters(self) -> torch.Tensor:
        """The (4 * out_fields, in_fields * in_rotations, k, k) weight of the equivalent Conv2d."""
        w = self.weight
        turned = [
            torch.rot90(torch.roll(w, r, dims=2) if self.in_rotations == 4 else w, r, dims=(3, 4))
            for r in range(4)
        ]
        out_fields, in_fields, in_rot, k, _ = w.shape
        return torch.stack(turned, dim=1).reshape(out_fields * 4, in_fields * in_rot, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.filters(), self.bias.repeat_interleave(4), padding=self.padding)


class P4CNN(nn.Module):
    """The notebook CNN over the group p4: a lifting conv and two group convs (3x3, ReLU, max-pool 2),
    a group conv over the whole 4x4 map in place of Linear(64*4*4 -> 64), a max over the four rotation
    channels, then Linear(hidden -> classes). The logits are invariant to quarter turns of the input."""

    def __init__(self, config: P4CNNConfig) -> None:
        super().__init__()
        if config.image_size % 8:
            raise ValueError(f"the p4 CNN needs an image side divisible by 8, got {config.image_size}")
        self.config = config
        c1, c2, c3 = config.channels
        self.blocks = nn.ModuleList(
            nn.Sequential(P4Conv(cin, cout, 3, padding=1, in_rotations=rot), nn.ReLU(), nn.MaxPool2d(2))
            for cin, cout, rot in ((config.in_channels, c1, 1), (c1, c2, 4), (c2, c3, 4))
        )
        self.dense = P4Conv(c3, config.hidden, config.image_size // 8, padding=0, in_rotations=4)
        self.classifier = nn.Linear(config.hidden, config.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [0, 1] -> class logits (B, n_classes)."""
        for block in self.blocks:
            x = block(x)
        h = F.relu(self.dense(x)).flatten(1).unflatten(1, (-1, 4))  # (B, hidden, 4)
        return self.classifier(h.amax(dim=2))


class RotationTTA(nn.Module):
    """Test-time augmentation: the mean of a model's softmax over copies of the input turned by each
    of ``angles`` degrees; returns its log, so argmax is the averaged prediction. The copies are
    summed in sorted order (per class), so a set closed under quarter turns gives bit-identical
    outputs for turned inputs."""

    def __init__(self, model: nn.Module, angles: tuple[float, ...] = (0.0, 90.0, 180.0, 270.0)) -> None:
        super().__init__()
        self.model = model
        self.angles = tuple(angles)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([self.model(rotate_batch(x, a)).float().softmax(dim=1) for a in self.angles])
        return (probs.sort(dim=0).values.sum(dim=0) / len(self.angles)).log()


def build_model(config: RotationCNNConfig | P4CNNConfig) -> RotationCNN | P4CNN:
    """The plain CNN or its p4 version, from its config."""
    return P4CNN(config) if isinstance(config, P4CNNConfig) else RotationCNN(config)


def count_parameters(model: nn.Module) -> int:
    """Number of learned weights."""
    return sum(p.numel() for p in model.parameters())
