"""The training loop of ``hw2 gpt train``: next-character prediction on a book.

Reads top to bottom like nanoGPT's train.py: :func:`train` opens the run (the processes,
hw2cli.gpt.dist; the run directory and resuming, hw2cli.gpt.session), :class:`Trainer` reads
the data, makes the model and optimizer and takes the steps (:meth:`Trainer.loop`): a row of metrics
(hw2cli.gpt.metrics) every ``log_interval`` steps and every ``eval_interval`` steps a validation
loss and a checkpoint (hw2cli.gpt.checkpoint). Ctrl-C and SIGTERM stop the loop between two
steps (hw2cli.gpt.stop). :func:`train` returns the trained model in memory with its metrics;
with ``out`` set it also writes a run directory that ``resume`` continues.

The windows of step ``s`` are one draw seeded from ``(seed, s)`` that the processes of a
torchrun run share out (hw2cli.gpt.data.Batches), and its dropout is seeded from
``(seed, rank, s)``: a resumed run draws exactly what the uninterrupted run would have, and N
processes of batch B train on the windows one process of batch N x B does.

On a GPU nothing in a step waits for the device: the ids live there and the windows are
gathered there, the losses stay there until a row of metrics reads them, and with
``compile`` one process replays each step as CUDA graphs (:func:`compile_model`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hw2cli.common.device import autocast, check_precision, keep_freed_memory, resolve_device
from hw2cli.common.progress import Reporter
from hw2cli.gpt.checkpoint import Checkpoints
from hw2cli.gpt.data import Batches, check_text_file, load_text, split_data, step_seeds
from hw2cli.gpt.dist import Dist, all_mean, distributed
from hw2cli.gpt.metrics import Diverged, Metrics, WallTime
from hw2cli.gpt.model import GPT
from hw2cli.gpt.options import TrainOptions, eval_interval, fill_sizes, total_steps
from hw2cli.gpt.pretrained import model_for
from hw2cli.gpt.sample import greedy_sample, sample_prompt
from hw2cli.gpt.session import (
    Session,
    check_memory,
    check_target,
    check_text,
    given_fields,
    restore,
    session,
)
from hw2cli.gpt.stop import StopFlag, Stopped
from hw2cli.gpt.tensorboard import TensorBoardLog
from hw2cli.gpt.tokens import BPETokenizer, Tokenizer, bits_per_char, encode_cached, tokenizer_for


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


def train(
    opts: TrainOptions, reporter: Reporter | None = None, given: Collection[str] | None = None
) -> TrainResult:
    """Train (with ``opts.resume``: continue) a GPT; see the module docstring. ``given`` names
    the options the caller set (the CLI: those on the command line; default: those that differ
    from their defaults): resuming refuses one that differs from the run's record."""
    dist = Dist.from_env()
    reporter = reporter if reporter is not None and dist.rank == 0 else Reporter()
    device = resolve_device(opts.device)
    if device.type == "cuda" and dist.world_size > 1:
        device = torch.device("cuda", dist.local_rank)
    if device.type == "cpu":
        keep_freed_memory()  # a gpt-micro step page-faulted about 1,200 times (docs/benchmarks.md)
    given = given_fields(opts) if given is None else given
    check_text_file(opts.txt_file)  # before the run directory is looked at
    with distributed(dist, device), session(opts, dist, given) as run:
        t = Trainer(run, dist, device, reporter)
        started = time.perf_counter()
        with StopFlag(abandon=dist.world_size == 1) as stop:
            if t.chosen:  # once the setup worked (an error stays one line) and Ctrl-C is caught
                reporter.note(t.chosen)
            t.loop(stop)
        reporter.finish("train")
        elapsed = time.perf_counter() - started
        if not t.interrupted:  # after a Ctrl-C the figure (a second or two) waits for the end of the run
            t.checkpoints.figure(t.log.rows, f"{t.label}, {Path(t.opts.txt_file or 'Grimm').name}")
        if t.tb is not None:
            t.tb.close()
        if (
            t.step >= t.total
            and not t.interrupted
            and t.diverged_at is None
            and t.sample is None
            and dist.rank == 0
        ):
            with StopFlag() as stop:
                t.sample = greedy_sample(t.model, t.tokenizer, t.prompt, t.opts.sample_tokens, stop)
    t.model.eval()
    log = t.log
    return TrainResult(
        run_dir=None if run.folder is None else str(run.folder),
        model_type=t.label,
        num_params=t.model.num_params(),
        vocab_size=t.tokenizer.vocab_size,
        device=str(device),
        precision=t.precision,
        world_size=dist.world_size,
        rank=dist.rank,
        start_step=t.start_step,
        steps=t.step,
        total_steps=t.total,
        train_loss=log.last_train,
        val_loss=log.last_val,
        best_val_loss=log.best_val,
        tokens_per_s=t.tokens_per_step * log.trained_steps / log.train_seconds if log.train_seconds else None,
        elapsed_s=elapsed,
        sample=t.sample,
        interrupted=t.interrupted,
        options=t.opts.recorded(),
        metrics=log.rows,
        diverged_at=t.diverged_at,
        checkpoint_step=t.checkpoints.saved_step,
        val_bpc=next((r["val_bpc"] for r in reversed(log.rows) if r.get("val_bpc") is not None), None),
        model=t.model,
        tokenizer=t.tokenizer,
    )


class Trainer:
    """One run: :meth:`__init__` reads the data and makes the model, optimizer and checkpoints
    (and ``chosen``, the line saying which sizes were chosen for the device), :meth:`loop` takes
    the steps. What the loop reached stays on the object: ``step``, ``sample`` (the last greedy
    sample), ``diverged_at``, ``interrupted``, ``log`` (the metrics)."""

    def __init__(self, run: Session, dist: Dist, device: torch.device, reporter: Reporter) -> None:
        opts, self.chosen = run.opts, None
        if run.run is None:
            opts, self.chosen = fill_sizes(opts, device.type)
        self.dist, self.device, self.reporter = dist, device, reporter
        self.precision = check_precision(opts.precision, device)
        if device.type == "cuda":  # TF32 tensor cores for fp32 matmuls, as nanoGPT does
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        if opts.tensorboard:  # fail before any work when tensorboard is missing
            TensorBoardLog.summary_writer_class()

        # ------------------------------------------------------------------ data
        text, text_path = load_text(opts.txt_file)
        opts = check_text(opts, text, text_path, run.run)
        tokenizer = run.run.tokenizer if run.run else tokenizer_for(opts.tokenizer, text, opts.init_from)
        if isinstance(tokenizer, BPETokenizer):
            ids = encode_cached(text, tokenizer)  # a memory-mapped token file
        else:
            ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
        train_data, val_data = split_data(ids, opts.val_fraction, opts.block_size)
        self.total = total_steps(opts, len(train_data), dist.world_size)
        # the schedule keeps the length the run started with when a resumed run is extended
        self.schedule = total_steps(run.recorded or opts, len(train_data), dist.world_size)
        self.opts = opts = dataclasses.replace(opts, eval_interval=eval_interval(opts, self.schedule))
        self.tokens_per_step = opts.batch_size * opts.block_size * dist.world_size
        shares = (opts.block_size, opts.batch_size, opts.seed, dist.rank, dist.world_size, device)
        self.train_batches = Batches(train_data, *shares)
        self.val_batches = Batches(val_data, *shares, count=opts.eval_steps) if len(val_data) else None
        self.val_ids, self.val_chars = len(val_data), len(tokenizer.decode(val_data)) if len(val_data) else 0
        self.prompt = sample_prompt(tokenizer, val_data if len(val_data) else train_data)
        self.tokenizer = tokenizer

        # ------------------------------------------------------------------ model and optimizer
        torch.manual_seed(opts.seed)
        self.model = model = model_for(opts, tokenizer.vocab_size, run.run and run.run.model_config).to(
            device
        )
        check_memory(model, opts, device)
        self.optimizer = model.configure_optimizers(opts.weight_decay, opts.lr, (0.9, 0.95), device.type)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")
        self.graphs = opts.compile and device.type == "cuda" and dist.world_size == 1
        compiled = compile_model(model, device, self.graphs) if opts.compile else None
        self.net = model if compiled is None else compiled
        # the validation: compiled on a GPU; on a CPU eager (compiling it costs more than it saves)
        self.eval_net = compiled if compiled is not None and device.type != "cpu" else model
        if dist.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.net = DDP(self.net, device_ids=[device.index] if device.type == "cuda" else None)
        state = restore(run.run, model, self.optimizer, self.scaler, device)
        check_target(self.total, state.step, opts)
        first = None if run.run else (model.config, opts.recorded(), tokenizer)
        self.checkpoints = Checkpoints(run.folder, dist.rank, first, state.step if run.run else None)
        self.tb = TensorBoardLog(opts.tensorboard) if opts.tensorboard and dist.rank == 0 else None
        self.label = Path(opts.init_from).name if opts.init_from else opts.model_type
        self.log = Metrics(state.rows, state.best_val)
        self.start_step = self.step = state.step
        self.sample, self.diverged_at, self.interrupted = None, None, False

    def loop(self, stop: StopFlag) -> None:
        """The steps from where the run stands to ``total``, until a Ctrl-C or a loss that is
        not finite stops them."""
        opts, log = self.opts, self.log
        wall = WallTime(self.step, self.total, opts, self.reporter, sync=self.device.type == "cuda")
        self.reporter.start(
            "train", "train", total=self.total, completed=self.step, loss=log.last_train, val=log.last_val
        )
        log.mark()
        self.model.train()
        try:
            while self.step < self.total:
                for group in self.optimizer.param_groups:
                    group["lr"] = lr_at(self.step, self.schedule, opts)
                x, y = batch_at(self.train_batches, opts.seed, self.dist.rank, self.step)
                if self.graphs:  # a new step: the graphs' outputs of the last one may be overwritten
                    torch.compiler.cudagraph_mark_step_begin()
                log.losses.append(
                    train_step(
                        self.net, self.optimizer, self.scaler, x, y, opts.clip_grad_norm, self.precision
                    )
                )
                self.step += 1
                wall.step_done(self.step)
                at_eval = self.step % opts.eval_interval == 0 or self.step == self.total
                at_row = at_eval or self.step % opts.log_interval == 0
                if at_row:
                    self.row(at_eval, stop)
                if stop.requested(at_row, self.dist, self.device):
                    break
            if self.step < self.total:  # stopped by Ctrl-C: keep what was trained, if anything was
                self.interrupted = True
                if log.losses:
                    log.close(
                        self.step,
                        lr_at(self.step - 1, self.schedule, opts),
                        self.tokens_per_step,
                        self.dist,
                        self.device,
                    )
                if self.step > self.start_step:
                    self.save()
        except Diverged as exc:  # the last finite checkpoint stays
            self.diverged_at, self.interrupted, saved = exc.step, False, self.checkpoints.saved_step
            log.rows = [r for r in log.rows if saved is None or r["step"] <= saved]
        except KeyboardInterrupt:  # a second Ctrl-C: keep the last complete checkpoint
            self.interrupted = True

    def row(self, at_eval: bool, stop: StopFlag) -> None:
        """The row of metrics after this step: the mean training loss, at an evaluation step the
        validation loss and a checkpoint, every ``sample_interval`` steps a greedy sample."""
        opts, log, step = self.opts, self.log, self.step
        row, n = log.close(
            step, lr_at(step - 1, self.schedule, opts), self.tokens_per_step, self.dist, self.device
        )
        if at_eval and self.val_batches is not None:
            val = evaluate(
                self.eval_net, self.val_batches, opts, self.precision, self.dist, stop, self.graphs
            )
            log.add_val(row, val, None if val is None else bits_per_char(val, self.val_ids, self.val_chars))
        if self.tb is not None:
            self.tb.row(row)
        self.reporter.update("train", advance=n, loss=log.last_train, val=log.last_val)
        if opts.sample_interval and step % opts.sample_interval == 0 and self.dist.rank == 0:
            sample = greedy_sample(self.model, self.tokenizer, self.prompt, opts.sample_tokens, stop)
            if sample is not None:  # None: a Ctrl-C abandoned it
                self.sample = sample
                self.reporter.log(f"step {step}: {sample!r}")
                if self.tb is not None:
                    self.tb.text(step, sample)
        if at_eval:
            self.save()
        log.mark()  # the next row times its steps alone

    def save(self) -> None:
        self.checkpoints.save(
            self.step, self.total, self.opts, self.model, self.optimizer, self.scaler, self.log
        )


# ----------------------------------------------------------------------------- the pieces of a step


def lr_at(step: int, total: int, opts: TrainOptions) -> float:
    """Linear warm-up to ``lr``, then constant or cosine decay to ``min_lr`` at ``total``
    (and ``min_lr`` after it: an extended run keeps the schedule it started with)."""
    if step < opts.warmup_steps:
        return opts.lr * (step + 1) / (opts.warmup_steps + 1)
    if opts.lr_schedule == "constant":
        return opts.lr
    min_lr = opts.lr / 10 if opts.min_lr is None else opts.min_lr
    ratio = min(1.0, (step - opts.warmup_steps) / max(1, total - opts.warmup_steps))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (opts.lr - min_lr)


def compile_model(model: GPT, device: torch.device, graphs: bool) -> torch.nn.Module:
    """``torch.compile(model)`` for training. On the CPU with Inductor's C++ wrapper, which
    calls the kernels without a Python line each (~5% a step). On a GPU with ``graphs`` (one
    process) as CUDA graphs ("reduce-overhead"): the forward and the backward pass each replay
    their recorded kernels in one launch, where launching a few hundred small kernels one by one
    from Python is what bounds a model of this size. Several processes (DistributedDataParallel)
    keep Inductor's default mode: CUDA graphs with DDP's gradient hooks were not tried."""
    if device.type == "cpu":
        return torch.compile(model, options={"cpp_wrapper": True})
    return torch.compile(model, mode="reduce-overhead" if graphs else None)


def batch_at(batches: Batches, seed: int, rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch (inputs, targets) of ``step``; seeds that step's dropout on ``rank`` too."""
    torch.manual_seed(step_seeds(seed, rank, step)[1])
    return batches(step)


def train_step(net, optimizer, scaler, x, y, clip: float, precision: str) -> torch.Tensor:
    """One optimizer step on the batch (x, y); returns the loss (on the device, a copy: CUDA
    graphs overwrite their outputs at the next step)."""
    with autocast(x.device, precision):
        loss = net(x, targets=y)
    scaler.scale(loss).backward()
    if clip > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach().clone()


@torch.no_grad()
def evaluate(
    net, batches: Batches, opts: TrainOptions, precision: str, dist: Dist, stop: StopFlag, graphs: bool
) -> float | None:
    """Mean loss over the ``eval_steps`` fixed validation batches (the same ones every time); None
    when a Ctrl-C abandoned it. The losses add up on the device (in float64, in order): the
    host waits for the device once per evaluation, not once per batch.

    ``net`` is the eager model on a CPU even when training is compiled: evaluation mode without
    gradients is another graph, whose compilation (about 10 s on a 2-core CPU) costs more than it
    saves there; on a GPU the compiled one (``graphs``: replayed as CUDA graphs)."""
    total = torch.zeros((), dtype=torch.float64, device=batches.device)
    net.eval()
    try:
        with stop.abandonable():
            for i in range(opts.eval_steps):
                x, y = batches(i)
                if graphs:
                    torch.compiler.cudagraph_mark_step_begin()
                with autocast(x.device, precision):
                    total += net(x, targets=y).double()
    except Stopped:
        return None
    finally:
        net.train()
    return all_mean(total.item() / opts.eval_steps, dist, batches.device)
