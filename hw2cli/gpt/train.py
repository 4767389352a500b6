"""The training loop of ``hw2 gpt train``: next-character prediction on a book.

Reads top to bottom like nanoGPT's train.py: :func:`train` opens the run (the processes,
hw2cli.gpt.dist; the run directory and resuming, hw2cli.gpt.session), :func:`setup` reads the
data and makes the model and optimizer, :func:`loop` takes the steps: a row of metrics
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
    Restored,
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
        s, chosen = setup(run, dist, device)
        log = Metrics(s.state.rows, s.state.best_val)
        started = time.perf_counter()
        with StopFlag(abandon=dist.world_size == 1) as stop:
            if chosen:  # once the setup worked (an error stays one line) and Ctrl-C is caught
                reporter.note(chosen)
            step, sample, diverged_at, interrupted = loop(s, log, dist, stop, reporter)
        reporter.finish("train")
        elapsed = time.perf_counter() - started
        if not interrupted:  # after a Ctrl-C the figure (a second or two) waits for the end of the run
            s.checkpoints.figure(log.rows, f"{s.label}, {Path(s.opts.txt_file or 'Grimm').name}")
        if s.tb is not None:
            s.tb.close()
        if step >= s.total and not interrupted and diverged_at is None and sample is None and dist.rank == 0:
            with StopFlag() as stop:
                sample = greedy_sample(s.model, s.tokenizer, s.prompt, s.opts.sample_tokens, stop)
    s.model.eval()
    return TrainResult(
        run_dir=None if run.folder is None else str(run.folder),
        model_type=s.label,
        num_params=s.model.num_params(),
        vocab_size=s.tokenizer.vocab_size,
        device=str(device),
        precision=s.precision,
        world_size=dist.world_size,
        rank=dist.rank,
        start_step=s.state.step,
        steps=step,
        total_steps=s.total,
        train_loss=log.last_train,
        val_loss=log.last_val,
        best_val_loss=log.best_val,
        tokens_per_s=_tokens_per_step(s.opts, dist) * log.trained_steps / log.train_seconds
        if log.train_seconds
        else None,
        elapsed_s=elapsed,
        sample=sample,
        interrupted=interrupted,
        options=s.opts.recorded(),
        metrics=log.rows,
        diverged_at=diverged_at,
        checkpoint_step=s.checkpoints.saved_step,
        val_bpc=next((r["val_bpc"] for r in reversed(log.rows) if r.get("val_bpc") is not None), None),
        model=s.model,
        tokenizer=s.tokenizer,
    )


@dataclass
class Setup:
    """What the loop works with, made once by :func:`setup`."""

    opts: TrainOptions  # sizes chosen, eval_interval set
    device: torch.device
    precision: str
    model: GPT
    net: torch.nn.Module  # what trains: the model, compiled and/or wrapped for several processes
    eval_net: torch.nn.Module
    graphs: bool  # the steps replay as CUDA graphs
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    tokenizer: Tokenizer
    train_batches: Batches
    val_batches: Batches | None  # None without a validation split
    val_ids: int
    val_chars: int
    prompt: str
    total: int
    schedule: int  # the length the learning-rate schedule runs over (the recorded one)
    state: Restored
    checkpoints: Checkpoints
    tb: TensorBoardLog | None
    label: str


def setup(run: Session, dist: Dist, device: torch.device) -> tuple[Setup, str | None]:
    """The data, model, optimizer and checkpoints of ``run``, and the line saying which sizes
    were chosen for the device (None when none were)."""
    opts, chosen = run.opts, None
    if run.run is None:
        opts, chosen = fill_sizes(opts, device.type)
    precision = check_precision(opts.precision, device)
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
    total = total_steps(opts, len(train_data), dist.world_size)
    # the schedule keeps the length the run started with when a resumed run is extended
    schedule = total_steps(run.recorded or opts, len(train_data), dist.world_size)
    opts = dataclasses.replace(opts, eval_interval=eval_interval(opts, schedule))

    # ------------------------------------------------------------------ model and optimizer
    torch.manual_seed(opts.seed)
    model = model_for(opts, tokenizer.vocab_size, run.run and run.run.model_config).to(device)
    check_memory(model, opts, device)
    optimizer = model.configure_optimizers(
        opts.weight_decay, opts.lr, betas=(0.9, 0.95), device_type=device.type
    )
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    graphs = opts.compile and device.type == "cuda" and dist.world_size == 1
    compiled = compile_model(model, device, graphs) if opts.compile else None
    net = model if compiled is None else compiled
    # the validation: compiled on a GPU; on a CPU eager (compiling it costs more than it saves)
    eval_net = compiled if compiled is not None and device.type != "cpu" else model
    if dist.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(net, device_ids=[device.index] if device.type == "cuda" else None)
    state = restore(run.run, model, optimizer, scaler, device)
    check_target(total, state.step, opts)
    first = None if run.run else (model.config, opts.recorded(), tokenizer)
    shares = (opts.block_size, opts.batch_size, opts.seed, dist.rank, dist.world_size, device)
    return Setup(
        opts=opts,
        device=device,
        precision=precision,
        model=model,
        net=net,
        eval_net=eval_net,
        graphs=graphs,
        optimizer=optimizer,
        scaler=scaler,
        tokenizer=tokenizer,
        train_batches=Batches(train_data, *shares),
        val_batches=Batches(val_data, *shares, count=opts.eval_steps) if len(val_data) else None,
        val_ids=len(val_data),
        val_chars=len(tokenizer.decode(val_data)) if len(val_data) else 0,
        prompt=sample_prompt(tokenizer, val_data if len(val_data) else train_data),
        total=total,
        schedule=schedule,
        state=state,
        checkpoints=Checkpoints(run.folder, dist.rank, first, state.step if run.run else None),
        tb=TensorBoardLog(opts.tensorboard) if opts.tensorboard and dist.rank == 0 else None,
        label=Path(opts.init_from).name if opts.init_from else opts.model_type,
    ), chosen


def loop(
    s: Setup, log: Metrics, dist: Dist, stop: StopFlag, reporter: Reporter
) -> tuple[int, str | None, int | None, bool]:
    """The steps from where the run stands to ``s.total``. Returns the step reached, the last
    greedy sample, the step whose loss diverged, and whether a Ctrl-C stopped the run."""
    opts, step, sample = s.opts, s.state.step, None
    wall = WallTime(step, s.total, opts, reporter, sync=s.device.type == "cuda")
    reporter.start("train", "train", total=s.total, completed=step, loss=log.last_train, val=log.last_val)
    log.mark()
    s.model.train()
    try:
        while step < s.total:
            for group in s.optimizer.param_groups:
                group["lr"] = lr_at(step, s.schedule, opts)
            x, y = batch_at(s.train_batches, opts.seed, dist.rank, step)
            if s.graphs:  # a new step: the graphs' outputs of the last one may be overwritten
                torch.compiler.cudagraph_mark_step_begin()
            log.losses.append(
                train_step(s.net, s.optimizer, s.scaler, x, y, opts.clip_grad_norm, s.precision)
            )
            step += 1
            wall.step_done(step)
            at_eval = step % opts.eval_interval == 0 or step == s.total
            at_row = at_eval or step % opts.log_interval == 0
            if at_row:
                sample = row(s, log, step, at_eval, dist, stop, reporter) or sample
            if stop.requested(at_row, dist, s.device):
                break
        if step == s.total:
            return step, sample, None, False
        if log.losses:  # stopped by Ctrl-C: keep what was trained, if anything was
            log.close(step, lr_at(step - 1, s.schedule, opts), _tokens_per_step(opts, dist), dist, s.device)
        if step > s.state.step:
            s.checkpoints.save(step, s.total, opts, s.model, s.optimizer, s.scaler, log)
    except Diverged as exc:  # the last finite checkpoint stays
        saved = s.checkpoints.saved_step
        log.rows = [r for r in log.rows if saved is None or r["step"] <= saved]
        return step, sample, exc.step, False
    except KeyboardInterrupt:  # a second Ctrl-C: keep the last complete checkpoint
        pass
    return step, sample, None, True


def row(
    s: Setup, log: Metrics, step: int, at_eval: bool, dist: Dist, stop: StopFlag, reporter: Reporter
) -> str | None:
    """The row of metrics after ``step``: the mean training loss, at an evaluation step the
    validation loss and a checkpoint; returns the greedy sample drawn every ``sample_interval``
    steps (None when none was)."""
    opts = s.opts
    new, n = log.close(step, lr_at(step - 1, s.schedule, opts), _tokens_per_step(opts, dist), dist, s.device)
    if at_eval and s.val_batches is not None:
        val = evaluate(s.eval_net, s.val_batches, opts, s.precision, dist, stop, s.graphs)
        log.add_val(new, val, None if val is None else bits_per_char(val, s.val_ids, s.val_chars))
    if s.tb is not None:
        s.tb.row(new)
    reporter.update("train", advance=n, loss=log.last_train, val=log.last_val)
    sample = None
    if opts.sample_interval and step % opts.sample_interval == 0 and dist.rank == 0:
        sample = greedy_sample(s.model, s.tokenizer, s.prompt, opts.sample_tokens, stop)  # None: Ctrl-C
        if sample is not None:
            reporter.log(f"step {step}: {sample!r}")
            if s.tb is not None:
                s.tb.text(step, sample)
    if at_eval:
        s.checkpoints.save(step, s.total, opts, s.model, s.optimizer, s.scaler, log)
    log.mark()  # the next row times its steps alone
    return sample


def _tokens_per_step(opts: TrainOptions, dist: Dist) -> int:
    return opts.batch_size * opts.block_size * dist.world_size


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
