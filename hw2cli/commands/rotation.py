"""`hw2 rotate-eval` (homework Q1.2)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hw2cli.commands._options import JsonOut, PlotOut, Quiet, Threads, flag_notes, takes
from hw2cli.commands._runner import run_command
from hw2cli.commands._shared import user_errors
from hw2cli.common.errors import Hw2Error
from hw2cli.common.io import is_stdout
from hw2cli.rotation.options import RotationOptions

PREVIEW_HELP = "Write a grid of rotated test images (PNG) here."
PreviewOut = Annotated[
    Path | None, typer.Option("--preview", metavar="PNG", help=PREVIEW_HELP, show_default=False)
]
PREVIEW_IMAGES = 6  # rows of the --preview grid


def _plot(result, path: Path) -> None:
    from hw2cli.rotation.plot import save_accuracy_plot

    if result.models:
        save_accuracy_plot(result, path)


def _preview(result, path: Path) -> None:
    from hw2cli.rotation.plot import save_preview_grid

    if result.preview is not None:
        save_preview_grid(result, path)


@user_errors
@takes(RotationOptions)
def rotate_eval(
    opts: RotationOptions,
    json_path: JsonOut = None,
    plot: PlotOut = None,
    preview: PreviewOut = None,
    quiet: Quiet = False,
    threads: Threads = 0,
) -> None:
    """Accuracy of a small CNN on rotated test images (Q1.2, Figures 1 and 2): trained plain, with random
    rotations, as a rotation-equivariant p4 CNN, or with test-time augmentation."""
    from hw2cli.common.inputs import stat_input
    from hw2cli.rotation import render
    from hw2cli.rotation.experiment import run_rotation_experiment

    if opts.imagefolder is not None:  # the input before the outputs
        stat_input(opts.imagefolder, "data set folder")
    _outside_the_data_set(opts, {"--json": json_path, "--plot": plot, "--preview": preview})
    run_command(
        lambda reporter: run_rotation_experiment(
            opts, reporter, preview_images=PREVIEW_IMAGES if preview is not None else 0
        ),
        render,
        json_path=json_path,
        outputs={"plot": (plot, _plot), "preview": (preview, _preview)},
        inputs={"--load-models": _path(opts.load_models), "--data-dir": _path(opts.data_dir)},
        writes={"--save-models": _path(opts.save_models)},
        quiet=quiet,
        threads=threads,
        progress=flag_notes(RotationOptions),
    )


def _path(text: str | None) -> Path | None:
    return None if text is None else Path(text)


def _outside_the_data_set(opts: RotationOptions, outputs: dict[str, Path | None]) -> None:
    """Refuse, before any work, an output inside an ``imagefolder:DIR`` data set (a new file
    there, an image above all, would change the data set; an existing one is an input)."""
    for flag, path in outputs.items():
        if path is not None and not is_stdout(path) and opts.in_data_set(path):
            raise Hw2Error(
                f"{flag} {path} lies in the data set {opts.dataset} that rotate-eval reads; "
                "write the output somewhere else"
            )
