"""Q2.1b: a CNN sees a local window, self-attention the whole sequence.

Effective receptive fields by gradients (Luo et al., 2016) at initialisation, averaged over random
inputs. CNN: the padding-bench Net1 (zero padding 1, four 3x3 convolutions with strides 1, 2, 2,
2); the gradient of the centre unit of each layer's output map with respect to the input pixels.
GPT: the gradient of the last position's logits, read out after each block (final norm and head
applied), with respect to each position's input embedding. Reported: the support (non-zero
gradient), the width that holds 90% of the gradient mass, and the maps for the plot."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from rich.console import Console

from hw2cli.common.device import resolve_device
from hw2cli.common.estimate import Cost, announce, seconds_per_call
from hw2cli.common.progress import Reporter
from hw2cli.common.seeding import seeded
from hw2cli.probe import _gpt
from hw2cli.probe.common import FAILS, HOLDS, PARTLY, Verdict, check_fits
from hw2cli.probe.options import ReceptiveFieldOptions

MASS = 0.9
GPT_HEADS, GPT_LAYERS, GPT_WIDTH, GPT_VOCAB = 3, 3, 48, 64
GPT_COPIES = 8  # (samples, heads, T, T) float32 tensors held at the peak, over all layers (measured: 6 to 8)
CNN_BYTES = 2**20  # per sample, Net1's activations and their gradients (measured: 0.65 to 0.85 MiB)


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
    with conv.register_forward_hook(lambda m, i, o: outputs.append(o)):
        model(x)
    out = outputs[0]
    return out[:, :, out.size(2) // 2, out.size(3) // 2].sum()


def cnn_fields(seed: int, samples: int) -> Iterator[tuple[FieldRow, torch.Tensor]]:
    """Gradient maps of the centre unit of each convolution of Net1 (zero padding 1), layer by layer."""
    from hw2cli.padding.model import IMAGE_SIZE, LAYERS, PaddingNetConfig, make_model

    model = make_model(PaddingNetConfig(net="net1", conv_type="sconv", padding_impl="builtin"), seed).eval()
    x = torch.randn(samples, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(seed))
    theory, jump = 1, 1
    for layer, (_, _, stride) in enumerate(LAYERS, start=1):
        theory += 2 * jump  # a 3x3 kernel adds one input step of the layer below on each side
        jump *= stride
        grad = input_gradient_map(lambda inp, conv=model.convs[layer - 1]: _centre_unit(model, conv, inp), x)
        row = FieldRow("cnn", layer, theory, max(support_box(grad)), square_width(grad), IMAGE_SIZE)
        yield row, grad / grad.sum()


def gpt_fields(
    seed: int, samples: int, length: int, device: torch.device
) -> Iterator[tuple[FieldRow, torch.Tensor]]:
    """Gradient mass per input position of the last position's logits read out after each block."""
    config = _gpt.make_config(GPT_LAYERS, GPT_HEADS, GPT_WIDTH, GPT_VOCAB, length)
    with seeded(seed):
        model = _gpt.gpt_model.GPT(config).to(device).eval()
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, GPT_VOCAB, (samples, length), generator=gen).to(device)
    kept: dict[str, torch.Tensor] = {}

    def keep(name: str):
        return lambda module, inputs, output: kept.update({name: output})

    for layer, block in enumerate(model.blocks, start=1):
        with model.tok_emb.register_forward_hook(keep("emb")), block.register_forward_hook(keep("h")):
            model(idx)
        kept["emb"].retain_grad()
        model.lm_head(model.ln_f(kept["h"][:, -1])).sum().backward()
        mass = kept["emb"].grad.norm(dim=-1).mean(0).detach().cpu().double()
        model.zero_grad(set_to_none=True)
        support = int((mass > 0).sum())
        yield FieldRow("gpt", layer, length, support, recent_width(mass), length), mass / mass.sum()


def _verdicts(rows: list[FieldRow]) -> list[Verdict]:
    """Exact measurements (which gradients are zero), so no spread: each claim is decided by
    what its model's layers show; a model interrupted before its first layer has no verdict."""
    cnn = [r for r in rows if r.model == "cnn"]
    gpt = [r for r in rows if r.model == "gpt"]
    exact = "a zero gradient is exact: {} outside the support cannot change the {}"
    v = []
    if cnn:
        last = cnn[-1]
        local = last.support < last.size
        measurement = (
            f"after {len(cnn)} convolutions the centre unit's gradient covers "
            f"{last.support}x{last.support} of {last.size}x{last.size} pixels (by construction "
            f"{last.theory}); 90% of it within {last.width90}x{last.width90}"
        )
        verdict = HOLDS if local and last.width90 < last.size else (PARTLY if local else FAILS)
        why = exact.format("pixels", "unit")
        v.append(Verdict("a CNN sees a local window of its input", measurement, verdict, why))
    if gpt:
        first = gpt[0]
        measurement = (
            f"after one block the last position's gradient reaches {first.support} of {first.size} "
            f"positions; 90% of the mass within the last {first.width90} (block {gpt[-1].layer}: {gpt[-1].width90})"
        )
        verdict = HOLDS if first.support == first.size else (PARTLY if first.support > 1 else FAILS)
        why = exact.format("positions", "output")
        v.append(Verdict("self-attention sees the whole sequence at once", measurement, verdict, why))
    return v


def memory_needed(samples: int, length: int) -> int:
    """Bytes at the peak: the GPT's attention tensors (and its causal mask), or Net1's activations."""
    gpt = GPT_COPIES * samples * GPT_HEADS * length * length * 4 + length * length
    return max(gpt, CNN_BYTES * samples)


def _cost(samples: int, length: int, seed: int, dev: torch.device) -> Cost | None:
    """Both models timed here at small sizes, scaled by the work (samples; samples x seq_len²
    for the GPT); None (not timed) for runs near the defaults."""
    if samples * length * length <= 2**22 and samples <= 2048:
        return None
    cnn = seconds_per_call(lambda: list(cnn_fields(seed, 16)), calls=1, warmup=0)
    gpt = seconds_per_call(lambda: list(gpt_fields(seed, 2, 256, dev)), calls=1, warmup=0)
    work = gpt * samples / 2 * max(length / 256, (length / 256) ** 2)
    return Cost(cnn * samples / 16 + work, basis="both models timed here at small sizes")


def receptive_field(opts: ReceptiveFieldOptions, reporter: Reporter | None = None) -> ReceptiveFieldResult:
    """CNN and GPT gradient fields per layer, with a verdict per claim (Ctrl-C keeps the layers done)."""
    reporter = reporter or Reporter()
    dev = resolve_device(opts.device)
    samples, length = opts.size("samples"), opts.size("seq_len")
    what = f"{{samples}} {samples:,} x {{seq_len}} {length:,}"
    why = f"the GPT keeps {GPT_COPIES} x samples x {GPT_HEADS} heads x seq_len² floats"
    check_fits(memory_needed(samples, length), str(dev), what, why, "use smaller {samples} or {seq_len}")
    result = ReceptiveFieldResult(device=str(dev), samples=samples)
    try:
        cost = _cost(samples, length, opts.seed, dev)
        if cost is not None:
            announce(cost, "the receptive fields", "fewer samples", reporter)
        from hw2cli.padding.model import LAYERS

        reporter.start("fields", "receptive fields", total=len(LAYERS) + GPT_LAYERS)
        fields = itertools.chain(cnn_fields(opts.seed, samples), gpt_fields(opts.seed, samples, length, dev))
        for row, grad in fields:
            result.rows.append(row)
            (result.cnn_maps if row.model == "cnn" else result.gpt_maps).append(grad.tolist())
            reporter.update("fields", advance=1)
    except KeyboardInterrupt:
        result.interrupted = True
    reporter.finish("fields")
    result.verdicts = _verdicts(result.rows)
    return result


def tables(r: ReceptiveFieldResult, console: Console) -> None:
    from hw2cli.probe.common import show

    rows = []
    for row in r.rows:
        if row.model == "cnn":
            cells = [f"{x}x{x}" for x in (row.theory, row.support, row.width90, row.size)]
        else:
            cells = [f"{x} positions" for x in (row.theory, row.support)]
            cells += [f"last {row.width90}", f"{row.size} positions"]
        rows.append(("Net1 (CNN)" if row.model == "cnn" else "GPT", str(row.layer), *cells))
    columns = ("model", "layer", "by construction", "non-zero gradient", "90% of the gradient", "input size")
    title = f"Gradient receptive fields at initialisation, mean over {r.samples} random inputs"
    show(console, title, columns, rows)


def figure(r: ReceptiveFieldResult) -> Any:
    from matplotlib.colors import LogNorm

    from hw2cli.probe.render import new_figure

    n = max(1, len(r.cnn_maps))  # none when Ctrl-C came before the first layer
    fig = new_figure(figsize=(3 * n, 6))
    grid = fig.add_gridspec(2, n)
    for i, m in enumerate(r.cnn_maps):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(m, cmap="magma")
        ax.set_title(f"CNN layer {i + 1}", fontsize=9)
        ax.set(xticks=[], yticks=[])
    ax = fig.add_subplot(grid[1, :])
    if r.gpt_maps:
        positive = [v for row in r.gpt_maps for v in row if v > 0]
        norm = LogNorm(vmin=min(positive), vmax=max(positive)) if positive else None
        im = ax.imshow(r.gpt_maps, aspect="auto", cmap="magma", interpolation="nearest", norm=norm)
        ax.set_yticks(range(len(r.gpt_maps)), [f"block {i + 1}" for i in range(len(r.gpt_maps))])
        fig.colorbar(im, ax=ax, label="share of gradient (log scale)")
    ax.set(
        xlabel="input position (the last one is read out)",
        title="GPT: gradient of the last position's logits",
    )
    return fig
