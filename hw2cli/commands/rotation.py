"""`hw2 rotate-eval` (homework Q1.2)."""

from __future__ import annotations

from pathlib import Path

import typer

from hw2cli.commands._choices import Device, Precision
from hw2cli.commands._shared import (
    check_outputs,
    threads_option,
    use_threads,
    user_errors,
    write_json_then_exit,
)


@user_errors
def rotate_eval(
    dataset: str = typer.Option(
        "cifar10",
        "--dataset",
        help=(
            "cifar10, digits (offline, scikit-learn) or imagefolder:PATH (PATH/train and PATH/test, one "
            "sub-folder per class)."
        ),
    ),
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        help="Cache folder for CIFAR-10 (default: $HW2_CACHE_DIR, else $XDG_CACHE_HOME/hw2, else ~/.cache/hw2).",
    ),
    epochs: int = typer.Option(10, "--epochs", min=1, max=10_000, help="Training epochs per model."),
    angles: str = typer.Option(
        "0:360:30",
        "--angles",
        help="Test angles in degrees: START:STOP:STEP (STOP included) and/or a comma list.",
    ),
    mode: str = typer.Option(
        "both",
        "--mode",
        metavar="<plain,augmented,p4,p4-augmented,tta|both>",
        help=(
            "Comma list of plain, augmented (random rotations in training), p4 (rotation-equivariant "
            "CNN), p4-augmented, tta (plain model, softmax averaged over turned copies); both = "
            "plain,augmented."
        ),
    ),
    tta_angles: str = typer.Option(
        "0,90,180,270",
        "--tta-angles",
        help="Angles (degrees) the tta mode averages over, in the --angles form.",
    ),
    batch_size: int = typer.Option(64, "--batch-size", min=1, max=65536, help="Training mini-batch size."),
    lr: float = typer.Option(1e-3, "--lr", min=0.0, max=10.0, help="Adam learning rate."),
    seed: int = typer.Option(
        0, "--seed", min=0, max=2**32 - 1, help="Seed for weights, batch order and random angles."
    ),
    device: Device = typer.Option(Device.auto, "--device", help="Where to train and evaluate."),
    precision: Precision = typer.Option(Precision.fp32, "--precision", help="Autocast precision."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the results as JSON here."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Write the accuracy-against-angle plot (PNG) here."
    ),
    preview: Path | None = typer.Option(
        None, "--preview", help="Write a grid of rotated test images (PNG) here."
    ),
    save_models: Path | None = typer.Option(
        None, "--save-models", help="Save the trained models (safetensors + config.json) in this folder."
    ),
    load_models: Path | None = typer.Option(
        None, "--load-models", help="Load models saved with --save-models instead of training."
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace earlier models in --save-models (they go once a new model is saved)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    threads: int = threads_option(),
) -> None:
    """Accuracy of a small CNN on rotated test images (Q1.2, Figures 1 and 2): trained plain, with random
    rotations, as a rotation-equivariant p4 CNN, or with test-time augmentation."""
    # Long only by its option declarations (each with help and range); the body is a few calls.
    from hw2cli.common.progress import RichReporter

    check_outputs(
        json=json_path,
        plot=plot,
        preview=preview,
        inputs={"--load-models": load_models, "--data-dir": data_dir},
        writes={"--save-models": save_models},
    )
    from hw2cli.rotation import plot as rotation_plot
    from hw2cli.rotation import render as rotation_render
    from hw2cli.rotation.experiment import run_rotation_experiment

    use_threads(threads)
    with RichReporter(quiet) as reporter:
        result = run_rotation_experiment(
            dataset,
            data_dir=data_dir,
            epochs=epochs,
            angles=angles,
            mode=mode,
            tta_angles=tta_angles,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            device=device.value,
            precision=precision.value,
            save_models=save_models,
            load_models=load_models,
            force=force,
            preview_images=6 if preview is not None else 0,
            reporter=reporter,
        )
    rotation_render.render(result)
    write_json_then_exit(
        json_path,
        lambda: rotation_render.to_json(result),
        result.interrupted,
        outputs={
            "plot": (plot if result.models else None, lambda p: rotation_plot.save_accuracy_plot(result, p)),
            "preview": (
                preview if result.preview is not None else None,
                lambda p: rotation_plot.save_preview_grid(result, p),
            ),
        },
    )
