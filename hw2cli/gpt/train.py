"""The trainer behind ``hw2 gpt train``: next-character prediction on a book.

One loop serves a single process and ``torchrun --nproc-per-node N`` (DistributedDataParallel,
gloo on the CPU, nccl on GPUs; every rank draws its own batches, rank 0 writes the run
directory). The random numbers of step ``s`` on rank ``r`` (batch windows, dropout) are seeded
from ``(seed, r, s)``, so a resumed run draws exactly what the uninterrupted run would have.

Read top to bottom, as nanoGPT's train.py: :func:`train` sets up the process group and the run
directory (hw2cli.common.rundir: an earlier run is refused unless ``force``, one writer holds the
lock), :func:`_setup` builds data, model and optimizer and restores the last complete checkpoint
when resuming, :func:`_loop` calls :func:`train_step`, :func:`evaluate` and
:func:`save_checkpoint`, and :func:`_finish` draws Figure 3 and sums the run up. A loss (or
weights) that becomes NaN or infinite stops the run with ``diverged_at`` set; the last finite
checkpoint stays (the CLI exits with ``NONFINITE_EXIT``).
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist
import torch.nn.functional as F
from safetensors import SafetensorError

from hw2cli.common import rundir, schema
from hw2cli.common.device import autocast, check_precision, resolve_device
from hw2cli.common.errors import Hw2Error, Hw2Warning
from hw2cli.common.progress import Reporter
from hw2cli.gpt import checkpoint as ckpt
from hw2cli.gpt.data import CharTokenizer, get_batch, load_text, split_data
from hw2cli.gpt.model import GPT, POS_EMBS, PRESETS, GPTConfig
from hw2cli.gpt.plot import save_loss_plot
from hw2cli.gpt.pretrained import HUB_MODELS, load_pretrained
from hw2cli.gpt.pretrained import resolve as resolve_pretrained
from hw2cli.gpt.tensorboard import TensorBoardLog
from hw2cli.gpt.tokens import (
    TOKENIZER_FILE,
    BPETokenizer,
    Tokenizer,
    bits_per_char,
    encode_cached,
    make_tokenizer,
)

SAMPLE_PROMPT = "Once upon a time"
SCHEDULES = ("constant", "cosine")


@dataclass
class TrainOptions:
    """Every option of ``hw2 gpt train``; the defaults are the course's configuration."""

    txt_file: str | None = None  # None: Grimm's fairy tales, downloaded once
    model_type: str = "gpt-mini"
    block_size: int = 128
    batch_size: int = 128  # per process
    lr: float = 5e-4
    weight_decay: float = 0.1
    clip_grad_norm: float = 1.0  # 0 turns clipping off
    epochs: int | None = None  # 3 when max_steps is None too
    max_steps: int | None = None
    pos_emb: str = "rope"  # rope, learned or none
    attn_scale: bool = True
    n_head: int | None = None  # heads per layer; None: the preset's (the heads probe varies it)
    flash_attn: bool = False
    compile: bool = False
    precision: str = "fp32"
    seed: int = 0
    device: str = "auto"
    out: str = "runs/gpt"
    dropout: float = 0.1  # embedding, residual and attention dropout alike
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    min_lr: float | None = None  # cosine floor; None: lr / 10
    eval_interval: int = 500
    eval_steps: int = 20
    val_fraction: float = 0.1
    log_interval: int = 10
    sample_interval: int = 500  # 0: no samples during training
    sample_tokens: int = 100
    init_from: str | None = None  # gpt2, gpt2-medium, gpt2-large, gpt2-xl or a folder: fine-tune it
    tokenizer: str | None = None  # char, gpt2 or a tokenizer.json; None: char, or init_from's own
    tensorboard: str | None = None  # folder for TensorBoard events


@dataclass
class TrainResult:
    """What a training run did; ``metrics`` holds every row of ``metrics.csv``."""

    run_dir: str
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


def validate(opts: TrainOptions) -> None:
    """Raise Hw2Error for an option outside its range (before any work)."""
    if opts.model_type not in PRESETS and opts.init_from is None:
        raise Hw2Error(f"unknown --model-type {opts.model_type!r}; use one of {', '.join(PRESETS)}")
    if opts.pos_emb not in POS_EMBS:
        raise Hw2Error(f"unknown --pos-emb {opts.pos_emb!r}; use one of {', '.join(POS_EMBS)}")
    if opts.lr_schedule not in SCHEDULES:
        raise Hw2Error(f"unknown --lr-schedule {opts.lr_schedule!r}; use constant or cosine")
    positive_ints = {
        "--block-size": opts.block_size,
        "--batch-size": opts.batch_size,
        "--epochs": opts.epochs,
        "--max-steps": opts.max_steps,
        "--eval-interval": opts.eval_interval,
        "--eval-steps": opts.eval_steps,
        "--log-interval": opts.log_interval,
    }
    for name, value in positive_ints.items():
        if value is not None and value < 1:
            raise Hw2Error(f"{name} must be at least 1, got {value}")
    for name, value in {
        "--warmup-steps": opts.warmup_steps,
        "--sample-interval": opts.sample_interval,
        "--sample-tokens": opts.sample_tokens,
    }.items():
        if value < 0:
            raise Hw2Error(f"{name} must be 0 or more, got {value}")
    if opts.seed < 0:
        raise Hw2Error(f"--seed must be 0 or more, got {opts.seed}")
    if not opts.lr > 0 or not math.isfinite(opts.lr):
        raise Hw2Error(f"--lr must be a positive number, got {opts.lr}")
    if opts.min_lr is not None and not 0 <= opts.min_lr <= opts.lr:
        raise Hw2Error(f"--min-lr must lie in [0, --lr={opts.lr}], got {opts.min_lr}")
    if not opts.weight_decay >= 0:
        raise Hw2Error(f"--weight-decay must be 0 or more, got {opts.weight_decay}")
    if not opts.clip_grad_norm >= 0:
        raise Hw2Error(f"--clip-grad-norm must be 0 (off) or more, got {opts.clip_grad_norm}")
    if not 0 <= opts.dropout < 1:
        raise Hw2Error(f"--dropout must lie in [0, 1), got {opts.dropout}")
    if not 0 <= opts.val_fraction < 1:
        raise Hw2Error(f"--val-fraction must lie in [0, 1), got {opts.val_fraction}")


def lr_at(step: int, total: int, opts: TrainOptions) -> float:
    """Linear warm-up to ``lr``, then constant or cosine decay to ``min_lr`` at ``total``."""
    if step < opts.warmup_steps:
        return opts.lr * (step + 1) / (opts.warmup_steps + 1)
    if opts.lr_schedule == "constant":
        return opts.lr
    min_lr = opts.lr / 10 if opts.min_lr is None else opts.min_lr
    ratio = min(1.0, (step - opts.warmup_steps) / max(1, total - opts.warmup_steps))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (opts.lr - min_lr)


def _step_seeds(seed: int, rank: int, step: int, purpose: int = 0) -> tuple[int, int]:
    """Two independent 63-bit seeds (batch windows, dropout) for one step of one rank;
    ``purpose`` 1 gives the fixed validation batches instead."""
    a, b = np.random.SeedSequence([purpose, seed, rank, step]).generate_state(2, dtype=np.uint64)
    return int(a) >> 1, int(b) >> 1


class _StopFlag:
    """Ctrl-C sets a flag that the loop reads between steps; a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.set = False
        self._previous = None

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.set = True
        signal.signal(signal.SIGINT, self._previous)

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


@dataclass
class _Dist:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @classmethod
    def from_env(cls) -> _Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world)


NONFINITE_EXIT = 3  # exit code of `hw2 gpt train` when the loss became NaN or infinite


def resume_options(run: ckpt.Run, opts: TrainOptions) -> TrainOptions:
    """The options saved in ``run``; ``opts`` may change only ``max_steps``, ``epochs``
    (to extend a run) and ``device``. Without them the target the run was last asked to
    reach (saved in state.json) stands, so a resumed, extended run resumes to its new end."""
    saved = dict(run.train_options)
    if "abs_emb" in saved:  # runs written before pos_emb
        saved.setdefault("pos_emb", "learned" if saved.pop("abs_emb") else "rope")
    known = {f.name for f in fields(TrainOptions)}
    resumed = TrainOptions(**{k: v for k, v in saved.items() if k in known})
    resumed.out, resumed.device = str(run.folder), opts.device
    if run.state is not None and (run.state.max_steps or run.state.epochs):
        resumed.max_steps, resumed.epochs = run.state.max_steps, run.state.epochs
    if opts.max_steps is not None or opts.epochs is not None:
        resumed.max_steps, resumed.epochs = opts.max_steps, opts.epochs
    return resumed


@contextmanager
def _distributed(dist: _Dist, device: torch.device) -> Iterator[None]:
    """The one place for torch.distributed: a process group for the run (gloo on the CPU,
    nccl on GPUs) when torchrun started several processes."""
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


def _all_mean(value: float, dist: _Dist, device: torch.device) -> float:
    """Mean of ``value`` over all processes."""
    if dist.world_size == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    tdist.all_reduce(t)
    return t.item() / dist.world_size


def _barrier(dist: _Dist) -> None:
    if dist.world_size > 1:
        tdist.barrier()


@contextmanager
def _run_directory(out: Path, dist: _Dist, resuming: bool, force: bool) -> Iterator[None]:
    """Rank 0 refuses an earlier run's folder (unless ``force``), takes the writer lock and
    finishes or discards a cut checkpoint; every rank reads only after that."""
    with ExitStack() as stack:
        if dist.rank == 0:
            if not resuming:
                rundir.prepare(
                    out,
                    what="--out run directory",
                    manifest=ckpt.MANIFEST,
                    leftovers=ckpt.DERIVED,
                    force=force,
                    resume_hint="--resume",
                )
            elif not out.is_dir():
                raise Hw2Error(f"run directory {out} does not exist; give the --out folder of `gpt train`")
            stack.enter_context(rundir.lock(out))
            dropped = rundir.recover(out, ckpt.MANIFEST, ckpt.State, ckpt.ALL_RUN_FILES)
            if dropped:
                warnings.warn(
                    f"{out}: deleted the files of a half-written checkpoint ({', '.join(dropped)})",
                    Hw2Warning,
                    stacklevel=3,
                )
        _barrier(dist)
        yield


def train(
    opts: TrainOptions,
    reporter: Reporter | None = None,
    resume: str | os.PathLike | None = None,
    force: bool = False,
) -> TrainResult:
    """Train (or, with ``resume``, continue) a character-level GPT; see the module docstring.

    A new run refuses an ``out`` folder holding an earlier run unless ``force`` (whose files
    then go with the first checkpoint). A loss that becomes NaN or infinite stops the run with
    ``diverged_at`` set and the last finite checkpoint kept."""
    if resume is None:
        validate(opts)
    dist = _Dist.from_env()
    device = resolve_device(opts.device)
    if device.type == "cuda" and dist.world_size > 1:
        device = torch.device("cuda", dist.local_rank)
    out = Path(resume if resume is not None else opts.out)
    with _distributed(dist, device), _run_directory(out, dist, resume is not None, force):
        run = ckpt.open_run(out) if resume is not None else None
        if run is not None:
            opts = resume_options(run, opts)
            schema.construct(run.path("config.json"), "train", lambda: validate(opts), ckpt.FIX)
        precision = check_precision(opts.precision, device)
        if device.type == "cuda":  # TF32 tensor cores for fp32 matmuls, as nanoGPT does
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        t = _setup(opts, dist, device, precision, out, run)
        t.reporter = reporter if (reporter is not None and dist.rank == 0) else Reporter()
        return _loop(t)


@dataclass
class _Trainer:
    """What the loop works on (nanoGPT keeps these as module globals)."""

    opts: TrainOptions
    dist: _Dist
    device: torch.device
    precision: str
    run_dir: Path
    tokenizer: Tokenizer
    train_data: torch.Tensor | np.ndarray  # a memory-mapped array of BPE ids
    val_data: torch.Tensor | np.ndarray
    total: int
    model: GPT
    net: torch.nn.Module  # the model as trained: compiled and/or wrapped in DDP
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    step: int = 0
    saved_step: int | None = None  # step of the last committed checkpoint
    best_val: float | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    last_train: float | None = None
    last_val: float | None = None
    sample: str | None = None
    diverged_at: int | None = None
    first_save: tuple | None = None  # (model config, options, tokenizer) until the first checkpoint
    reporter: Reporter = field(default_factory=Reporter)
    val_chars: int = 0  # characters the validation split spells, for bits per character
    tb: TensorBoardLog | None = None


def _setup(
    opts: TrainOptions, dist: _Dist, device: torch.device, precision: str, run_dir: Path, run: ckpt.Run | None
) -> _Trainer:
    """Data, model, optimizer and, when resuming, the state of the last checkpoint."""
    if opts.tensorboard:  # fail before any work when tensorboard is missing
        TensorBoardLog.summary_writer_class()
    text, text_path = load_text(opts.txt_file)
    if opts.txt_file is not None:  # saved absolute, so --resume works from any folder
        opts = replace(opts, txt_file=str(text_path.resolve()))
    if opts.init_from is not None and run is None:  # the model's name; a folder saved absolute
        source = opts.init_from
        source = source if source in HUB_MODELS else str(Path(source).expanduser().resolve())
        opts = replace(opts, init_from=source, model_type=Path(source).name)
    tokenizer = _tokenizer(opts, text, run)
    if isinstance(tokenizer, BPETokenizer):
        data = encode_cached(text, tokenizer)
    else:
        data = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    train_data, val_data = split_data(data, opts.val_fraction, opts.block_size)
    world_batch = opts.batch_size * dist.world_size
    steps_per_epoch = math.ceil((len(train_data) - opts.block_size) / world_batch)
    total = opts.max_steps if opts.max_steps is not None else (opts.epochs or 3) * steps_per_epoch

    torch.manual_seed(opts.seed)
    model = _new_model(opts, tokenizer.vocab_size, run).to(device)
    config = model.config
    optimizer = model.configure_optimizers(
        opts.weight_decay, opts.lr, betas=(0.9, 0.95), device_type=device.type
    )
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    # On the CPU, Inductor's C++ wrapper calls the kernels without a Python line each: ~5% a step.
    net = torch.compile(model, options={"cpp_wrapper": device.type == "cpu"}) if opts.compile else model
    if dist.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(net, device_ids=[device.index] if device.type == "cuda" else None)
    t = _Trainer(
        opts,
        dist,
        device,
        precision,
        run_dir,
        tokenizer,
        train_data,
        val_data,
        total,
        model,
        net,
        optimizer,
        scaler,
    )
    if run is None:
        t.first_save = (config, asdict(opts), tokenizer)
    else:
        _restore(t, run)
    t.val_chars = len(tokenizer.decode(val_data)) if len(val_data) else 0
    t.tb = TensorBoardLog(opts.tensorboard) if opts.tensorboard and dist.rank == 0 else None
    return t


def _tokenizer(opts: TrainOptions, text: str, run: ckpt.Run | None) -> Tokenizer:
    """The run's tokenizer: a resumed run's own, else ``--tokenizer`` (with ``--init-from``, the
    pretrained model's by default)."""
    if run is not None:
        if isinstance(run.tokenizer, CharTokenizer) and run.tokenizer != CharTokenizer.from_text(text):
            raise Hw2Error(
                f"the text of {opts.txt_file or 'the default corpus'} has another vocabulary than "
                f"{run.folder}; resume with the same --txt-file"
            )
        return run.tokenizer
    if opts.init_from is None:
        return make_tokenizer(opts.tokenizer or "char", text)
    if opts.tokenizer == "char":
        raise Hw2Error("--init-from needs the pretrained model's tokenizer; drop --tokenizer char")
    folder = resolve_pretrained(opts.init_from)
    spec = opts.tokenizer if opts.tokenizer not in (None, "gpt2") else str(folder / TOKENIZER_FILE)
    return make_tokenizer(spec, text)


def _new_model(opts: TrainOptions, vocab_size: int, run: ckpt.Run | None) -> GPT:
    """A fresh model of ``--model-type``, GPT-2's weights with ``--init-from``, or (resuming a
    fine-tuned run) its saved config, to be filled from the checkpoint."""
    if opts.init_from is None:
        return GPT(
            GPTConfig.from_preset(
                opts.model_type,
                vocab_size=vocab_size,
                block_size=opts.block_size,
                embd_pdrop=opts.dropout,
                resid_pdrop=opts.dropout,
                attn_pdrop=opts.dropout,
                use_flash_attn=opts.flash_attn,
                pos_emb=opts.pos_emb,
                attn_scale=opts.attn_scale,
                **({} if opts.n_head is None else {"n_head": opts.n_head}),
            )
        )
    if run is not None:
        return GPT(run.model_config)
    model, _ = load_pretrained(opts.init_from, opts.block_size, opts.dropout, use_flash_attn=opts.flash_attn)
    if vocab_size > model.config.vocab_size:
        raise Hw2Error(
            f"the tokenizer has {vocab_size} tokens, more than the model's "
            f"{model.config.vocab_size}; use the model's tokenizer"
        )
    return model


def _restore(t: _Trainer, run: ckpt.Run) -> None:
    """Weights, optimizer, loss scale and metrics of the run's last complete checkpoint."""
    state = ckpt.load_training_state(run.folder, t.optimizer, run)
    ckpt.load_weights(t.model, run.path("model.safetensors"))
    t.model.to(t.device)
    t.step = t.saved_step = state["step"]
    t.best_val = state.get("best_val_loss")
    if state.get("scaler"):
        t.scaler.load_state_dict(state["scaler"])
    t.rows = [r for r in ckpt.read_metrics(run.folder, run) if r["step"] <= t.step]
    t.last_train = next((r["train_loss"] for r in reversed(t.rows)), None)
    t.last_val = next((r["val_loss"] for r in reversed(t.rows) if r["val_loss"] is not None), None)


def train_step(t: _Trainer) -> torch.Tensor:
    """One optimizer step on a batch drawn for (seed, rank, step); returns the loss (on device)."""
    opts = t.opts
    for group in t.optimizer.param_groups:
        group["lr"] = lr_at(t.step, t.total, opts)
    batch_seed, dropout_seed = _step_seeds(opts.seed, t.dist.rank, t.step)
    batches = torch.Generator().manual_seed(batch_seed)
    x, y = get_batch(t.train_data, opts.block_size, opts.batch_size, batches)
    torch.manual_seed(dropout_seed)
    x, y = x.to(t.device, non_blocking=True), y.to(t.device, non_blocking=True)
    with autocast(t.device, t.precision):
        logits = t.net(x)
    loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
    t.scaler.scale(loss).backward()
    if opts.clip_grad_norm > 0:
        t.scaler.unscale_(t.optimizer)
        torch.nn.utils.clip_grad_norm_(t.model.parameters(), opts.clip_grad_norm)
    t.scaler.step(t.optimizer)
    t.scaler.update()
    t.optimizer.zero_grad(set_to_none=True)
    t.step += 1
    return loss.detach()


@torch.no_grad()
def evaluate(t: _Trainer) -> float | None:
    """Mean loss over ``eval_steps`` fixed validation batches (the same ones every time).

    Runs the eager model even when training is compiled: evaluation mode without gradients is
    another graph, whose compilation (about 10 s on a 2-core CPU) costs more than it saves."""
    if len(t.val_data) == 0:
        return None
    opts = t.opts
    t.model.eval()
    gen = torch.Generator().manual_seed(_step_seeds(opts.seed, t.dist.rank, 0, purpose=1)[0])
    total_loss = 0.0
    for _ in range(opts.eval_steps):
        x, y = get_batch(t.val_data, opts.block_size, opts.batch_size, gen)
        with autocast(t.device, t.precision):
            logits = t.model(x.to(t.device))
        total_loss += F.cross_entropy(logits.float().flatten(0, 1), y.to(t.device).flatten()).item()
    t.model.train()
    return _all_mean(total_loss / opts.eval_steps, t.dist, t.device)


@torch.no_grad()
def greedy_sample(t: _Trainer) -> str:
    """``sample_tokens`` greedy tokens after a fixed prompt."""
    known = isinstance(t.tokenizer, BPETokenizer) or set(SAMPLE_PROMPT) <= set(t.tokenizer.chars)
    prompt = SAMPLE_PROMPT if known else t.tokenizer.decode(t.train_data[:16])
    t.model.eval()
    idx = torch.tensor([t.tokenizer.encode(prompt)], device=t.device)
    out = t.model.generate(idx, t.opts.sample_tokens, do_sample=False)
    t.model.train()
    return t.tokenizer.decode(out[0].tolist())


def save_checkpoint(t: _Trainer, finished: bool) -> None:
    """Commit weights, optimizer, metrics and state.json as one set (rank 0 only), unless the
    weights are no longer finite: then the previous checkpoint stays and the run stops."""
    if t.diverged_at is not None:
        return
    if not all(torch.isfinite(p).all() for p in t.model.parameters()):  # the same on every rank
        t.diverged_at = t.step
        return
    if t.dist.rank != 0:
        return
    state = {
        "step": t.step,
        "total_steps": t.total,
        "max_steps": t.opts.max_steps,
        "epochs": t.opts.epochs,
        "best_val_loss": t.best_val,
        "finished": finished,
        "scaler": t.scaler.state_dict() if t.scaler.is_enabled() else None,
    }
    try:
        ckpt.save_checkpoint(t.run_dir, t.model, t.optimizer, state, t.rows, first=t.first_save)
    except (OSError, SafetensorError) as exc:  # safetensors reports a full disk as its own error
        kept = "nothing was saved" if t.saved_step is None else f"the checkpoint of step {t.saved_step} stays"
        reason = getattr(exc, "strerror", None) or exc
        raise Hw2Error(
            f"cannot write the checkpoint of step {t.step} into {t.run_dir} ({reason}); {kept}: "
            f"fix that (disk space, the folder) and continue with --resume {t.run_dir}"
        ) from None
    t.first_save, t.saved_step = None, t.step


@dataclass
class _Interval:
    """Losses and time of the steps since the last row of metrics.csv."""

    losses: list[torch.Tensor] = field(default_factory=list)
    seconds: float = 0.0
    trained_steps: int = 0
    train_seconds: float = 0.0

    def close(self, t: _Trainer, tokens_per_step: int) -> dict[str, Any] | None:
        """Append the interval's row to ``t.rows`` (None when the loss is not finite: then
        ``t.diverged_at`` names the first step whose loss was not)."""
        losses = torch.stack(self.losses).float()
        mean = _all_mean(losses.mean().item(), t.dist, t.device)
        n, seconds = len(self.losses), max(self.seconds, 1e-9)
        self.losses, self.seconds = [], 0.0
        if not math.isfinite(mean):
            bad = (~torch.isfinite(losses)).nonzero()
            t.diverged_at = t.step - n + 1 + (int(bad[0]) if len(bad) else n - 1)
            return None
        self.trained_steps += n
        self.train_seconds += seconds
        t.last_train = mean
        row = {
            "step": t.step,
            "train_loss": mean,
            "val_loss": None,
            "lr": lr_at(t.step - 1, t.total, t.opts),
            "tokens_per_s": tokens_per_step * n / seconds,
        }
        t.rows.append(row)
        return row


def _loop(t: _Trainer) -> TrainResult:
    """Train to ``t.total`` steps: a row of metrics every ``log_interval`` steps, a validation
    loss and a checkpoint every ``eval_interval``; Ctrl-C (or the end) saves and stops."""
    opts, start_step = t.opts, t.step
    tokens_per_step = opts.batch_size * opts.block_size * t.dist.world_size
    t.reporter.start(
        "train",
        f"train {opts.model_type}",
        total=t.total,
        completed=t.step,
        loss=float("nan"),
        val=float("nan"),
        tps=0.0,
    )
    interval, interrupted, started = _Interval(), False, time.perf_counter()
    t.model.train()
    with _StopFlag() as stop:
        try:
            while t.step < t.total and t.diverged_at is None:
                t0 = time.perf_counter()
                interval.losses.append(train_step(t))
                do_eval = t.step % opts.eval_interval == 0 or t.step == t.total
                interval.seconds += time.perf_counter() - t0
                if do_eval or t.step % opts.log_interval == 0:
                    _log(t, interval, tokens_per_step, do_eval)
                    stop_now = _all_mean(float(stop.set), t.dist, t.device) > 0
                elif t.dist.world_size == 1:
                    stop_now = stop.set
                else:
                    stop_now = False
                if stop_now:
                    break
            if t.step < t.total and t.diverged_at is None:
                interrupted = True
                if interval.losses:
                    interval.close(t, tokens_per_step)
                save_checkpoint(t, finished=False)
        except KeyboardInterrupt:  # a second Ctrl-C: keep the last complete checkpoint
            interrupted = True
    t.reporter.finish("train")
    return _finish(t, start_step, interval, interrupted, time.perf_counter() - started)


def _log(t: _Trainer, interval: _Interval, tokens_per_step: int, do_eval: bool) -> None:
    """Close the interval's row; evaluate, sample and checkpoint when it is time."""
    n = len(interval.losses)
    row = interval.close(t, tokens_per_step)
    if row is None:
        return
    if do_eval:
        row["val_loss"] = t.last_val = evaluate(t)
        if t.last_val is not None and not math.isfinite(t.last_val):
            row["val_loss"] = t.last_val = None
            t.diverged_at = t.step
            t.rows.pop()
            return
        if t.last_val is not None and (t.best_val is None or t.last_val < t.best_val):
            t.best_val = t.last_val
        if t.last_val is not None:
            row["val_bpc"] = bits_per_char(t.last_val, len(t.val_data), t.val_chars)
    if t.tb is not None:
        t.tb.row(row)
    t.reporter.update(
        "train",
        advance=n,
        loss=t.last_train,
        val=t.last_val if t.last_val is not None else float("nan"),
        tps=row["tokens_per_s"],
    )
    if t.opts.sample_interval and t.step % t.opts.sample_interval == 0 and t.dist.rank == 0:
        t.sample = greedy_sample(t)
        t.reporter.log(f"step {t.step}: {t.sample!r}")
        if t.tb is not None:
            t.tb.text(t.step, t.sample)
    if do_eval:
        save_checkpoint(t, finished=t.step >= t.total)


def _finish(
    t: _Trainer, start_step: int, interval: _Interval, interrupted: bool, elapsed: float
) -> TrainResult:
    """Draw Figure 3, take the final greedy sample, and sum the run up."""
    opts = t.opts
    if t.diverged_at is not None:
        interrupted = False
        t.rows = [r for r in t.rows if t.saved_step is None or r["step"] <= t.saved_step]
    if t.dist.rank == 0 and t.rows:
        name = Path(opts.txt_file).name if opts.txt_file else "Grimm"
        try:  # the figure is drawn from metrics.csv: losing it loses no training
            save_loss_plot(t.run_dir / "loss.png", t.rows, title=f"{opts.model_type}, {name}")
        except OSError as exc:
            warnings.warn(
                f"cannot write {t.run_dir / 'loss.png'} ({exc.strerror or exc}); the checkpoint is complete",
                Hw2Warning,
                stacklevel=2,
            )
    if t.tb is not None:
        t.tb.close()
    finished = t.step >= t.total and not interrupted and t.diverged_at is None
    if finished and t.sample is None and t.dist.rank == 0:
        t.sample = greedy_sample(t)
    tokens_per_step = opts.batch_size * opts.block_size * t.dist.world_size
    return TrainResult(
        run_dir=str(t.run_dir),
        model_type=opts.model_type,
        num_params=t.model.num_params(),
        vocab_size=t.tokenizer.vocab_size,
        device=str(t.device),
        precision=t.precision,
        world_size=t.dist.world_size,
        rank=t.dist.rank,
        start_step=start_step,
        steps=t.step,
        total_steps=t.total,
        train_loss=t.last_train,
        val_loss=t.last_val,
        best_val_loss=t.best_val,
        tokens_per_s=(tokens_per_step * interval.trained_steps / interval.train_seconds)
        if interval.train_seconds > 0
        else None,
        elapsed_s=elapsed,
        sample=t.sample,
        interrupted=interrupted,
        options=asdict(opts),
        metrics=t.rows,
        diverged_at=t.diverged_at,
        checkpoint_step=t.saved_step,
        val_bpc=next((r["val_bpc"] for r in reversed(t.rows) if r.get("val_bpc") is not None), None),
    )
