"""Q2.1b: a CNN sees a local window, self-attention the whole sequence.

Effective receptive fields by gradients (Luo et al., 2016), at initialisation, averaged over
random inputs. CNN: the padding-bench Net1 (zero padding 1, four 3x3 convolutions with strides
1, 2, 2, 2); the gradient of the centre unit of each layer's output map with respect to the
input pixels. GPT: the project's model; the gradient of the last position's logits, read out
after each block (final norm and head applied), with respect to each position's input
embedding. Reported: the support (where the gradient is not zero), the width that holds 90% of
the gradient mass, and the maps themselves for the plot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from hw2cli.common.progress import Reporter
from hw2cli.probe import _gpt
from hw2cli.probe.common import FAILS, HOLDS, PARTLY, Verdict

MASS = 0.9


@dataclass
class FieldRow:
    model: str  # "cnn" or "gpt"
    layer: int
    theory: int  # receptive field by construction (pixels per side / positions)
    support: int  # side of the box (CNN) / number of positions (GPT) with a non-zero gradient
    width90: int  # side of the centred square / the most recent positions holding 90% of the mass
    size: int  # image side / sequence length


@dataclass
class ReceptiveFieldResult:
    device: str
    samples: int
    rows: list[FieldRow] = field(default_factory=list)
    cnn_maps: list[list[list[float]]] = field(default_factory=list)  # per layer, (H, W), sums to 1
    gpt_maps: list[list[float]] = field(default_factory=list)  # per layer, (T,), sums to 1
    verdicts: list[Verdict] = field(default_factory=list)
    interrupted: bool = False


def support_box(grad: torch.Tensor, tol: float = 0.0) -> tuple[int, int]:
    """Height and width of the bounding box of the entries of a 2-D map above ``tol``."""
    rows = torch.nonzero(grad.abs().amax(1) > tol).flatten()
    cols = torch.nonzero(grad.abs().amax(0) > tol).flatten()
    if len(rows) == 0:
        return 0, 0
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def input_gradient_map(fn, x: torch.Tensor) -> torch.Tensor:
    """|d fn(x) / d x| summed over the channel axis 1 and averaged over the batch: (H, W)."""
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(x), x)
    return grad.abs().sum(1).mean(0)


def square_width(mass: torch.Tensor, share: float = MASS) -> int:
    """Side of the smallest square around the map's centre of mass that holds ``share`` of it."""
    mass = mass / mass.sum()
    h, w = mass.shape
    ys, xs = torch.arange(h, dtype=mass.dtype), torch.arange(w, dtype=mass.dtype)
    cy, cx = int(round((mass.sum(1) * ys).sum().item())), int(round((mass.sum(0) * xs).sum().item()))
    for r in range(max(h, w)):
        if mass[max(0, cy - r) : cy + r + 1, max(0, cx - r) : cx + r + 1].sum() >= share - 1e-9:
            return 2 * r + 1
    return max(h, w)


def recent_width(mass: torch.Tensor, share: float = MASS) -> int:
    """How many of the most recent positions hold ``share`` of the mass (T,)."""
    cum = torch.flip(mass / mass.sum(), [0]).cumsum(0)
    return int(torch.nonzero(cum >= share - 1e-9)[0].item()) + 1


def _centre_unit(model, conv, x: torch.Tensor) -> torch.Tensor:
    """Sum over channels of the centre unit of ``conv``'s output when ``model`` sees ``x``."""
    outputs: list[torch.Tensor] = []
    hook = conv.register_forward_hook(lambda m, i, o: outputs.append(o))
    try:
        model(x)
    finally:
        hook.remove()
    out = outputs[0]
    return out[:, :, out.size(2) // 2, out.size(3) // 2].sum()


def cnn_fields(seed: int, samples: int) -> tuple[list[FieldRow], list[torch.Tensor]]:
    """Gradient maps of the centre unit of each convolution of Net1 (zero padding 1)."""
    from hw2cli.padding.model import IMAGE_SIZE, LAYERS, PaddingNetConfig, make_model

    model = make_model(PaddingNetConfig(net="net1", conv_type="sconv", padding_impl="builtin"), seed).eval()
    x = torch.randn(samples, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(seed))
    rows, maps = [], []
    theory, jump = 1, 1
    for layer, (_, _, stride) in enumerate(LAYERS, start=1):
        theory += 2 * jump  # a 3x3 kernel adds one input step of the layer below on each side
        jump *= stride
        grad = input_gradient_map(lambda inp, conv=model.convs[layer - 1]: _centre_unit(model, conv, inp), x)
        maps.append(grad / grad.sum())
        rows.append(FieldRow("cnn", layer, theory, max(support_box(grad)), square_width(grad), IMAGE_SIZE))
    return rows, maps


def _run_capturing(model, block, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run ``model`` on ``idx``, keeping the token embeddings (with their gradient) and ``block``'s output."""
    captured: dict[str, torch.Tensor] = {}

    def keep_emb(m, i, o):
        o.retain_grad()
        captured["emb"] = o

    def keep_block(m, i, o):
        captured["h"] = o

    hooks = [model.tok_emb.register_forward_hook(keep_emb), block.register_forward_hook(keep_block)]
    try:
        model(idx)
    finally:
        for h in hooks:
            h.remove()
    return captured


def gpt_fields(
    seed: int, samples: int, length: int, device: torch.device
) -> tuple[list[FieldRow], list[torch.Tensor]]:
    """Gradient mass per input position of the last position's logits read out after each block."""
    torch.manual_seed(seed)
    vocab = 64
    model = _gpt.gpt_model.GPT(_gpt.make_config(3, 3, 48, vocab, length)).to(device).eval()
    idx = torch.randint(0, vocab, (samples, length), generator=torch.Generator().manual_seed(seed)).to(device)
    rows, maps = [], []
    for layer in range(1, len(model.blocks) + 1):
        captured = _run_capturing(model, model.blocks[layer - 1], idx)
        model.lm_head(model.ln_f(captured["h"][:, -1])).sum().backward()
        mass = captured["emb"].grad.norm(dim=-1).mean(0).detach().cpu().double()
        model.zero_grad(set_to_none=True)
        maps.append(mass / mass.sum())
        support = int((mass > 0).sum())
        rows.append(FieldRow("gpt", layer, length, support, recent_width(mass), length))
    return rows, maps


def _verdicts(rows: list[FieldRow]) -> list[Verdict]:
    cnn = [r for r in rows if r.model == "cnn"]
    gpt = [r for r in rows if r.model == "gpt"]
    last = cnn[-1]
    local = last.support < last.size
    v = [
        Verdict(
            "a CNN sees a local window of its input",
            f"after {len(cnn)} convolutions the centre unit's gradient covers "
            f"{last.support}x{last.support} of {last.size}x{last.size} pixels (by construction "
            f"{last.theory}); 90% of it within {last.width90}x{last.width90}",
            HOLDS if local and last.width90 < last.size else (PARTLY if local else FAILS),
        )
    ]
    first = gpt[0]
    v.append(
        Verdict(
            "self-attention sees the whole sequence at once",
            f"after one block the last position's gradient reaches {first.support} of "
            f"{first.size} positions; "
            f"90% of the mass within the last {first.width90} (block {gpt[-1].layer}: {gpt[-1].width90})",
            HOLDS if first.support == first.size else (PARTLY if first.support > 1 else FAILS),
        )
    )
    return v


def receptive_field(
    samples: int = 32, length: int = 64, device: str = "cpu", seed: int = 0, reporter: Reporter | None = None
) -> ReceptiveFieldResult:
    """CNN and GPT gradient fields per layer, with a verdict per claim."""
    from hw2cli.common.device import resolve_device

    reporter = reporter or Reporter()
    dev = resolve_device(device)
    result = ReceptiveFieldResult(device=str(dev), samples=samples)
    cnn_rows, cnn_maps = cnn_fields(seed, samples)
    gpt_rows, gpt_maps = gpt_fields(seed, samples, length, dev)
    result.rows = cnn_rows + gpt_rows
    result.cnn_maps = [m.tolist() for m in cnn_maps]
    result.gpt_maps = [m.tolist() for m in gpt_maps]
    result.verdicts = _verdicts(result.rows)
    return result
