"""The training protocol of homework Q1.1, one network at a time (as the course code) or many
stacked as one model (for the GPU): cross-entropy, Adadelta, batches of 200 in data-set order,
validation after each epoch, the weights of the lowest validation loss kept and tested, a stop
after ``patience + 1`` epochs without improvement (the course code's off-by-one). The validation
accuracy reported is that of the last epoch trained, as in the course code."""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from hw2cli.padding import CONV
from hw2cli.padding import model as nets
from hw2cli.padding.data import BoxData


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 50
    batch_size: int = 200
    patience: int = 8  # stop after patience + 1 epochs without a new best validation loss
    lr: float = 1.0
    rho: float = 0.9
    eps: float = 1e-6
    weight_decay: float = 5e-5
    precision: str = "fp32"  # fp32 | bf16 (autocast)
    channels_last: bool = False  # train_round (the CPU path) then also pads the images once per round


@dataclass
class RoundOutcome:
    """One trained network: accuracies in percent, epochs counted from 1."""

    conv_type: str
    round: int
    val_acc: float  # of the last epoch trained (what the course code reports)
    val_acc_kept: float  # of the kept (lowest validation loss) weights
    test_acc: float  # kept weights, shifted test set
    test_unshifted_acc: float  # kept weights, the test set before the shift
    epochs: int  # epochs trained
    best_epoch: int  # epoch of the kept weights
    val_losses: list[float] = field(default_factory=list)  # after every epoch trained
    seconds: float = 0.0
    state: dict | None = field(default=None, repr=False)  # kept weights (not written to JSON)


def train_flops(config: nets.PaddingNetConfig, epochs: int, n_train: int, n_val: int, n_test: int) -> float:
    """FLOPs of a round: training and validation every epoch, then the two test sets. A backward
    pass costs two forward passes less the first convolution's input gradient (not computed)."""
    f = nets.forward_flops(config)
    train = 3 * f - nets.conv_flops(config.conv_type)[0]
    return epochs * (n_train * train + n_val * f) + 2 * n_test * f


def _batches(x: torch.Tensor, y: torch.Tensor, size: int):
    return zip(x.split(size), y.split(size), strict=True)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, settings: TrainSettings, padded: bool = False
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (%) of ``model`` on ``(x, y)`` (``padded``: by ``pad_input``)."""
    model.eval()
    device = next(model.parameters()).device
    loss_sum, correct = 0.0, 0
    for xb, yb in _batches(x, y, settings.batch_size):
        with _autocast(device, settings.precision):
            logits = model(xb, padded=padded).float()
        loss_sum += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
    return loss_sum / len(y), 100.0 * correct / len(y)


@torch.no_grad()
def _to_device(data: BoxData, device: torch.device, channels_last: bool, pad=lambda x: x) -> BoxData:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    moved = {k: v.to(device) for k, v in vars(data).items()}
    images = {k: pad(v).contiguous(memory_format=fmt) for k, v in moved.items() if k.endswith("_x")}
    return BoxData(**moved | images)


def train_round(
    config: nets.PaddingNetConfig,
    seed: int,
    data: BoxData,
    settings: TrainSettings = TrainSettings(),
    device: torch.device = torch.device("cpu"),
    on_epoch: Callable[[], None] = lambda: None,
) -> RoundOutcome:
    """Train one network (round ``seed``) as the course code does, the best weights kept in memory."""
    t0 = time.perf_counter()
    model = nets.make_model(config, seed).to(device)
    padded = settings.channels_last  # the CPU path pads the images for the first convolution once
    if padded:
        model = model.to(memory_format=torch.channels_last)
    data = _to_device(data, device, padded, model.convs[0].pad_input if padded else lambda x: x)
    opt = _adadelta(model.parameters(), settings)
    best_loss, best_epoch, since_best = math.inf, 0, 0
    best_state = copy.deepcopy(model.state_dict())
    val_losses: list[float] = []
    val_acc = 0.0
    for epoch in range(1, settings.epochs + 1):
        model.train()
        for x, y in _batches(data.train_x, data.train_y, settings.batch_size):
            with _autocast(device, settings.precision):
                loss = F.cross_entropy(model(x, padded=padded).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        val_loss, val_acc = evaluate(model, data.val_x, data.val_y, settings, padded)
        val_losses.append(val_loss)
        if val_loss < best_loss:
            best_loss, best_epoch, since_best = val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            since_best += 1
        on_epoch()
        if since_best > settings.patience:
            break
    model.load_state_dict(best_state)
    kept = [evaluate(model, x, y, settings, padded)[1] for x, y in data.kept_sets()]  # val, test, unshifted
    state = {k: v.detach().cpu().contiguous() for k, v in best_state.items()}
    seconds = time.perf_counter() - t0
    return RoundOutcome(
        config.conv_type, seed, val_acc, *kept, len(val_losses), best_epoch, val_losses, seconds, state
    )


CUDA_CHECK_EVERY = 5  # epochs between the host's looks at a GPU stack (the CPU's: every epoch)


def train_rounds_batched(
    configs: list[nets.PaddingNetConfig],
    seeds: list[int],
    data: BoxData,
    settings: TrainSettings = TrainSettings(),
    device: torch.device = torch.device("cpu"),
    on_epoch: Callable[[int], None] = lambda n: None,
    stack_size: int | None = None,
) -> Iterator[RoundOutcome]:
    """Train one network per (config, seed) pair, ``stack_size`` at a time (default: what the GPU
    holds, all on the CPU) as one PaddingNetStack; each follows its solo trajectory up to rounding.
    ``on_epoch(n)``: n network-epochs trained."""
    groups: dict[tuple[str, int], list[nets.PaddingNetConfig]] = {}
    for cfg in configs:
        groups.setdefault((cfg.net, CONV[cfg.conv_type].pad), []).append(cfg)
    for group in groups.values():
        pairs = [(cfg, seed) for cfg in group for seed in seeds]
        size = stack_size or _stack_fits(group[0], settings, device) or len(pairs)
        for i in range(0, len(pairs), size):
            yield from _train_stack(pairs[i : i + size], data, settings, device, on_epoch)


def _stack_fits(config: nets.PaddingNetConfig, settings: TrainSettings, device: torch.device) -> int | None:
    """How many networks like ``config`` one stack on a GPU may hold (None on the CPU): a step
    keeps about four copies of a batch's activations, and the warm-up's memory and the CUDA
    graph's are separate pools, so a stack takes at most a quarter of the free memory."""
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    pad = CONV[config.conv_type].pad
    floats = 3 * (nets.IMAGE_SIZE + 2 * pad) ** 2 + sum(
        c_out * size * size
        for (_, c_out, _), size in zip(nets.LAYERS, nets.layer_sizes(config.conv_type), strict=True)
    )
    return max(1, int(free / 4 // (4 * 4 * floats * settings.batch_size)))


def _adadelta(params, settings: TrainSettings, **kwargs) -> torch.optim.Adadelta:
    s = settings
    return torch.optim.Adadelta(params, lr=s.lr, rho=s.rho, eps=s.eps, weight_decay=s.weight_decay, **kwargs)


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast without its weight cache, which a captured CUDA graph must not keep."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype, cache_enabled=False)


def _losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (networks, N) of stacked logits (networks, N, 2) against labels y (N)."""
    return F.cross_entropy(logits.transpose(1, 2), y.expand(logits.shape[0], -1), reduction="none")


@torch.no_grad()
def evaluate_stack(
    stack: nets.PaddingNetStack, x: torch.Tensor, y: torch.Tensor, settings: TrainSettings
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy (float64) and correct answers of each network, left on the device."""
    loss_sum = torch.zeros(stack.size, dtype=torch.float64, device=x.device)
    correct = torch.zeros(stack.size, dtype=torch.long, device=x.device)
    for xb, yb in _batches(x, y, settings.batch_size):
        with _autocast(x.device, settings.precision):
            logits = stack(xb).float()
        loss_sum += _losses(logits, yb).sum(1)
        correct += (logits.argmax(2) == yb).sum(1)
    return loss_sum / len(y), correct


def _warm_up_and_capture(fn: Callable[[], None], device: torch.device) -> Callable[[], None]:
    """Run ``fn`` once on a side stream (the warm-up a capture needs); return its CUDA graph's replay."""
    side, main = torch.cuda.Stream(device), torch.cuda.current_stream(device)
    side.wait_stream(main)
    with torch.cuda.stream(side):
        fn()
    main.wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def _train_stack(
    pairs: list[tuple[nets.PaddingNetConfig, int]],
    data: BoxData,
    settings: TrainSettings,
    device: torch.device,
    on_epoch: Callable[[int], None],
) -> list[RoundOutcome]:
    """Train the networks of ``pairs`` as one stack. An epoch runs on the device without a host
    synchronisation: each network's best loss, weights and patience are device tensors updated in
    place; a network that stopped trains on, but nothing after its stop is kept. On a GPU epoch 1
    warms up and the rest replay it as one CUDA graph; the host looks every CUDA_CHECK_EVERY epochs."""
    t0 = time.perf_counter()
    data = _to_device(data, device, settings.channels_last)  # the convolutions follow the images' layout
    stack = nets.PaddingNetStack([nets.make_model(cfg, seed) for cfg, seed in pairs]).to(device)
    params = list(stack.parameters())
    cuda = device.type == "cuda"
    opt = _adadelta(params, settings, foreach=True, capturable=cuda)
    m, n_epochs = stack.size, settings.epochs
    counter = functools.partial(torch.zeros, dtype=torch.long, device=device)
    epoch, best_epoch, since_best, val_correct = counter(()), counter(m), counter(m), counter(m)
    active = torch.ones(m, dtype=torch.bool, device=device)
    best_loss = torch.full((m,), math.inf, dtype=torch.float64, device=device)
    history = torch.zeros(n_epochs, m, dtype=torch.float64, device=device)  # validation losses
    trained = torch.zeros(n_epochs, m, dtype=torch.bool, device=device)  # epochs before the stop
    best = [p.detach().clone() for p in params]

    def run_epoch() -> None:
        for x, y in _batches(data.train_x, data.train_y, settings.batch_size):
            opt.zero_grad(set_to_none=True)
            with _autocast(device, settings.precision):
                logits = stack(x).float()
            _losses(logits, y).mean(1).sum().backward()
            opt.step()
        loss, correct = evaluate_stack(stack, data.val_x, data.val_y, settings)
        with torch.no_grad():
            epoch.add_(1)
            row = (epoch - 1).view(1)
            history.index_copy_(0, row, loss.unsqueeze(0))
            trained.index_copy_(0, row, active.unsqueeze(0))
            improved = active & (loss < best_loss)
            for kept, p in zip(best, params, strict=True):
                kept.copy_(torch.where(improved.view(-1, *[1] * (p.dim() - 1)), p, kept))
            best_loss.copy_(torch.where(improved, loss, best_loss))
            best_epoch.copy_(torch.where(improved, epoch, best_epoch))
            since_best.copy_(torch.where(improved, 0, since_best + 1))
            val_correct.copy_(torch.where(active, correct, val_correct))
            active.logical_and_(since_best <= settings.patience)

    run, every, reported = run_epoch, CUDA_CHECK_EVERY if cuda else 1, 0
    for e in range(1, n_epochs + 1):
        if cuda and e == 1:  # epoch 1 is the warm-up of the capture; the others replay it
            run = _warm_up_and_capture(run_epoch, device)
        else:
            run()
        if e % every == 0 or e == n_epochs:
            on_epoch(int(trained[reported:e].sum()))
            reported = e
            if not bool(active.any()):
                break

    with torch.no_grad():
        for p, kept in zip(params, best, strict=True):
            p.copy_(kept)
    # each network's outcome, read back from the stack's device state
    kept = [evaluate_stack(stack, x, y, settings)[1] for x, y in data.kept_sets()]  # val, test, unshifted
    sizes = [len(data.val_y)] + [len(y) for _, y in data.kept_sets()]
    counts = torch.stack([val_correct, *kept]).cpu().tolist()
    percent = [[100.0 * c / n for c in row] for row, n in zip(counts, sizes, strict=True)]  # 4 x networks
    history, trained, best_epochs = history.cpu(), trained.cpu(), best_epoch.cpu().tolist()
    seconds, outcomes = time.perf_counter() - t0, []
    for i, (cfg, seed) in enumerate(pairs):
        losses = history[:, i][trained[:, i]].tolist()
        state = {k: v.detach().cpu().clone() for k, v in stack.state_of(i).items()}
        accs = [row[i] for row in percent]
        outcomes.append(
            RoundOutcome(cfg.conv_type, seed, *accs, len(losses), best_epochs[i], losses, seconds, state)
        )
    return outcomes
