"""The run a training process works on: its place among torchrun's processes, its device, its run
directory (locked; a cut checkpoint finished or discarded) and, with ``resume``, the run read back.
Nothing is written before the first checkpoint: a run that fails before it leaves the folder as it was."""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Collection, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as tdist

from hw2cli.common import rundir
from hw2cli.common.device import free_memory, resolve_device
from hw2cli.common.errors import Hw2Warning
from hw2cli.common.inputs import size_text
from hw2cli.common.io import resolve_path
from hw2cli.common.options import OptionError
from hw2cli.gpt import saved
from hw2cli.gpt.data import check_text_file
from hw2cli.gpt.model import GPT
from hw2cli.gpt.options import NOT_RECORDED, RESUME_MAY_CHANGE, TrainOptions
from hw2cli.gpt.pretrained import HUB_MODELS
from hw2cli.gpt.tokens import CharTokenizer


@dataclass
class Dist:
    """This process's place among those torchrun started; one process is rank 0 of 1."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @classmethod
    def from_env(cls) -> Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world)

    def mean(self, value: float, device: torch.device) -> float:
        """Mean of ``value`` over all processes."""
        if self.world_size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=device)
        tdist.all_reduce(t)
        return t.item() / self.world_size


@dataclass
class Session:
    """The options (resuming: the recorded ones, as changed), processes, device, run directory and run."""

    opts: TrainOptions
    dist: Dist
    device: torch.device
    folder: Path | None
    run: saved.Run | None = None
    recorded: TrainOptions | None = None


@contextmanager
def session(opts: TrainOptions, given: Collection[str] | None) -> Iterator[Session]:
    """The processes' group (gloo on CPUs, nccl on GPUs); rank 0 prepares the folder and takes its
    lock, then every rank reads the run back when resuming."""
    dist, device = Dist.from_env(), resolve_device(opts.device)
    if device.type == "cuda" and dist.world_size > 1:
        device = torch.device("cuda", dist.local_rank)
    check_text_file(opts.txt_file)  # before the run directory is looked at
    place = opts.resume if opts.resume is not None else opts.out
    folder = None if place is None else Path(place)
    with ExitStack() as stack:
        if dist.world_size > 1:
            if device.type == "cuda":
                torch.cuda.set_device(device)
            tdist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            stack.callback(tdist.destroy_process_group)
        if folder is not None and dist.rank == 0:
            if opts.resume is None:  # rundir's errors name the fields, the CLI their flags
                rundir.prepare(
                    folder,
                    what="{out} run directory",
                    manifest=saved.MANIFEST,
                    leftovers=(),  # nothing is written before the first checkpoint
                    force=opts.force,
                    resume_hint="{resume}",
                )
            else:
                saved.check_folder(folder)
            stack.enter_context(rundir.lock(folder))
            dropped = rundir.recover(folder, saved.MANIFEST, saved.State, saved.ALL_RUN_FILES)
            if dropped:
                message = f"{folder}: deleted the files of a half-written checkpoint ({', '.join(dropped)})"
                warnings.warn(message, Hw2Warning, stacklevel=3)
        if dist.world_size > 1:
            tdist.barrier()
        run = None if opts.resume is None else saved.open_run(folder)
        opts, recorded = (opts, None) if run is None else resume_options(run, opts, given)
        yield Session(opts, dist, device, folder, run, recorded)


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
    run: saved.Run, opts: TrainOptions, given: Collection[str] | None
) -> tuple[TrainOptions, TrainOptions]:
    """The options to continue ``run`` with, and those it recorded: the recorded ones stand but for
    RESUME_MAY_CHANGE; options in ``given`` that differ from them are refused, all in one message."""
    if given is None:  # a Python caller: the options that differ from their defaults
        given = {f.name for f in dataclasses.fields(opts) if getattr(opts, f.name) != f.default}
    recorded, differ = run.options(), []
    for name in sorted(set(given) & saved.OPTION_FIELDS - set(RESUME_MAY_CHANGE) - set(NOT_RECORDED)):
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


def check_text(opts: TrainOptions, text: str, text_path: Path, resumed: saved.Run | None) -> TrainOptions:
    """Refuse a resumed char run's text whose characters differ from its vocabulary; ``opts`` with
    ``txt_file`` and a pretrained folder made absolute (resuming works from any folder)."""
    tok = resumed.tokenizer if resumed else None
    if isinstance(tok, CharTokenizer) and tok != CharTokenizer.from_text(text):
        raise OptionError(
            f"the text of {opts.txt_file or 'the default corpus'} has another vocabulary than "
            f"{resumed.folder}; resume with the same {{txt_file}}"
        )
    if opts.txt_file is not None:
        opts = dataclasses.replace(opts, txt_file=str(text_path.resolve()))
    if opts.init_from is not None and resumed is None and opts.init_from not in HUB_MODELS:
        opts = dataclasses.replace(opts, init_from=str(Path(opts.init_from).expanduser().resolve()))
    return opts


def check_memory(model: GPT, opts: TrainOptions, device: torch.device) -> None:
    """Refuse a batch whose step needs more memory than is free (``GPT.step_bytes``: a lower bound)."""
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
