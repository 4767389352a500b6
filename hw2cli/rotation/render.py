"""Rich table and JSON of a rotate-eval result, and the result read back from its JSON."""

from __future__ import annotations

from dataclasses import fields

from rich.console import Console
from rich.table import Table

from hw2cli.rotation.experiment import RotationResult
from hw2cli.rotation.options import TTA_MODES

_MODEL_KEYS = ("train_loss", "epochs_trained", "train_seconds", "loaded_from", "weights", "parameters")


def _angle(a: float) -> str:
    return f"{a:g}°"


def render(result: RotationResult, console: Console | None = None) -> None:
    """One row per angle, one column per model (accuracy in %), then the mean and the worst angle."""
    console = console or Console()
    title = (
        f"Test accuracy under rotation: {result.dataset} "
        f"({result.n_train:,} train / {result.n_test:,} test images, {len(result.classes)} classes)"
    )
    table = Table("angle", title=title)
    table.columns[0].justify = "right"
    models, last = result.models, len(result.angles) - 1
    for m in models:
        how = f"loaded, {m.epochs_trained} epochs" if m.loaded_from else f"{m.epochs_trained} epochs"
        how += f", {len(result.tta_angles)} turns" if m.name in TTA_MODES else ""
        table.add_column(f"{m.name}\n({how})", justify="right")
    for i, angle in enumerate(result.angles):
        table.add_row(_angle(angle), *(f"{100 * m.accuracy[i]:.2f}%" for m in models), end_section=i == last)
    table.add_row("mean", *(f"{100 * m.mean_accuracy:.2f}%" for m in models))
    worst = [m.worst(result.angles) for m in models]
    table.add_row("worst", *(f"{100 * acc:.2f}% at {_angle(angle)}" for angle, acc in worst))
    console.print(table)
    trained = [
        f", training {m.name} {m.train_seconds:.1f} s"
        for m in models
        if not m.loaded_from and m.weights == m.name
    ]
    saved = [f"; models saved in {result.saved_models}"] if result.saved_models else []
    loaded = [f"; {m.name} loaded from {m.loaded_from}" for m in models if m.loaded_from]
    run = f"device {result.device}, {result.precision}, seed {result.seed}, evaluation {result.eval_seconds:.1f} s"
    console.print(run + "".join(trained + saved + loaded))
    costs = ", ".join(f"{m.name} {m.ms_per_image(result.n_test):.3f} ms" for m in models)
    line = f"parameters: CNN {result.parameters['cnn']:,}, p4 CNN {result.parameters['p4']:,}; "
    line += f"evaluation per image and angle: {costs}"
    if any(m.name in TTA_MODES for m in models):
        line += f"; TTA averages over {', '.join(_angle(a) for a in result.tta_angles)}"
    console.print(line)
    if result.interrupted:
        console.print("[yellow]interrupted: only the models that finished are shown[/yellow]")


def to_json(result: RotationResult) -> dict:
    """The result as plain JSON data (accuracies are fractions in [0, 1]; no preview images)."""
    models = {}
    for m in result.models:
        angle, accuracy = m.worst(result.angles)
        models[m.name] = {"accuracy": m.accuracy, "mean_accuracy": m.mean_accuracy, "worst_angle": angle}
        models[m.name] |= {"worst_accuracy": accuracy, **{k: getattr(m, k) for k in _MODEL_KEYS}}
        models[m.name] |= {"eval_seconds": m.eval_seconds, "ms_per_image": m.ms_per_image(result.n_test)}
    data = {f.name: getattr(result, f.name) for f in fields(result) if not f.name.startswith("preview")}
    configs = {"model_config": result.model_config.to_dict(), "p4_config": result.p4_config.to_dict()}
    return {"command": "rotate-eval", **data, "models": models, **configs}


def from_json(data: dict) -> RotationResult:
    """The result that :func:`to_json` wrote, checked (a ResultError names the field): types,
    model names, one accuracy in 0-1 per angle; no ``preview``."""
    from hw2cli.common.schema import ResultError, build, one_of, require, within
    from hw2cli.rotation.experiment import WEIGHTS, ModelResult

    models = require(data, "models")
    if not isinstance(models, dict):
        raise ResultError("models", "is not an object")
    old = "parameters" not in data  # written before the p4 and TTA modes: no costs recorded
    result = build(RotationResult, data, models=[], preview=None, **({"parameters": {}} if old else {}))
    for name, entry in models.items():
        at = f"models.{name}"
        one_of(name, WEIGHTS, at)
        for key in () if old else ("train_seconds", "ms_per_image"):
            require(entry, key, at)
        model = build(ModelResult, entry, at=at, name=name)
        if len(model.accuracy) != len(result.angles):
            raise ResultError(
                f"{at}.accuracy", f"has {len(model.accuracy)} values for {len(result.angles)} angles"
            )
        for i, acc in enumerate(model.accuracy):
            within(acc, 0, 1, f"{at}.accuracy.{i}")
        result.models.append(model)
    return result
