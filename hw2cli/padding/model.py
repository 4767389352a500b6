"""Net1 and Net2 of homework Q1.1: four 3x3 convolutions whose padding decides whether the
network can see where a feature is. Net1 ends with a global max pool, so only the padding can
leak absolute position; Net2 flattens the last map, so its linear layer sees position anyway."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from hw2cli.common.errors import Hw2Error
from hw2cli.common.seeding import seeded
from hw2cli.padding import CONV, NETS
from hw2cli.padding import CONV_TYPES as CONV_TYPES

# (in channels, out channels, stride) of the four convolutions
LAYERS = ((3, 32, 1), (32, 32, 2), (32, 64, 2), (64, 64, 2))
IMAGE_SIZE = 32
PADDING_IMPLS = ("builtin", "fast")


@dataclass
class PaddingNetConfig:
    net: str = "net1"  # one of NETS
    conv_type: str = "valid"  # a key of hw2cli.padding.CONV
    padding_impl: str = "fast"  # "builtin": nn.Conv2d's padding_mode (the course code); "fast": pad2d

    def __post_init__(self) -> None:
        if self.net not in NETS:
            raise Hw2Error(f"unknown net {self.net!r}; use one of {', '.join(NETS)}")
        if self.conv_type not in CONV:
            raise Hw2Error(f"unknown conv type {self.conv_type!r}; use one of {', '.join(CONV)}")
        if self.padding_impl not in PADDING_IMPLS:
            raise ValueError(f"unknown padding_impl {self.padding_impl!r}; use one of {PADDING_IMPLS}")


def layer_sizes(conv_type: str) -> list[int]:
    """Side of each convolution's output feature map for a 32x32 input."""
    sizes = [IMAGE_SIZE]
    for _, _, stride in LAYERS:
        sizes.append((sizes[-1] + 2 * CONV[conv_type].pad - 3) // stride + 1)
    return sizes[1:]


def feature_size(conv_type: str) -> int:
    """Side of the last feature map: 2 (valid), 4 (sconv), 6 (the others)."""
    return layer_sizes(conv_type)[-1]


def _fill_borders(out: torch.Tensor, pad: int, dim: int) -> None:
    """Overwrite the borders of ``out`` along ``dim`` from the opposite side (circular), in place."""
    n = out.shape[dim] - 2 * pad
    out.narrow(dim, 0, pad).copy_(out.narrow(dim, n, pad))
    out.narrow(dim, pad + n, pad).copy_(out.narrow(dim, pad, pad))


def _fold_into(centre: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, dim: int) -> None:
    """Add the gradients of the two borders along ``dim`` onto ``centre``, in place."""
    n, pad = centre.shape[dim], lo.shape[dim]
    centre.narrow(dim, n - pad, pad).add_(lo)
    centre.narrow(dim, 0, pad).add_(hi)


def _fold_borders(grad: torch.Tensor, pad: int, dim: int) -> torch.Tensor:
    """The adjoint of :func:`_fill_borders`: the centre with the border gradients added back."""
    n = grad.shape[dim] - 2 * pad
    centre = grad.narrow(dim, pad, n).clone()
    _fold_into(centre, grad.narrow(dim, 0, pad), grad.narrow(dim, pad + n, pad), dim)
    return centre


def _padded(x: torch.Tensor, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An uninitialised tensor of x's padded shape and memory format, and its centre."""
    n, c, h, w = x.shape
    cl = x.is_contiguous(memory_format=torch.channels_last)
    fmt = torch.channels_last if cl else torch.contiguous_format
    out = torch.empty(n, c, h + 2 * pad, w + 2 * pad, dtype=x.dtype, device=x.device, memory_format=fmt)
    return out, out.narrow(-2, pad, h).narrow(-1, pad, w)


def _fill_frame(out: torch.Tensor, pad: int) -> None:
    """Fill all four borders of ``out`` from its centre, in place (columns, then rows)."""
    _fill_borders(out.narrow(-2, pad, out.shape[-2] - 2 * pad), pad, -1)
    _fill_borders(out, pad, -2)


class BorderPad(torch.autograd.Function):
    """F.pad's circular mode, but the backward folds the border gradients onto the centre in place
    instead of allocating a zero tensor per slice as autograd does (8-10x faster)."""

    @staticmethod
    def forward(x: torch.Tensor, pad: int) -> torch.Tensor:
        out, centre = _padded(x, pad)  # every element is written below: no zero fill
        centre.copy_(x)
        _fill_frame(out, pad)
        return out

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.pad = inputs[1]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _fold_borders(_fold_borders(grad, ctx.pad, -2), ctx.pad, -1), None


class ReluBorderPad(torch.autograd.Function):
    """``BorderPad(relu(x), pad)`` for a channels-last x in one pass less each way: relu(x) is
    written straight into the padded tensor; the backward applies ReLU's derivative while it
    folds the column borders."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, pad: int) -> torch.Tensor:
        out, centre = _padded(x, pad)
        torch.clamp_min(x, 0, out=centre)
        _fill_frame(out, pad)
        ctx.save_for_backward(out)  # the next convolution keeps it anyway
        ctx.pad = pad
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (out,), pad = ctx.saved_tensors, ctx.pad
        rows = _fold_borders(grad, pad, -2)  # (n, c, h, w + 2 pad), this function's own
        w = rows.shape[-1] - 2 * pad
        centre = rows.narrow(-1, pad, w)
        _fold_into(centre, rows.narrow(-1, 0, pad), rows.narrow(-1, pad + w, pad), -1)
        kept = out.narrow(-2, pad, rows.shape[-2]).narrow(-1, pad, w)  # relu(x)
        return torch.ops.aten.threshold_backward(centre, kept, 0), None


def pad2d(x: torch.Tensor, pad: int, mode: str, impl: str = "fast") -> torch.Tensor:
    """Pad the last two dimensions of ``x`` as Conv2d's ``padding_mode`` would: with F.pad, what
    nn.Conv2d does, but circular by :class:`BorderPad` with ``impl="fast"``."""
    if pad == 0:
        return x
    if mode == "circular" and impl == "fast":
        return BorderPad.apply(x, pad)
    return F.pad(x, (pad, pad, pad, pad), mode="constant" if mode == "zeros" else mode)


class PaddedConv(nn.Conv2d):
    """A bias-free 3x3 nn.Conv2d with the padding of a conv type; with ``padding_impl="fast"``
    the non-zero modes pad with :func:`pad2d`, then convolve unpadded."""

    def __init__(self, c_in: int, c_out: int, stride: int, conv_type: str, padding_impl: str) -> None:
        ct = CONV[conv_type]
        super().__init__(c_in, c_out, 3, stride=stride, padding=ct.pad, padding_mode=ct.mode, bias=False)
        self.padding_impl = padding_impl

    def forward(self, x: torch.Tensor, padded: bool = False) -> torch.Tensor:
        """The convolution of x, or with ``padded`` of an x its caller already padded."""
        if not padded and (self.padding_impl == "builtin" or self.padding_mode == "zeros"):
            return super().forward(x)  # zero padding is fused into the convolution kernel
        return F.conv2d(x if padded else self.pad_input(x), self.weight, None, self.stride)

    def forward_relu(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution of relu(x), fused by :class:`ReluBorderPad` for fast circular padding
        of a channels-last x (for the other modes PyTorch's own kernels measured faster)."""
        fused = self.padding_impl == "fast" and self.padding_mode == "circular"
        if fused and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            return self(ReluBorderPad.apply(x, self.padding[0]), padded=True)
        return self(F.relu(x, inplace=True))  # a convolution's backward does not need its output

    def pad_input(self, x: torch.Tensor) -> torch.Tensor:
        """x padded as this convolution pads it (the images, padded once instead of every step)."""
        return pad2d(x, self.padding[0], self.padding_mode, self.padding_impl)


class PaddingNet(nn.Module):
    """Four padded convolutions with ReLU, then Net1's or Net2's head."""

    def __init__(self, config: PaddingNetConfig) -> None:
        super().__init__()
        self.config = config
        self.convs = nn.ModuleList(
            PaddedConv(c_in, c_out, stride, config.conv_type, config.padding_impl)
            for c_in, c_out, stride in LAYERS
        )
        c_last = LAYERS[-1][1]
        if config.net == "net1":
            self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(c_last, 2))
        else:
            s = feature_size(config.conv_type)
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(c_last * s * s, 64), nn.Linear(64, 2))

    def forward(self, x: torch.Tensor, padded: bool = False) -> torch.Tensor:
        """Logits of images x, with ``padded`` already padded by ``convs[0].pad_input``."""
        x = self.convs[0](x, padded=padded)
        for conv in self.convs[1:]:
            x = conv.forward_relu(x)
        return self.head(F.relu(x, inplace=True))


def make_model(config: PaddingNetConfig, seed: int) -> PaddingNet:
    """The network of round ``seed`` (its weights drawn from that seed)."""
    with seeded(seed):
        return PaddingNet(config)


class PaddingNetStack(nn.Module):
    """Networks of one net and one padding width as one module, each parameter stacked along a
    new first dimension: grouped convolutions and batched matrix products make a step of all
    networks a few kernels. The networks never mix (the loss is the sum of their own losses);
    each run of networks with one padding mode is padded as one."""

    def __init__(self, models: list[PaddingNet]) -> None:
        super().__init__()
        configs = [m.config for m in models]
        if len({(c.net, CONV[c.conv_type].pad) for c in configs}) != 1:
            raise ValueError("a stack needs networks of one net and one padding width")
        self.net, self.pad = configs[0].net, CONV[configs[0].conv_type].pad
        self.padding_impl = configs[0].padding_impl
        self.size = len(models)
        self.names = [name for name, _ in models[0].named_parameters()]  # PaddingNet's own keys
        self.stacked = nn.ParameterList(
            nn.Parameter(torch.stack([dict(m.named_parameters())[k].detach() for m in models]))
            for k in self.names
        )
        modes = [CONV[c.conv_type].mode for c in configs]
        starts = [i for i, mode in enumerate(modes) if i == 0 or mode != modes[i - 1]]
        # (padding mode, first network, end) of each run of networks with one mode
        self.runs = [(modes[a], a, b) for a, b in zip(starts, [*starts[1:], len(modes)], strict=True)]

    def state_of(self, i: int) -> dict[str, torch.Tensor]:
        """Network ``i``'s parameters under PaddingNet's names (its ``state_dict``)."""
        return {k: p[i] for k, p in zip(self.names, self.stacked, strict=True)}

    def _conv(self, x: torch.Tensor, weight: torch.Tensor, stride: int, shared: bool) -> torch.Tensor:
        """Every network's convolution of its channels of x, or with ``shared`` of the images."""
        m = weight.shape[0]
        if all(mode == "zeros" for mode, _, _ in self.runs):  # padding fused into the kernel
            return F.conv2d(x, weight.flatten(0, 1), None, stride, self.pad, groups=1 if shared else m)
        if shared:  # one convolution per padding mode
            outs = [
                F.conv2d(pad2d(x, self.pad, mode, self.padding_impl), weight[a:b].flatten(0, 1), None, stride)
                for mode, a, b in self.runs
            ]
        else:  # each run of networks padded by its mode, then one grouped convolution
            c = weight.shape[2]
            parts = [
                pad2d(x[:, a * c : b * c], self.pad, mode, self.padding_impl) for mode, a, b in self.runs
            ]
            x = parts[0] if len(parts) == 1 else torch.cat(parts, 1)
            outs = [F.conv2d(x, weight.flatten(0, 1), None, stride, groups=m)]
        return outs[0] if len(outs) == 1 else torch.cat(outs, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (networks, N, 2) of images x (N, 3, 32, 32)."""
        w = list(self.stacked)
        h = self._conv(x, w[0], LAYERS[0][2], shared=True)
        for weight, (_, _, stride) in zip(w[1:4], LAYERS[1:], strict=True):
            h = self._conv(F.relu(h), weight, stride, shared=False)
        h = F.relu(h)
        h = F.adaptive_max_pool2d(h, 1) if self.net == "net1" else h
        h = h.reshape(h.shape[0], self.size, -1).transpose(0, 1)  # (networks, N, features)
        for weight, bias in zip(w[4::2], w[5::2], strict=True):  # the head's linear layers
            h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
        return h


def conv_flops(conv_type: str) -> list[int]:
    """Multiply-adds x 2 of each convolution's forward pass on one image."""
    return [
        2 * c_in * 9 * c_out * size * size
        for (c_in, c_out, _), size in zip(LAYERS, layer_sizes(conv_type), strict=True)
    ]


def forward_flops(config: PaddingNetConfig) -> int:
    """Multiply-adds x 2 of one forward pass on one image (convolutions and linear layers)."""
    c_last, size = LAYERS[-1][1], feature_size(config.conv_type)
    head = 2 * c_last * 2 if config.net == "net1" else 2 * c_last * size * size * 64 + 2 * 64 * 2
    return sum(conv_flops(config.conv_type)) + head
