"""Training protocol of homework Q1.1, sequential (one model at a time, as the course code)
and batched (many models in lock-step with ``torch.func``, for the GPU).

Protocol: cross-entropy, Adadelta(lr=1, rho=0.9, eps=1e-6, weight_decay=5e-5), batches of
200 in data-set order, up to 50 epochs, validation after each epoch, keep the weights with the
lowest validation loss, stop after ``patience + 1`` epochs without improvement (the course
code's off-by-one: patience 8 trains 9 such epochs), test the kept weights. The validation
accuracy reported is that of the last epoch trained, as in the course code.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, stack_module_state, vmap

from hw2cli.common.device import autocast
from hw2cli.padding.data import BoxData
from hw2cli.padding.model import PaddingNetConfig, conv_flops, forward_flops, make_model


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
    channels_last: bool = False  # the CPU path: channels-last tensors, images padded once per round


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


def train_flops(config: PaddingNetConfig, epochs: int, n_train: int, n_val: int, n_test: int) -> float:
    """FLOPs of a round: forward and backward on the training set and a forward pass on the
    validation set every epoch, then two forward passes on the test set. The backward pass
    costs two forward passes (input and weight gradients) less the first convolution's input
    gradient, which nothing needs and PyTorch does not compute."""
    f = forward_flops(config)
    train = 3 * f - conv_flops(config.conv_type)[0]
    return epochs * (n_train * train + n_val * f) + 2 * n_test * f


def _batches(n: int, size: int):
    return [(i, min(i + size, n)) for i in range(0, n, size)]


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, settings: TrainSettings, padded: bool = False
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (%) of ``model`` on ``(x, y)``, in training-size batches
    (``padded``: x was padded by the first convolution's ``pad_input``)."""
    model.eval()
    device = next(model.parameters()).device
    loss_sum, correct = 0.0, 0
    for a, b in _batches(len(y), settings.batch_size):
        with autocast(device, settings.precision):
            logits = model(x[a:b], padded=padded).float()
        loss_sum += F.cross_entropy(logits, y[a:b], reduction="sum").item()
        correct += (logits.argmax(1) == y[a:b]).sum().item()
    return loss_sum / len(y), 100.0 * correct / len(y)


IMAGES = ("train_x", "val_x", "test_x", "test_unshifted_x")  # the BoxData fields holding images


def _to_device(
    data: BoxData,
    device: torch.device,
    channels_last: bool,
    pad: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> BoxData:
    """The data sets on ``device``, images channels-last if asked and, with ``pad``, padded
    for the first convolution (the images never change: once per round, not every step)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    moved = {k: v.to(device) for k, v in vars(data).items()}
    with torch.no_grad():
        for k in IMAGES:
            moved[k] = (pad(moved[k]) if pad is not None else moved[k]).contiguous(memory_format=fmt)
    return BoxData(**moved)


def train_round(
    config: PaddingNetConfig,
    seed: int,
    data: BoxData,
    settings: TrainSettings = TrainSettings(),
    device: torch.device = torch.device("cpu"),
    on_epoch: Callable[[], None] = lambda: None,
) -> RoundOutcome:
    """Train one network (round ``seed``) alone, the way the course code does, but with the
    best weights kept in memory instead of written to disk after every improvement."""
    t0 = time.perf_counter()
    model = make_model(config, seed).to(device)
    padded = settings.channels_last  # the CPU path pads the images for the first convolution once
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    data = _to_device(data, device, settings.channels_last, model.convs[0].pad_input if padded else None)
    opt = torch.optim.Adadelta(
        model.parameters(),
        lr=settings.lr,
        rho=settings.rho,
        eps=settings.eps,
        weight_decay=settings.weight_decay,
    )
    best_loss, best_epoch, since_best = math.inf, 0, 0
    best_state = copy.deepcopy(model.state_dict())
    val_losses: list[float] = []
    val_acc = 0.0
    for epoch in range(1, settings.epochs + 1):
        model.train()
        for a, b in _batches(len(data.train_y), settings.batch_size):
            with autocast(device, settings.precision):
                loss = F.cross_entropy(model(data.train_x[a:b], padded=padded).float(), data.train_y[a:b])
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
    _, val_acc_kept = evaluate(model, data.val_x, data.val_y, settings, padded)
    _, test_acc = evaluate(model, data.test_x, data.test_y, settings, padded)
    _, test_u_acc = evaluate(model, data.test_unshifted_x, data.test_unshifted_y, settings, padded)
    state = {k: v.detach().cpu().contiguous() for k, v in best_state.items()}
    return RoundOutcome(
        config.conv_type,
        seed,
        val_acc,
        val_acc_kept,
        test_acc,
        test_u_acc,
        len(val_losses),
        best_epoch,
        val_losses,
        time.perf_counter() - t0,
        state,
    )


def train_rounds_batched(
    config: PaddingNetConfig,
    seeds: list[int],
    data: BoxData,
    settings: TrainSettings = TrainSettings(),
    device: torch.device = torch.device("cpu"),
    on_epoch: Callable[[int], None] = lambda n_active: None,
) -> list[RoundOutcome]:
    """Train one network per seed together: their parameters are stacked, gradients come
    from ``vmap(grad(loss))`` and one Adadelta updates the stack. A model that has stopped
    early keeps its parameters and optimiser state (its updates are masked), so every model
    follows the trajectory it would follow alone, up to floating-point rounding.
    ``on_epoch`` gets the number of models trained in the epoch just finished."""
    # Longer than 60 lines on purpose: the closures below share the stacked parameters and the
    # masks, and the epoch loop reads as one piece beside train_round, which it must match.
    t0 = time.perf_counter()
    data = _to_device(data, device, False)
    config = replace(config, padding_impl="portable")
    models = [make_model(config, s).to(device) for s in seeds]
    params, buffers = stack_module_state(models)
    params = {k: v.detach() for k, v in params.items()}
    base = copy.deepcopy(models[0]).to("meta")
    m = len(seeds)

    def logits_of(p, b, x):
        with autocast(device, settings.precision):
            return functional_call(base, (p, b), (x,)).float()

    def loss_of(p, b, x, y):
        return F.cross_entropy(logits_of(p, b, x), y)

    grads_of = vmap(grad(loss_of), in_dims=(0, 0, None, None))
    batched_logits = vmap(logits_of, in_dims=(0, 0, None))

    def evaluate_all(p, x, y):
        loss_sum = torch.zeros(m, device=device)
        correct = torch.zeros(m, device=device)
        with torch.no_grad():
            for a, b in _batches(len(y), settings.batch_size):
                logits = batched_logits(p, buffers, x[a:b])  # (m, batch, 2)
                loss_sum += F.cross_entropy(
                    logits.transpose(1, 2), y[a:b].expand(m, -1), reduction="none"
                ).sum(1)
                correct += (logits.argmax(2) == y[a:b]).sum(1)
        return loss_sum / len(y), 100.0 * correct / len(y)

    square_avg = {k: torch.zeros_like(v) for k, v in params.items()}
    acc_delta = {k: torch.zeros_like(v) for k, v in params.items()}
    best = {k: v.clone() for k, v in params.items()}
    active = torch.ones(m, dtype=torch.bool, device=device)
    best_loss = torch.full((m,), math.inf, device=device)
    best_epoch = torch.zeros(m, dtype=torch.long, device=device)
    since_best = torch.zeros(m, dtype=torch.long, device=device)
    val_acc = torch.zeros(m, device=device)
    history: list[torch.Tensor] = []
    actives: list[torch.Tensor] = []
    rho, eps, lr, wd = settings.rho, settings.eps, settings.lr, settings.weight_decay

    def masked(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
        return torch.where(active.view(-1, *[1] * (old.dim() - 1)), new, old)

    for epoch in range(1, settings.epochs + 1):
        if not bool(active.any()):
            break
        for a, b in _batches(len(data.train_y), settings.batch_size):
            grads = grads_of(params, buffers, data.train_x[a:b], data.train_y[a:b])
            for k, p in params.items():  # torch.optim.Adadelta's update, operation by operation
                g = grads[k].add(p, alpha=wd) if wd else grads[k]
                sq = square_avg[k].mul(rho).addcmul_(g, g, value=1 - rho)
                std = sq.add(eps).sqrt_()
                delta = acc_delta[k].add(eps).sqrt_().div_(std).mul_(g)
                acc = acc_delta[k].mul(rho).addcmul_(delta, delta, value=1 - rho)
                square_avg[k] = masked(sq, square_avg[k])
                acc_delta[k] = masked(acc, acc_delta[k])
                params[k] = masked(p.add(delta, alpha=-lr), p)
        loss, acc_now = evaluate_all(params, data.val_x, data.val_y)
        history.append(loss)
        actives.append(active.clone())
        improved = active & (loss < best_loss)
        for k in params:
            best[k] = torch.where(improved.view(-1, *[1] * (params[k].dim() - 1)), params[k], best[k])
        best_loss = torch.where(improved, loss, best_loss)
        best_epoch = torch.where(improved, epoch, best_epoch)
        since_best = torch.where(improved, 0, torch.where(active, since_best + 1, since_best))
        val_acc = torch.where(active, acc_now, val_acc)
        on_epoch(int(active.sum()))
        active = active & (since_best <= settings.patience)

    _, val_kept = evaluate_all(best, data.val_x, data.val_y)
    _, test = evaluate_all(best, data.test_x, data.test_y)
    _, test_u = evaluate_all(best, data.test_unshifted_x, data.test_unshifted_y)
    seconds = time.perf_counter() - t0
    outcomes = []
    for i, seed in enumerate(seeds):
        losses = [float(h[i]) for h, act in zip(history, actives, strict=False) if act[i]]
        state = {k: v[i].detach().cpu().clone() for k, v in best.items()}
        outcomes.append(
            RoundOutcome(
                config.conv_type,
                seed,
                float(val_acc[i]),
                float(val_kept[i]),
                float(test[i]),
                float(test_u[i]),
                len(losses),
                int(best_epoch[i]),
                losses,
                seconds,
                state,
            )
        )
    return outcomes
