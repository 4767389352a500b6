"""The training loop of ``hw2 gpt train``: next-character prediction on a book.

Reads top to bottom like nanoGPT's train.py: the options (hw2cli.gpt.config), the processes and
the run directory (hw2cli.gpt.run), the data, the model and optimizer, then one loop: a step,
a row of metrics every ``log_interval`` steps, and every ``eval_interval`` steps a validation
loss and a checkpoint. :func:`train` returns the trained model in memory with its metrics; with
``out`` set it also writes a run directory that ``resume`` continues.

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
from pathlib import Path

import torch

from hw2cli.common.device import autocast, check_precision, keep_freed_memory, resolve_device
from hw2cli.common.progress import Reporter
from hw2cli.gpt import run
from hw2cli.gpt.config import TrainOptions, eval_interval, fill_sizes, total_steps
from hw2cli.gpt.data import Batches, check_text_file, load_text, split_data, step_seeds
from hw2cli.gpt.model import GPT
from hw2cli.gpt.pretrained import model_for
from hw2cli.gpt.run import TrainResult
from hw2cli.gpt.sample import greedy_sample, sample_prompt
from hw2cli.gpt.tensorboard import TensorBoardLog
from hw2cli.gpt.tokens import BPETokenizer, bits_per_char, encode_cached, tokenizer_for


def train(
    opts: TrainOptions, reporter: Reporter | None = None, given: Collection[str] | None = None
) -> TrainResult:
    """Train (with ``opts.resume``: continue) a GPT; see the module docstring. ``given`` names
    the options the caller set (the CLI: those on the command line; default: those that differ
    from their defaults): resuming refuses one that differs from the run's record.

    One function, as nanoGPT's script: setup, loop and summary read in order; the loop's pieces
    (:func:`train_step`, :func:`evaluate`, :func:`greedy_sample`) are functions of their own."""
    dist = run.Dist.from_env()
    reporter = reporter if reporter is not None and dist.rank == 0 else Reporter()
    device = resolve_device(opts.device)
    if device.type == "cuda" and dist.world_size > 1:
        device = torch.device("cuda", dist.local_rank)
    if device.type == "cpu":
        keep_freed_memory()  # a gpt-micro step page-faulted about 1,200 times (docs/benchmarks.md)
    given = run.given_fields(opts) if given is None else given
    check_text_file(opts.txt_file)  # before the run directory is looked at
    with run.distributed(dist, device), run.session(opts, dist, given) as session:
        opts, chosen = session.opts, None
        if session.run is None:
            opts, chosen = fill_sizes(opts, device.type)
        precision = check_precision(opts.precision, device)
        if device.type == "cuda":  # TF32 tensor cores for fp32 matmuls, as nanoGPT does
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        if opts.tensorboard:  # fail before any work when tensorboard is missing
            TensorBoardLog.summary_writer_class()

        # ------------------------------------------------------------------ data
        text, text_path = load_text(opts.txt_file)
        opts = run.check_text(opts, text, text_path, session.run)
        tokenizer = (
            session.run.tokenizer if session.run else tokenizer_for(opts.tokenizer, text, opts.init_from)
        )
        if isinstance(tokenizer, BPETokenizer):
            ids = encode_cached(text, tokenizer)  # a memory-mapped token file
        else:
            ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
        train_data, val_data = split_data(ids, opts.val_fraction, opts.block_size)
        total = total_steps(opts, len(train_data), dist.world_size)
        # the schedule keeps the length the run started with when a resumed run is extended
        schedule = total_steps(session.recorded or opts, len(train_data), dist.world_size)
        opts = dataclasses.replace(opts, eval_interval=eval_interval(opts, schedule))

        # ------------------------------------------------------------------ model and optimizer
        torch.manual_seed(opts.seed)
        model = model_for(opts, tokenizer.vocab_size, session.run and session.run.model_config).to(device)
        run.check_memory(model, opts, device)
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
        state = run.restore(session.run, model, optimizer, scaler, device)
        run.check_target(total, state.step, opts)
        first = None if session.run else (model.config, opts.recorded(), tokenizer)
        checkpoints = run.Checkpoints(session.folder, dist, first, state.step if session.run else None)
        tb = TensorBoardLog(opts.tensorboard) if opts.tensorboard and dist.rank == 0 else None
        prompt = sample_prompt(tokenizer, val_data if len(val_data) else train_data)
        shares = (opts.block_size, opts.batch_size, opts.seed, dist.rank, dist.world_size, device)
        train_batches = Batches(train_data, *shares)
        val_batches = Batches(val_data, *shares, count=opts.eval_steps) if len(val_data) else None
        val_chars = len(tokenizer.decode(val_data)) if len(val_data) else 0
        label = Path(opts.init_from).name if opts.init_from else opts.model_type

        # ------------------------------------------------------------------ the loop
        step = start_step = state.step
        log = run.Metrics(state.rows, state.best_val)
        sample, diverged_at, interrupted = None, None, False
        tokens_per_step = opts.batch_size * opts.block_size * dist.world_size
        wall = run.WallTime(step, total, opts, reporter, sync=device.type == "cuda")
        started = time.perf_counter()
        log.mark()
        model.train()
        with run.StopFlag(abandon=dist.world_size == 1, model=None if opts.compile else model) as stop:
            if chosen:  # once the setup worked (an error stays one line) and Ctrl-C is caught
                reporter.note(chosen)
            reporter.start(
                "train", "train", total=total, completed=step, loss=log.last_train, val=log.last_val
            )
            try:
                while step < total:
                    for group in optimizer.param_groups:
                        group["lr"] = lr_at(step, schedule, opts)
                    x, y = batch_at(train_batches, opts.seed, dist.rank, step)
                    if graphs:  # a new step: the graphs' outputs of the last one may be overwritten
                        torch.compiler.cudagraph_mark_step_begin()
                    loss = train_step(net, optimizer, scaler, x, y, opts.clip_grad_norm, precision, stop)
                    if loss is None:  # Ctrl-C abandoned the step
                        break
                    log.add_step(loss)
                    step += 1
                    wall.step_done(step)
                    at_eval = step % opts.eval_interval == 0 or step == total
                    at_row = at_eval or step % opts.log_interval == 0
                    if at_row:
                        row, n = log.close(
                            step, lr_at(step - 1, schedule, opts), tokens_per_step, dist, device
                        )
                        if at_eval and len(val_data):
                            val = evaluate(eval_net, val_batches, opts, precision, dist, stop, graphs)
                            log.add_val(
                                row,
                                val,
                                None if val is None else bits_per_char(val, len(val_data), val_chars),
                            )
                        if tb is not None:
                            tb.row(row)
                        reporter.update("train", advance=n, loss=log.last_train, val=log.last_val)
                        if opts.sample_interval and step % opts.sample_interval == 0 and dist.rank == 0:
                            new_sample = greedy_sample(model, tokenizer, prompt, opts.sample_tokens, stop)
                            if new_sample is not None:  # None: a Ctrl-C abandoned it
                                sample = new_sample
                                reporter.log(f"step {step}: {sample!r}")
                                if tb is not None:
                                    tb.text(step, sample)
                        if at_eval:
                            checkpoints.save(step, total, opts, model, optimizer, scaler, log)
                        log.mark()  # the next row times its steps alone
                    if stop.requested(at_row, dist, device):
                        break
                if step < total:  # stopped by Ctrl-C: keep what was trained, if anything was
                    interrupted = True
                    if log.losses:
                        log.close(step, lr_at(step - 1, schedule, opts), tokens_per_step, dist, device)
                    if step > start_step:
                        checkpoints.save(step, total, opts, model, optimizer, scaler, log)
            except run.Diverged as exc:  # the last finite checkpoint stays
                diverged_at, interrupted = exc.step, False
                log.rows = [
                    r
                    for r in log.rows
                    if checkpoints.saved_step is None or r["step"] <= checkpoints.saved_step
                ]
            except KeyboardInterrupt:  # a second Ctrl-C: keep the last complete checkpoint
                interrupted = True
        reporter.finish("train")
        elapsed = time.perf_counter() - started

        # ------------------------------------------------------------------ the summary
        if not interrupted:  # after a Ctrl-C the figure (a second or two) waits for the end of the run
            checkpoints.figure(
                log.rows, title=f"{label}, {Path(opts.txt_file).name if opts.txt_file else 'Grimm'}"
            )
        if tb is not None:
            tb.close()
        if step >= total and not interrupted and diverged_at is None and sample is None and dist.rank == 0:
            with run.StopFlag() as stop:
                sample = greedy_sample(model, tokenizer, prompt, opts.sample_tokens, stop)
    model.eval()
    return TrainResult(
        run_dir=None if session.folder is None else str(session.folder),
        model_type=label,
        num_params=model.num_params(),
        vocab_size=tokenizer.vocab_size,
        device=str(device),
        precision=precision,
        world_size=dist.world_size,
        rank=dist.rank,
        start_step=start_step,
        steps=step,
        total_steps=total,
        train_loss=log.last_train,
        val_loss=log.last_val,
        best_val_loss=log.best_val,
        tokens_per_s=tokens_per_step * log.trained_steps / log.train_seconds if log.train_seconds else None,
        elapsed_s=elapsed,
        sample=sample,
        interrupted=interrupted,
        options=opts.recorded(),
        metrics=log.rows,
        diverged_at=diverged_at,
        checkpoint_step=checkpoints.saved_step,
        val_bpc=next((r["val_bpc"] for r in reversed(log.rows) if r.get("val_bpc") is not None), None),
        model=model,
        tokenizer=tokenizer,
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


def train_step(net, optimizer, scaler, x, y, clip: float, precision: str, stop) -> torch.Tensor | None:
    """One optimizer step on the batch (x, y); returns the loss (on the device, a copy: CUDA
    graphs overwrite their outputs at the next step), or None when a Ctrl-C during the forward
    and backward passes abandoned the step before it changed anything."""
    try:
        with stop.abandonable():
            with autocast(x.device, precision):
                loss = net(x, targets=y)
            scaler.scale(loss).backward()
    except run.Stopped:
        optimizer.zero_grad(set_to_none=True)
        return None
    if clip > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach().clone()


@torch.no_grad()
def evaluate(
    net, batches: Batches, opts: TrainOptions, precision: str, dist, stop, graphs: bool
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
    except run.Stopped:
        return None
    finally:
        net.train()
    return run.all_mean(total.item() / opts.eval_steps, dist, batches.device)
