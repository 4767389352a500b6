"""Everything around the training loop of hw2cli.gpt.train: the processes, the run directory,
resuming, Ctrl-C and divergence.

- **Processes.** ``torchrun --nproc-per-node N`` starts N processes (DistributedDataParallel,
  gloo on the CPU, nccl on GPUs): :class:`Dist` reads their rank, :func:`distributed` holds the
  process group, :func:`all_mean` averages a number over them. Rank 0 writes the run directory.
- **The run directory** (hw2cli.common.rundir, files in hw2cli.gpt.checkpoint): :func:`session`
  refuses an earlier run's folder unless ``force``, holds the writer lock, finishes or discards
  a cut checkpoint and, with ``resume``, reads the run back; :class:`Checkpoints` commits one
  checkpoint at a time and draws Figure 3 once one exists. Nothing is written into the folder
  before the first checkpoint, so a run that fails or diverges before it leaves an earlier run
  (``force``) exactly as it was.
- **Resuming** (:func:`resume_options`): the recorded options define the run; options given
  again must equal them (``RESUME_MAY_CHANGE`` lists what may differ). Extending a run keeps
  the learning-rate schedule of its recorded length: a cosine stays at ``min_lr`` past it.
- **Ctrl-C** (:class:`StopFlag`): the loop stops between steps; work that changes nothing
  (a forward and backward pass before the optimizer step, an evaluation, a sample) is
  abandoned at once, so a Ctrl-C takes effect within a fraction of a step.
- **Divergence** (:class:`Diverged`): a loss or weights that stop being finite end the run; the
  last finite checkpoint stays and the CLI exits with ``NONFINITE_EXIT``.
- **Bookkeeping**: the rows of metrics.csv (:class:`Metrics`) and the estimated wall time,
  timed on the first steps (:class:`WallTime`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Collection, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as tdist
from safetensors import SafetensorError

from hw2cli.common import rundir, schema
from hw2cli.common.cache import cache_dir
from hw2cli.common.device import free_memory
from hw2cli.common.errors import Hw2Error, Hw2Warning
from hw2cli.common.inputs import size_text
from hw2cli.common.io import resolve_path
from hw2cli.common.options import OptionError
from hw2cli.common.progress import Reporter, estimate_message
from hw2cli.common.signals import note_terminated
from hw2cli.gpt import checkpoint as ckpt
from hw2cli.gpt.config import NOT_RECORDED, PRESET_NAMES, RESUME_MAY_CHANGE, TrainOptions
from hw2cli.gpt.data import GRIMM_FILE, CharTokenizer
from hw2cli.gpt.model import GPT
from hw2cli.gpt.plot import save_loss_plot
from hw2cli.gpt.pretrained import HUB_MODELS
from hw2cli.gpt.tokens import Tokenizer


@dataclass
class TrainResult:
    """What a training run did; ``metrics`` holds every row of ``metrics.csv``, ``model`` (in
    eval mode) and ``tokenizer`` the trained model (not part of the JSON)."""

    run_dir: str | None
    model_type: str
    num_params: int
    vocab_size: int
    device: str
    precision: str
    world_size: int
    rank: int
    start_step: int
    steps: int
    total_steps: int
    train_loss: float | None
    val_loss: float | None
    best_val_loss: float | None
    tokens_per_s: float | None
    elapsed_s: float
    sample: str | None
    interrupted: bool
    options: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    diverged_at: int | None = None  # first step whose loss (or weights) was not finite
    checkpoint_step: int | None = None  # step of the last checkpoint committed
    val_bpc: float | None = None  # the last validation loss in bits per character
    model: GPT | None = field(default=None, repr=False, compare=False)
    tokenizer: Tokenizer | None = field(default=None, repr=False, compare=False)


# ----------------------------------------------------------------------------- processes


@dataclass
class Dist:
    """This process's place among the processes torchrun started (one: rank 0 of 1)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @classmethod
    def from_env(cls) -> Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world)


@contextmanager
def distributed(dist: Dist, device: torch.device) -> Iterator[None]:
    """The process group of a torchrun run (gloo on the CPU, nccl on GPUs); nothing for one process."""
    if dist.world_size == 1:
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    tdist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield
    finally:
        tdist.destroy_process_group()


def all_mean(value: float, dist: Dist, device: torch.device) -> float:
    """Mean of ``value`` over all processes."""
    if dist.world_size == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    tdist.all_reduce(t)
    return t.item() / dist.world_size


# ----------------------------------------------------------------------------- Ctrl-C


class Stopped(Exception):
    """Ctrl-C during work that can be abandoned (see :class:`StopFlag`)."""


class StopFlag:
    """The first Ctrl-C (or SIGTERM) asks the loop to stop: inside :meth:`abandonable` work it
    raises :class:`Stopped` at once, elsewhere (an optimizer step, a checkpoint being written) the
    loop stops when that is done. A second Ctrl-C interrupts at once (KeyboardInterrupt).
    With several processes no process abandons work alone (the others would wait for it in a
    collective): they agree to stop at the next row of metrics.

    Python handles a signal only between two of its own instructions, and a backward pass is
    one call into torch's C++ engine (20 s a step for gpt-mini on a 2-core CPU): with ``model``
    given, every linear layer's output gets a gradient hook that does nothing, so that the
    backward pass returns to Python, and can be abandoned, once per layer."""

    def __init__(self, abandon: bool = True, model: torch.nn.Module | None = None) -> None:
        self.set = False
        self._abandon = abandon
        self._inside = 0
        self._previous: dict[int, Any] = {}
        self._model = model if abandon else None
        self._hooks: list = []

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):  # SIGTERM: a batch system's stop
                if signal.getsignal(sig) is not signal.SIG_IGN:  # ignored stays ignored
                    self._previous[sig] = signal.signal(sig, self._handle)
        if self._model is not None:
            linear = (m for m in self._model.modules() if isinstance(m, torch.nn.Linear))
            self._hooks = [m.register_forward_hook(_python_in_backward) for m in linear]
        return self

    def __exit__(self, *exc) -> None:
        for hook in self._hooks:
            hook.remove()
        self._restore()

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        self.set = True
        if signum == signal.SIGTERM:
            note_terminated()  # exit 143
        self._restore()  # a second signal interrupts at once
        if self._inside:
            raise Stopped

    def requested(self, at_row: bool, dist: Dist, device: torch.device) -> bool:
        """Whether to stop after this step: one process stops at once, several agree at a row."""
        if dist.world_size == 1:
            return self.set
        return at_row and all_mean(float(self.set), dist, device) > 0

    @contextmanager
    def abandonable(self) -> Iterator[None]:
        """Work whose result may be thrown away: Ctrl-C ends it at once."""
        if not self._abandon:
            yield
            return
        if self.set:
            raise Stopped
        self._inside += 1
        try:
            yield
        finally:
            self._inside -= 1


def _python_in_backward(module, inputs, output) -> None:
    if output.requires_grad:
        output.register_hook(_unchanged)


def _unchanged(grad: torch.Tensor) -> None:
    """A gradient hook that changes nothing: a point where a pending Ctrl-C is handled."""


# ----------------------------------------------------------------------------- divergence


class Diverged(Exception):
    """The loss (or the weights) stopped being finite at ``step``."""

    def __init__(self, step: int) -> None:
        super().__init__(step)
        self.step = step


def check_finite_losses(losses: torch.Tensor, last_step: int, mean: float) -> None:
    """Raise Diverged naming the first step of ``losses`` (ending at ``last_step``) whose loss
    is not finite, when their ``mean`` is not."""
    if math.isfinite(mean):
        return
    bad = (~torch.isfinite(losses)).nonzero()
    n = len(losses)
    raise Diverged(last_step - n + 1 + (int(bad[0]) if len(bad) else n - 1))


def check_finite_weights(model: torch.nn.Module, step: int) -> None:
    """Raise Diverged when a weight is no longer finite (the same on every process)."""
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise Diverged(step)


@dataclass
class Metrics:
    """The rows of metrics.csv, the losses of the steps since the last row (on the device, read
    once a row), and what the progress bar and the summary show.

    A row's time runs from :meth:`mark` (the loop marks the end of the last row's evaluation,
    sample and checkpoint) to the end of :meth:`close`, which waits for the device: on a GPU,
    where the host runs ahead of the device, the time of the steps themselves."""

    rows: list[dict[str, Any]]
    best_val: float | None = None
    losses: list[torch.Tensor] = field(default_factory=list)
    since: float = 0.0
    trained_steps: int = 0  # steps timed in this process (for its tokens/s)
    train_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.last_train = next((r["train_loss"] for r in reversed(self.rows)), None)
        self.last_val = next((r["val_loss"] for r in reversed(self.rows) if r["val_loss"] is not None), None)

    def mark(self) -> None:
        """Start timing the steps of the next row."""
        self.since = time.perf_counter()

    def add_step(self, loss: torch.Tensor) -> None:
        self.losses.append(loss)

    def close(self, step: int, lr: float, tokens_per_step: int, dist, device) -> tuple[dict[str, Any], int]:
        """Append the row of the steps since the last one (their mean loss, the same on every
        process) and return it with their number; Diverged names the first step whose loss
        was not finite."""
        stacked = torch.stack(self.losses).float()
        mean = all_mean(stacked.mean().item(), dist, device)
        n, seconds = len(self.losses), max(time.perf_counter() - self.since, 1e-9)
        check_finite_losses(stacked, step, mean)
        row = {
            "step": step,
            "train_loss": mean,
            "val_loss": None,
            "lr": lr,
            "tokens_per_s": tokens_per_step * n / seconds,
        }
        self.rows.append(row)
        self.trained_steps, self.train_seconds = self.trained_steps + n, self.train_seconds + seconds
        self.losses, self.last_train = [], mean
        return row, n

    def add_val(self, row: dict[str, Any], val: float | None, bpc: float | None) -> None:
        """The validation loss of ``row`` (None: none, or a Ctrl-C abandoned it); a loss that
        is not finite ends the run (Diverged), the row dropped."""
        if val is not None and not math.isfinite(val):
            self.rows.pop()
            raise Diverged(row["step"])
        self.last_val = val if val is not None else self.last_val
        if val is not None:
            self.best_val = val if self.best_val is None else min(self.best_val, val)
            row["val_loss"], row["val_bpc"] = val, bpc


# ----------------------------------------------------------------------------- resuming


def _same_file(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a == b
    try:
        return os.path.samefile(a, b)
    except OSError:
        return resolve_path(a) == resolve_path(b)


def given_fields(opts: TrainOptions) -> set[str]:
    """The options a Python caller set: those that differ from their defaults."""
    return {
        f.name
        for f in dataclasses.fields(opts)
        if f.default is not dataclasses.MISSING and getattr(opts, f.name) != f.default
    }


def resume_options(
    run: ckpt.Run, opts: TrainOptions, given: Collection[str]
) -> tuple[TrainOptions, TrainOptions]:
    """The options to continue ``run`` with, and the options it recorded when it started.

    The recorded options stand but for what ``opts`` may change (RESUME_MAY_CHANGE); an option
    in ``given`` (set by the caller) that defines the run and differs from the recorded value
    is refused, each one named with its recorded value. Without ``max_steps``/``epochs`` the
    target the run was last asked to reach (state.json) stands."""
    saved = dict(run.train_options)
    if "abs_emb" in saved:  # runs written before pos_emb
        saved.setdefault("pos_emb", "learned" if saved.pop("abs_emb") else "rope")
    if saved.get("init_from") is not None and saved.get("model_type") not in PRESET_NAMES:
        saved["model_type"] = None  # runs that recorded the pretrained model's name here
    known = {f.name: f for f in dataclasses.fields(TrainOptions)}
    saved = {k: v for k, v in saved.items() if k in known}
    config = run.path("config.json")
    recorded = schema.construct(config, "train", lambda: TrainOptions(**saved), ckpt.FIX)
    differ = []
    for name in sorted(given):
        if name in RESUME_MAY_CHANGE or name in NOT_RECORDED or name not in known:
            continue
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


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_text(opts: TrainOptions, text: str, text_path: Path, resumed: ckpt.Run | None) -> TrainOptions:
    """Refuse a resumed character-level run's text whose characters differ from its vocabulary;
    return ``opts`` with ``txt_file`` and a pretrained folder absolute, so that --resume works
    from any folder."""
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
    if total >= reached:
        return
    given = "{max_steps}" if opts.max_steps is not None else "{epochs}"
    raise OptionError(
        f"{given} asks for {total} steps, fewer than the {reached} the run reached; "
        f"give at least {reached} steps to extend it, or start a new run"
    )


def check_memory(model: GPT, opts: TrainOptions, device: torch.device) -> None:
    """Refuse, before the first step allocates it, a batch whose training step needs more
    memory than is free (``GPT.step_bytes``, an estimate from below; the weights are there already)."""
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


# ----------------------------------------------------------------------------- wall time


class WallTime:
    """Times the first steps after the first one (which pays for start-up and compilation)
    and announces the run's estimated wall time, evaluations included, once per run. With
    ``sync`` (a GPU) it waits for the device at each of those few readings of the clock."""

    def __init__(
        self, step: int, total: int, opts: TrainOptions, reporter: Reporter, sync: bool = False
    ) -> None:
        self.first, self.total, self.opts, self.reporter = step + 1, total, opts, reporter
        self.t0: float | None = None
        self.sync = sync

    def step_done(self, step: int) -> None:
        if self.first is None or step < self.first:
            return
        if self.sync:
            torch.cuda.synchronize()
        now = time.perf_counter()
        if self.t0 is None:
            self.t0 = now
            return
        timed = step - self.first
        if now - self.t0 < 1.0 and timed < 5 and step < self.total:
            return
        per_step = (now - self.t0) / timed
        evals = (self.total - step) // self.opts.eval_interval + 1
        seconds = (self.total - step) * per_step + evals * self.opts.eval_steps * per_step / 3
        timed_steps = f"{timed} timed step{'s' if timed > 1 else ''}"
        basis = f"{timed_steps} of {per_step:.2f} s, {self.total - step:,} to go, evaluation included"
        line = estimate_message(seconds, "the training", basis, "give --max-steps or a smaller --model-type")
        if line:
            self.reporter.note(line)
        self.first = None


# ----------------------------------------------------------------------------- the run directory


@dataclass
class Session:
    """The run a training process works on: its options (the recorded ones when resuming),
    where it is written (``folder``; None in memory), the run read back (``run``) and the
    options it started with (``recorded``: the learning-rate schedule keeps their length)."""

    opts: TrainOptions
    folder: Path | None
    run: ckpt.Run | None = None
    recorded: TrainOptions | None = None


@contextmanager
def session(opts: TrainOptions, dist: Dist, given: Collection[str]) -> Iterator[Session]:
    """Rank 0 prepares the run directory (refusing an earlier run unless ``force``), takes the
    writer lock and finishes or discards a cut checkpoint; then every rank reads it back when
    resuming. ``opts.out`` None (and no ``resume``): a run in memory, nothing written."""
    folder = Path(opts.resume) if opts.resume is not None else None if opts.out is None else Path(opts.out)
    with ExitStack() as stack:
        if folder is not None and dist.rank == 0:
            if opts.resume is None:
                rundir.prepare(  # no leftovers: nothing is written before the first checkpoint
                    folder,
                    what="--out run directory",
                    manifest=ckpt.MANIFEST,
                    leftovers=(),
                    force=opts.force,
                    resume_hint="--resume",
                )
            elif not folder.is_dir():
                raise Hw2Error(f"run directory {folder} does not exist; give the --out folder of `gpt train`")
            stack.enter_context(rundir.lock(folder))
            dropped = rundir.recover(folder, ckpt.MANIFEST, ckpt.State, ckpt.ALL_RUN_FILES)
            if dropped:
                warnings.warn(
                    f"{folder}: deleted the files of a half-written checkpoint ({', '.join(dropped)})",
                    Hw2Warning,
                    stacklevel=3,
                )
        if dist.world_size > 1:
            tdist.barrier()
        if opts.resume is None:
            yield Session(opts, folder)
            return
        run = ckpt.open_run(folder)
        resumed, recorded = resume_options(run, opts, given)
        yield Session(resumed, folder, run, recorded)


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
    state = ckpt.load_training_state(run.folder, optimizer, run)
    ckpt.load_weights(model, run.path("model.safetensors"))
    model.to(device)
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    rows = [r for r in ckpt.read_metrics(run.folder, run) if r["step"] <= state["step"]]
    return Restored(state["step"], state.get("best_val_loss"), rows)


class Checkpoints:
    """Commits the checkpoints of one run (rank 0; the other ranks only check the weights),
    and draws Figure 3 from the rows of the last one."""

    def __init__(self, folder: Path | None, dist: Dist, first: tuple | None, saved_step: int | None) -> None:
        self.folder, self.dist = folder, dist
        self.first = first  # (model config, recorded options, tokenizer) until the first commit
        self.saved_step = saved_step

    def save(self, step: int, total: int, opts: TrainOptions, model, optimizer, scaler, log: Metrics) -> None:
        """Commit weights, optimizer, metrics and state.json as one set, unless the weights
        are no longer finite (Diverged: the previous checkpoint stays)."""
        check_finite_weights(model, step)
        if self.folder is None or self.dist.rank != 0:
            return
        state = {
            "step": step,
            "total_steps": total,
            "max_steps": opts.max_steps,  # the target asked for, which --resume continues to
            "epochs": opts.epochs,
            "best_val_loss": log.best_val,
            "finished": step >= total,
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        }
        try:
            ckpt.save_checkpoint(self.folder, model, optimizer, state, log.rows, first=self.first)
        except (OSError, SafetensorError) as exc:  # safetensors reports a full disk as its own error
            kept = (  # a resume hint only where there is a checkpoint to resume
                "nothing was saved: fix that (disk space, the folder, ulimit -f) and run the same command again"
                if self.saved_step is None
                else f"the checkpoint of step {self.saved_step} stays: fix that (disk space, the folder, "
                f"ulimit -f) and continue with --resume {self.folder}"
            )
            reason = getattr(exc, "strerror", None) or exc
            raise Hw2Error(
                f"cannot write the checkpoint of step {step} into {self.folder} ({reason}); {kept}"
            ) from None
        self.first, self.saved_step = None, step

    def figure(self, rows: list[dict[str, Any]], title: str) -> None:
        """Figure 3 (loss.png) from the rows of the last checkpoint; nothing before one exists."""
        if self.folder is None or self.dist.rank != 0 or self.saved_step is None:
            return
        rows = [r for r in rows if r["step"] <= self.saved_step]
        path = self.folder / "loss.png"
        try:  # drawn from metrics.csv: losing it loses no training
            save_loss_plot(path, rows, title=title)
        except OSError as exc:
            warnings.warn(
                f"cannot write {path} ({exc.strerror or exc}); the checkpoint is complete",
                Hw2Warning,
                stacklevel=2,
            )


def check_tensorboard(folder: str | None, out: str | None, inputs: dict[str, Path | None]) -> None:
    """Refuse a ``tensorboard`` folder that is a file, lies in the run directory, or is or lies
    in something the run reads (before any work)."""
    if folder is None:
        return
    path = Path(folder).expanduser()
    if path.exists() and not path.is_dir():
        raise OptionError(f"{{tensorboard}} {folder} is a file, not a folder; give a folder for the events")
    places = {"the run directory": None if out is None else Path(out), **inputs}
    for label, place in places.items():
        if place is not None and _within(path, Path(place)):
            raise OptionError(f"{{tensorboard}} {folder} lies in {label} {place}; give a folder outside it")


def _within(path: Path, place: Path) -> bool:
    resolved, base = resolve_path(path), resolve_path(place)
    return resolved == base or base in resolved.parents


def recorded_inputs(resume: str | None) -> dict[str, Path]:
    """The files a run being resumed reads (its recorded text, or the default corpus, and a
    pretrained folder or tokenizer file), for the output checks before any work; nothing when
    the folder cannot be read (resuming then fails with its own message)."""
    if resume is None:
        return {}
    try:
        with warnings.catch_warnings():  # the run itself warns about a half-written checkpoint
            warnings.simplefilter("ignore", Hw2Warning)
            recorded = ckpt.open_run(resume, hashes=()).train_options
    except Hw2Error:
        return {}
    text = recorded.get("txt_file")
    inputs = {"recorded --txt-file": Path(text) if text else cache_dir() / GRIMM_FILE}
    if recorded.get("init_from") and recorded["init_from"] not in HUB_MODELS:
        inputs["recorded --init-from"] = Path(recorded["init_from"])
    if recorded.get("tokenizer") not in (None, "char", "gpt2"):
        inputs["recorded --tokenizer"] = Path(recorded["tokenizer"])
    return inputs
