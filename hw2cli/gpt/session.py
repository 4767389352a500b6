"""The run a training process works on: its run directory and, with ``resume``, the run read
back (hw2cli.gpt.checkpoint). :func:`session` refuses an earlier run's folder unless ``force``,
holds the writer lock and finishes or discards a cut checkpoint; nothing is written into the
folder before the first checkpoint, so a run that fails or diverges before it leaves an earlier
run (``force``) exactly as it was.

Resuming (:func:`resume_options`): the recorded options define the run; options given again
must equal them (``RESUME_MAY_CHANGE`` lists what may differ). An extended run keeps the
learning-rate schedule of its recorded length (``Session.recorded``).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Collection, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as tdist

from hw2cli.common import rundir, schema
from hw2cli.common.device import free_memory
from hw2cli.common.errors import Hw2Warning
from hw2cli.common.inputs import size_text
from hw2cli.common.io import resolve_path
from hw2cli.common.options import OptionError
from hw2cli.gpt import checkpoint as ckpt
from hw2cli.gpt.data import CharTokenizer
from hw2cli.gpt.dist import Dist
from hw2cli.gpt.model import GPT
from hw2cli.gpt.options import NOT_RECORDED, PRESET_NAMES, RESUME_MAY_CHANGE, TrainOptions
from hw2cli.gpt.pretrained import HUB_MODELS


@dataclass
class Session:
    """The options (the recorded ones when resuming), where the run is written (``folder``;
    None in memory), the run read back and the options it started with."""

    opts: TrainOptions
    folder: Path | None
    run: ckpt.Run | None = None
    recorded: TrainOptions | None = None


@contextmanager
def session(opts: TrainOptions, dist: Dist, given: Collection[str]) -> Iterator[Session]:
    """Rank 0 prepares the folder and takes its lock; then every rank reads it back when resuming."""
    folder = Path(opts.resume) if opts.resume is not None else None if opts.out is None else Path(opts.out)
    with ExitStack() as stack:
        if folder is not None and dist.rank == 0:
            if opts.resume is None:  # no leftovers: nothing is written before the first checkpoint
                what, hint = "--out run directory", "--resume"  # rundir's words, shown as they are
                rundir.prepare(
                    folder,
                    what=what,
                    manifest=ckpt.MANIFEST,
                    leftovers=(),
                    force=opts.force,
                    resume_hint=hint,
                )
            else:
                ckpt.check_folder(folder)
            stack.enter_context(rundir.lock(folder))
            dropped = rundir.recover(folder, ckpt.MANIFEST, ckpt.State, ckpt.ALL_RUN_FILES)
            if dropped:
                message = f"{folder}: deleted the files of a half-written checkpoint ({', '.join(dropped)})"
                warnings.warn(message, Hw2Warning, stacklevel=3)
        if dist.world_size > 1:
            tdist.barrier()
        if opts.resume is None:
            yield Session(opts, folder)
            return
        run = ckpt.open_run(folder)
        resumed, recorded = resume_options(run, opts, given)
        yield Session(resumed, folder, run, recorded)


def given_fields(opts: TrainOptions) -> set[str]:
    """The options a Python caller set: those that differ from their defaults."""
    fields = dataclasses.fields(opts)
    return {
        f.name for f in fields if f.default is not dataclasses.MISSING and getattr(opts, f.name) != f.default
    }


def _same_file(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a == b
    try:
        return os.path.samefile(a, b)
    except OSError:
        return resolve_path(a) == resolve_path(b)


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def resume_options(
    run: ckpt.Run, opts: TrainOptions, given: Collection[str]
) -> tuple[TrainOptions, TrainOptions]:
    """The options to continue ``run`` with, and those it recorded when it started.

    The recorded options stand but for RESUME_MAY_CHANGE; an option in ``given`` that differs
    from its recorded value is refused, each named with it. Without ``max_steps``/``epochs`` the
    target the run was last asked to reach (state.json) stands."""
    saved = dict(run.train_options)
    if "abs_emb" in saved:  # runs written before pos_emb
        saved.setdefault("pos_emb", "learned" if saved.pop("abs_emb") else "rope")
    if saved.get("init_from") is not None and saved.get("model_type") not in PRESET_NAMES:
        saved["model_type"] = None  # runs that recorded the pretrained model's name here
    known = {f.name for f in dataclasses.fields(TrainOptions)}
    saved = {k: v for k, v in saved.items() if k in known}
    recorded = schema.construct(run.path("config.json"), "train", lambda: TrainOptions(**saved), ckpt.FIX)
    differ = []
    for name in sorted(set(given) & known - set(RESUME_MAY_CHANGE) - set(NOT_RECORDED)):
        mine, theirs = getattr(opts, name), getattr(recorded, name)
        if name == "out":
            if not _same_file(mine, str(run.folder)):
                differ.append(f"{{out}} {mine} (the run continues in {run.folder})")
        elif name == "txt_file":
            if not _same_file(mine, theirs):
                differ.append(f"{{txt_file}} {mine} (recorded {theirs or 'the default corpus'})")
        elif mine != theirs:
            differ.append(f"{{{name}}} {_show(mine)} (recorded {_show(theirs)})")
    if differ:
        raise OptionError(
            f"{run.folder} was trained with other options: {', '.join(differ)}; drop them to continue "
            "the run as recorded, or start a new run in another {out} folder"
        )
    resumed = dataclasses.replace(recorded, out=str(run.folder), device=opts.device, compile=opts.compile)
    if "tensorboard" in given:
        resumed.tensorboard = opts.tensorboard
    if run.state is not None and (run.state.max_steps or run.state.epochs):
        resumed.max_steps, resumed.epochs = run.state.max_steps, run.state.epochs
    if opts.max_steps is not None or opts.epochs is not None:
        resumed.max_steps, resumed.epochs = opts.max_steps, opts.epochs
    return resumed, recorded


def check_text(opts: TrainOptions, text: str, text_path: Path, resumed: ckpt.Run | None) -> TrainOptions:
    """Refuse a resumed character-level run's text whose characters differ from its vocabulary;
    return ``opts`` with ``txt_file`` and a pretrained folder absolute (resuming works from any
    folder)."""
    if resumed is not None and isinstance(resumed.tokenizer, CharTokenizer):
        if resumed.tokenizer != CharTokenizer.from_text(text):
            raise OptionError(
                f"the text of {opts.txt_file or 'the default corpus'} has another vocabulary than "
                f"{resumed.folder}; resume with the same {{txt_file}}"
            )
    if opts.txt_file is not None:
        opts = dataclasses.replace(opts, txt_file=str(text_path.resolve()))
    if opts.init_from is not None and resumed is None and opts.init_from not in HUB_MODELS:
        opts = dataclasses.replace(opts, init_from=str(Path(opts.init_from).expanduser().resolve()))
    return opts


def check_target(total: int, reached: int, opts: TrainOptions) -> None:
    """Refuse a resumed run's target below the step it reached."""
    if total < reached:
        raise OptionError(
            f"{{{'max_steps' if opts.max_steps is not None else 'epochs'}}} asks for {total} steps, fewer than "
            f"the {reached} the run reached; give at least {reached} steps to extend it, or start a new run"
        )


def check_memory(model: GPT, opts: TrainOptions, device: torch.device) -> None:
    """Refuse, before the first step allocates it, a batch whose training step needs more memory
    than is free (``GPT.step_bytes``, an estimate from below; the weights are there already)."""
    scores = not (model.config.use_flash_attn and device.type == "cuda")
    need = model.step_bytes(opts.batch_size, opts.block_size, scores, opts.precision != "fp32")
    need -= 4 * model.num_params()
    free = free_memory(device)
    if free is not None and need > free:
        raise OptionError(
            f"{{batch_size}} {opts.batch_size} with {{block_size}} {opts.block_size} needs at least "
            f"{size_text(need)} for one training step of this model, more than the {size_text(free)} free "
            f"on {device.type}; lower {{batch_size}} or {{block_size}}, or train a smaller model"
        )


@dataclass
class Restored:
    """Where a resumed run stands: its step, best validation loss and metrics rows."""

    step: int = 0
    best_val: float | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)


def restore(run: ckpt.Run | None, model, optimizer, scaler, device: torch.device) -> Restored:
    """Weights, optimizer, loss scale and metrics of the run's last complete checkpoint."""
    if run is None:
        return Restored()
    state = ckpt.load_training_state(run, optimizer)
    ckpt.load_weights(model, run.path("model.safetensors"))
    model.to(device)
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    rows = [r for r in ckpt.read_metrics(run.folder, run) if r["step"] <= state["step"]]
    return Restored(state["step"], state.get("best_val_loss"), rows)
