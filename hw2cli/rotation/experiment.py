"""The rotate-eval experiment (homework Q1.2, Figures 1 and 2) as one library call: the
notebook's CNN (or its p4 version) trained on upright or randomly turned images, or a trained
model averaged over turned copies of each test image (TTA), then its test accuracy with the
whole test set rotated by each angle (hw2cli.rotation.options.MODES)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hw2cli.common.device import autocast, check_precision, keep_freed_memory, resolve_device
from hw2cli.common.estimate import Cost, announce
from hw2cli.common.progress import Reporter
from hw2cli.common.seeding import seeded
from hw2cli.rotation import model as cnn
from hw2cli.rotation import saved as saved_models
from hw2cli.rotation.data import ImageData, load_dataset, to_float
from hw2cli.rotation.options import TTA_MODES, WEIGHTS, RotationOptions
from hw2cli.rotation.rotate import rotate_batch, rotate_each

EVAL_BATCH = 256  # small batches kept the CPU caches warm: faster than 1,000 on the test machine
TIMED_STEPS = 2  # training steps timed per model for the wall-time estimate; the fastest counts
TIMED_BATCH = 32  # test images per batch timed for the estimate (two batches per mode)
BASIS = f"{TIMED_STEPS} timed training steps per model and 2 timed test batches per mode, scaled to the run"
SHORTER = "lower {epochs}, give fewer {angles} or {mode}, or try {dataset} digits"


@dataclass
class ModelResult:
    """Test accuracy (fraction correct) of one model at every angle, and how it was trained."""

    name: str  # one of MODES
    accuracy: list[float]
    train_loss: list[float]  # mean cross-entropy per epoch
    epochs_trained: int
    train_seconds: float  # of its weights (a TTA mode: of the model it averages), 0 when loaded
    loaded_from: str | None = None
    parameters: int = 0
    eval_seconds: float = 0.0  # accuracy at every angle: rotating the test set and inference

    @property
    def weights(self) -> str:
        """The trained model this mode evaluates (``augmented-tta`` -> ``augmented``)."""
        return WEIGHTS[self.name]

    @property
    def mean_accuracy(self) -> float:
        return float(np.mean(self.accuracy))

    def ms_per_image(self, n_test: int) -> float:
        """Evaluation time per test image and angle, in milliseconds."""
        return 1000 * self.eval_seconds / max(1, n_test * len(self.accuracy))

    def worst(self, angles: list[float]) -> tuple[float, float]:
        """(angle, accuracy) of the lowest accuracy (the first such angle on ties)."""
        i = int(np.argmin(self.accuracy))
        return angles[i], self.accuracy[i]


@dataclass
class RotationResult:
    """Everything rotate-eval measured; ``models`` holds only the models that finished."""

    dataset: str
    classes: list[str]
    n_train: int
    n_test: int
    angles: list[float]
    models: list[ModelResult]
    model_config: cnn.RotationCNNConfig
    p4_config: cnn.P4CNNConfig
    parameters: dict[str, int]  # {"cnn": ..., "p4": ...}
    tta_angles: list[float]
    epochs: int
    batch_size: int
    lr: float
    seed: int
    device: str
    precision: str
    eval_seconds: float = 0.0
    saved_models: str | None = None
    preview: np.ndarray | None = field(default=None, repr=False)  # (images, angles, H, W, 3) in [0, 1]
    preview_classes: list[str] = field(default_factory=list)  # the class of each preview row
    interrupted: bool = False


def run_rotation_experiment(
    opts: RotationOptions, reporter: Reporter | None = None, *, preview_images: int = 0
) -> RotationResult:
    """Train (or load) the weights of each of ``opts.modes`` once and measure each mode's accuracy
    at every angle; keep ``preview_images`` rotated test images for the figure. Bad arguments
    raise Hw2Error before any long work; Ctrl-C returns the finished models with
    ``interrupted=True``. The ``save_models`` folder is locked while this run may write it."""
    reporter = reporter or Reporter()
    if preview_images < 0:
        raise ValueError(f"preview_images must be at least 0, got {preview_images}")
    dev = resolve_device(opts.device)
    check_precision(opts.precision, dev)
    weights = list(dict.fromkeys(WEIGHTS[n] for n in opts.modes))  # each trained model once
    load_from, save_to = (None if p is None else Path(p) for p in (opts.load_models, opts.save_models))
    saved = saved_models.read_models(load_from, weights) if load_from is not None else None
    if saved is not None:
        saved_models.check_dataset(saved[0], load_from, opts.dataset)
    if save_to is not None:
        saved_models.check_folder(save_to, opts.force)

    data = load_dataset(opts.dataset, opts.data_dir)
    if saved is not None:
        saved_models.check_dataset(saved[0], load_from, opts.dataset, data.classes)
    if dev.type == "cpu":
        keep_freed_memory()  # 1.27x training speed here (benchmarks/bench_freed_memory.py)
    shape = dict(n_classes=len(data.classes), image_size=data.train_images.shape[-1])
    config, p4_config = cnn.RotationCNNConfig(**shape), cnn.P4CNNConfig(**shape)
    configs = {w: p4_config if w.startswith("p4") else config for w in weights}
    run = dict(
        epochs=opts.epochs, batch_size=opts.batch_size, lr=opts.lr, seed=opts.seed, precision=opts.precision
    )
    sizes = dict(n_train=len(data.train_labels), n_test=len(data.test_labels), angles=opts.angle_list)
    params = {"cnn": _count(config), "p4": _count(p4_config)}
    arch = dict(model_config=config, p4_config=p4_config, parameters=params, tta_angles=opts.tta_list)
    result = RotationResult(data.name, data.classes, **sizes, models=[], **arch, device=str(dev), **run)
    # weights name -> (model, its entry): loaded ones first, the others once trained
    trained = {w: _loaded(saved[1], w, config, dev) for w in weights} if saved else {}
    folder = saved_models.ModelsWriter(save_to) if save_to is not None else None
    try:
        what = f"rotate-eval ({', '.join(opts.modes)}; {opts.epochs} epochs, {len(opts.angle_list)} angles)"
        to_train = [w for w in weights if w not in trained]
        announce(
            Cost(estimate_seconds(data, opts, to_train, configs, dev), basis=BASIS), what, SHORTER, reporter
        )
        for name in opts.modes:
            w = WEIGHTS[name]
            if w not in trained:
                trained[w] = model, entry = _trained(w, configs[w], data, run, dev, reporter)
                if folder is not None:
                    meta = dict(dataset=data.name, classes=data.classes, epochs=opts.epochs, seed=opts.seed)
                    folder.save(w, model, config, p4_config, train_loss=entry.train_loss, **meta)
                    result.saved_models = str(save_to)
            # evaluated as soon as it exists, so that Ctrl-C keeps the finished ones
            result.models.append(_evaluated(name, *trained[w], data, opts, dev, reporter))
            result.eval_seconds += result.models[-1].eval_seconds
        if preview_images:
            result.preview = preview_grid(data, opts.angle_list, preview_images, dev)
            result.preview_classes = [data.classes[int(y)] for y in data.test_labels[:preview_images]]
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        if folder is not None:
            folder.close()
    return result


def _trained(w: str, config: cnn.Config, data: ImageData, run: dict, dev, reporter) -> tuple:
    """Model ``w`` trained (on randomly turned images for the augmented ones) and its entry."""
    start = time.perf_counter()
    augment = w.endswith("augmented")
    model, losses = train_model(data, config, augment=augment, device=dev, reporter=reporter, key=w, **run)
    return model, ModelResult(w, [], losses, run["epochs"], time.perf_counter() - start)


def _loaded(checkpoint, w: str, config: cnn.RotationCNNConfig, dev: torch.device):
    """The saved model ``w`` on ``dev`` and its entry (no accuracies yet)."""
    model, info = saved_models.load_model(checkpoint, w, config)
    path = str(checkpoint.path(info.file))
    return model.to(dev), ModelResult(w, [], info.train_loss, info.epochs, 0.0, path)


def _evaluated(name, model, source: ModelResult, data: ImageData, opts, dev, reporter) -> ModelResult:
    """Mode ``name``'s entry: ``model`` (averaged over the TTA angles for a TTA mode) at every angle."""
    start = time.perf_counter()
    evaluated = cnn.RotationTTA(model, tuple(opts.tta_list)) if name in TTA_MODES else model
    test = (data.test_images, data.test_labels, opts.angle_list)
    accuracy = evaluate({name: evaluated}, *test, device=dev, precision=opts.precision, reporter=reporter)
    entry = replace(source, name=name, accuracy=accuracy[name], parameters=cnn.count_parameters(model))
    entry.eval_seconds = time.perf_counter() - start
    return entry


class _StepClock(Reporter):
    """The times of a loop's progress updates: one per training step or evaluated batch."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.times = device, []

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def start(self, key: str, description: str, total: float | None = None, **fields) -> None:
        self.times = [self._now()]

    def update(self, key: str, advance: float = 0, **fields) -> None:
        if advance:
            self.times.append(self._now())

    def fastest(self) -> float:
        """The shortest step: the first ones pay one-off set-up costs, load makes some slower."""
        return min(b - a for a, b in zip(self.times, self.times[1:], strict=False))


def estimate_seconds(
    data: ImageData, opts: RotationOptions, to_train: list[str], configs: dict, device: torch.device
) -> float:
    """Wall time of training the weights ``to_train`` and evaluating every mode of ``opts``: the
    fastest of TIMED_STEPS training steps and of two test batches, scaled (throwaway models:
    the run's random numbers are untouched)."""
    batch, clock, total = opts.batch_size, _StepClock(device), 0.0
    train, test = slice(TIMED_STEPS * batch), slice(2 * TIMED_BATCH)
    sample = replace(data, train_images=data.train_images[train], train_labels=data.train_labels[train])
    sample = replace(sample, test_images=data.test_images[test], test_labels=data.test_labels[test])
    run = dict(epochs=1, batch_size=batch, lr=opts.lr, seed=0, device=device, precision=opts.precision)
    models = {}
    for w in to_train:
        models[w], _ = train_model(sample, configs[w], augment=w.endswith("augmented"), reporter=clock, **run)
        total += clock.fastest() * math.ceil(len(data.train_labels) / batch) * opts.epochs
    timed = dict(device=device, precision=opts.precision, batch_size=TIMED_BATCH, reporter=clock)
    for name in opts.modes:
        w = WEIGHTS[name]
        if w not in models:
            with seeded(0):
                models[w] = cnn.build_model(configs[w]).to(device).eval()
        model = cnn.RotationTTA(models[w], tuple(opts.tta_list)) if name in TTA_MODES else models[w]
        evaluate({name: model}, sample.test_images, sample.test_labels, [opts.angle_list[0]], **timed)
        per_image = clock.fastest() / min(TIMED_BATCH, len(sample.test_labels))
        total += per_image * len(data.test_labels) * len(opts.angle_list)
    return total


def _count(config: cnn.Config) -> int:
    """Parameters of the model, built on the meta device (no memory, no random numbers drawn)."""
    with torch.device("meta"):
        return cnn.count_parameters(cnn.build_model(config))


def train_model(
    data: ImageData,
    config: cnn.Config,
    *,
    augment: bool,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device,
    precision: str = "fp32",
    reporter: Reporter | None = None,
    key: str = "train",
) -> tuple[cnn.Model, list[float]]:
    """Adam on shuffled mini-batches; with ``augment`` each image turned by its own uniform angle
    in [0, 360). Returns the model and each epoch's mean loss; the seed fixes weights and order."""
    reporter = reporter or Reporter()
    with seeded(seed):
        model = cnn.build_model(config).to(device)
    shuffle = torch.Generator().manual_seed(seed)
    turns = torch.Generator().manual_seed(seed + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    images, labels = data.train_images.to(device), data.train_labels.to(device)
    n = len(labels)
    reporter.start(key, f"train {key}", total=epochs * math.ceil(n / batch_size))
    losses = []
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=shuffle).to(device)
        total = torch.zeros((), device=device)
        for idx in order.split(batch_size):
            x = to_float(images[idx])
            if augment:
                x = rotate_each(x, torch.rand(len(idx), generator=turns) * 360)
            with autocast(device, precision):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(idx)
            reporter.update(key, 1)
        losses.append(total.item() / n)
        reporter.update(
            key, 0, description=f"train {key} (epoch {epoch + 1}/{epochs}, loss {losses[-1]:.3f})"
        )
    reporter.finish(key)
    model.eval()
    return model, losses


@torch.no_grad()
def evaluate(
    models: dict[str, torch.nn.Module],
    images: torch.Tensor,
    labels: torch.Tensor,
    angles: list[float],
    *,
    device: torch.device,
    precision: str = "fp32",
    batch_size: int = EVAL_BATCH,
    reporter: Reporter | None = None,
) -> dict[str, list[float]]:
    """Accuracy of each model on the test set rotated by each angle (a batch moves to the device
    once and is rotated there once per angle, for all models)."""
    reporter = reporter or Reporter()
    correct = {name: torch.zeros(len(angles), dtype=torch.int64, device=device) for name in models}
    reporter.start(
        "eval", "evaluate rotated test set", total=math.ceil(len(labels) / batch_size) * len(angles)
    )
    for xb, yb in zip(images.split(batch_size), labels.split(batch_size), strict=True):
        x, y = to_float(xb.to(device)), yb.to(device)
        for j, angle in enumerate(angles):
            rotated = rotate_batch(x, angle)
            with autocast(device, precision):
                for name, model in models.items():
                    correct[name][j] += (model(rotated).argmax(dim=1) == y).sum()
            reporter.update("eval", 1)
    reporter.finish("eval")
    return {name: (c.double() / len(labels)).tolist() for name, c in correct.items()}


def preview_grid(data: ImageData, angles: list[float], count: int, device: torch.device) -> np.ndarray:
    """The first ``count`` test images rotated by every angle, as (count, angles, H, W, 3) floats."""
    x = to_float(data.test_images[:count].to(device))
    rows = torch.stack([rotate_batch(x, a) for a in angles], dim=1)  # (count, angles, 3, H, W)
    return rows.permute(0, 1, 3, 4, 2).cpu().numpy()
