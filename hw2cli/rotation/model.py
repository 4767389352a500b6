"""The small CNN of the course notebook (homework Q1.2), its p4 group-equivariant version
(``P4CNN``, invariant to quarter turns of the input) and a test-time-augmentation wrapper
(``RotationTTA``): the models of the rotate-eval modes. No normalisation layers, as in the notebook."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hw2cli.common.options import Spec, option
from hw2cli.rotation.rotate import rotate_batch

WIDTHS = Spec("Widths of the three conv blocks (fields for the p4 CNN).", min=1, max=4096)
HIDDEN = Spec("Width of the hidden layer.", min=1, max=65_536)


@dataclass
class RotationCNNConfig:
    """Shape of the CNN; the defaults are the notebook's (CIFAR-10: 3 channels, 10 classes). The
    Specs' limits bound a saved config.json: beyond them it was edited, not written by hw2."""

    in_channels: int = option(3, "Input channels.", min=1, max=64)
    n_classes: int = option(10, "Classes.", min=1, max=100_000)
    image_size: int = option(32, "Input height = width; three 2x2 pools divide it by 8.", min=8, max=4096)
    channels: tuple[int, int, int] = option((32, 64, 64), WIDTHS)
    hidden: int = option(64, HIDDEN)

    def to_dict(self) -> dict:
        return {**asdict(self), "channels": list(self.channels)}


class RotationCNN(nn.Module):
    """Three blocks of 3x3 conv, ReLU, 2x2 max-pool (32x32 -> 4x4), then Linear -> ReLU -> Linear."""

    def __init__(self, config: RotationCNNConfig) -> None:
        super().__init__()
        self.config = config
        widths = (config.in_channels, *config.channels)
        self.features = nn.Sequential(
            *(
                layer
                for c_in, c_out in zip(widths, widths[1:], strict=False)
                for layer in (nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
            )
        )
        side = config.image_size // 8
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(widths[-1] * side * side, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, config.n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# p4 (Cohen & Welling 2016, "Group Equivariant Convolutional Networks"): a feature map has C
# fields x 4 rotation channels, stored as a plain (B, 4 * C, H, W) tensor with channel 4 * c + r,
# so ReLU and max-pool apply unchanged. Turning the input by 90° (torch.rot90, k=1) turns every
# map the same way and shifts the rotation channels cyclically (r -> r + 1). Zero padding 1 around
# 3x3 filters and 2x2 pools on even sides commute with rot90: the equivariance is exact.


@dataclass
class P4CNNConfig(RotationCNNConfig):
    """Widths count fields (4 rotation channels each); half the notebook's give about the plain
    CNN's parameter count (121,706 against 122,570). The image side must be a multiple of 8."""

    channels: tuple[int, int, int] = option((16, 32, 32), WIDTHS)
    hidden: int = option(32, HIDDEN)


class P4Conv(nn.Module):
    """A p4 group convolution: one learned filter per output field, applied at its four quarter
    turns. ``in_rotations=1`` lifts an image to p4 maps; with 4, turning the filter also shifts
    its input rotation channels cyclically."""

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
    """The notebook CNN over p4: a lifting conv and two group convs (3x3, ReLU, max-pool 2), a
    group conv over the whole 4x4 map in place of the first Linear, a max over the four rotation
    channels, then Linear(hidden -> classes): logits invariant to quarter turns of the input."""

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
        for block in self.blocks:
            x = block(x)
        h = F.relu(self.dense(x)).flatten(1).unflatten(1, (-1, 4))  # (B, hidden, 4)
        return self.classifier(h.amax(dim=2))


class RotationTTA(nn.Module):
    """Test-time augmentation: the log of the mean softmax of ``model`` over copies of the input
    turned by each of ``angles`` degrees. The copies are summed in sorted order (per class), so
    a set closed under quarter turns gives bit-identical outputs for turned inputs."""

    def __init__(self, model: nn.Module, angles: tuple[float, ...] = (0.0, 90.0, 180.0, 270.0)) -> None:
        super().__init__()
        self.model = model
        self.angles = tuple(angles)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([self.model(rotate_batch(x, a)).float().softmax(dim=1) for a in self.angles])
        return (probs.sort(dim=0).values.sum(dim=0) / len(self.angles)).log()


Config = RotationCNNConfig | P4CNNConfig
Model = RotationCNN | P4CNN


def build_model(config: Config) -> Model:
    return P4CNN(config) if isinstance(config, P4CNNConfig) else RotationCNN(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
