"""The training loop of ``hw2 gpt train``, in nanoGPT's order: set-up, then the steps, a metrics row
every ``log_interval``, a validation loss and a checkpoint every ``eval_interval``. Step ``s`` draws its
windows from ``(seed, s)`` and its dropout from ``(seed, rank, s)``: a resumed run draws what the
uninterrupted one would have, and N processes of batch B train on the windows of one of batch N x B."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hw2cli.common.device import autocast, check_precision, keep_freed_memory
from hw2cli.common.estimate import Cost, announce
from hw2cli.common.options import OptionError
from hw2cli.common.progress import Reporter
from hw2cli.common.seeding import kept_global_state
from hw2cli.gpt.checkpoint import Checkpoints
from hw2cli.gpt.data import Batches, load_text, split_data, step_seeds
from hw2cli.gpt.model import GPT
from hw2cli.gpt.options import TrainOptions, eval_interval, fill_sizes, total_steps
from hw2cli.gpt.pretrained import model_for
from hw2cli.gpt.sample import greedy_sample, sample_prompt
from hw2cli.gpt.saved import restore
from hw2cli.gpt.session import Session, check_memory, check_text, session
from hw2cli.gpt.stop import StopFlag, Stopped
from hw2cli.gpt.tensorboard import TensorBoardLog
from hw2cli.gpt.tokens import BPETokenizer, Tokenizer, bits_per_char, encode_cached, make_tokenizer


@dataclass
class TrainResult:
    """What a training run did; ``metrics``: metrics.csv's rows; ``model``, ``tokenizer``: not in the JSON."""

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


class Diverged(Exception):
    """The loss (or a weight) stopped being finite at step ``args[0]``; the last checkpoint stays."""


def train(
    opts: TrainOptions, reporter: Reporter | None = None, given: Collection[str] | None = None
) -> TrainResult:
    """Train (with ``opts.resume``: continue) a GPT. ``given``: the options the caller set (default:
    those that differ from their defaults); resuming refuses one that differs from the record."""
    with kept_global_state(), session(opts, given) as run:  # seeds, TF32: as the caller had them
        reporter = reporter if reporter is not None and run.dist.rank == 0 else Reporter()
        t = Trainer(run, reporter)
        started = time.perf_counter()
        with StopFlag(abandon=run.dist.world_size == 1) as stop:
            if t.chosen:  # once the setup worked (an error stays one line) and Ctrl-C is caught
                reporter.note(t.chosen)
            t.loop(stop)
        reporter.finish("train")
        elapsed = time.perf_counter() - started
        if not t.interrupted:  # after a Ctrl-C the figure (a second or two) waits for the end of the run
            t.checkpoints.figure(t.rows, f"{t.label}, {Path(t.opts.txt_file or 'Grimm').name}")
        t.tb.close()
        done = t.step >= t.total and not t.interrupted and t.diverged_at is None
        if done and t.sample is None and run.dist.rank == 0:
            with StopFlag() as stop:
                t.sample = greedy_sample(t.model, t.tokenizer, t.prompt, t.opts.sample_tokens, stop)
    t.model.eval()
    return TrainResult(
        run_dir=None if run.folder is None else str(run.folder),
        model_type=t.label,
        num_params=t.model.num_params(),
        vocab_size=t.tokenizer.vocab_size,
        device=str(run.device),
        precision=t.precision,
        world_size=run.dist.world_size,
        rank=run.dist.rank,
        start_step=t.start_step,
        steps=t.step,
        total_steps=t.total,
        train_loss=t.last_train,
        val_loss=t.last_val,
        best_val_loss=t.best_val,
        tokens_per_s=t.tokens_per_step * t.timed_steps / t.timed_s if t.timed_s else None,
        elapsed_s=elapsed,
        sample=t.sample,
        interrupted=t.interrupted,
        options=t.opts.recorded(),
        metrics=t.rows,
        diverged_at=t.diverged_at,
        checkpoint_step=t.checkpoints.saved_step,
        val_bpc=next((r["val_bpc"] for r in reversed(t.rows) if r.get("val_bpc") is not None), None),
        model=t.model,
        tokenizer=t.tokenizer,
    )


class Trainer:
    """One run: its data, model and optimizer, and what the loop reached (``step``, ``rows``...)."""

    def __init__(self, run: Session, reporter: Reporter) -> None:
        dist, device, resumed = run.dist, run.device, run.run
        opts, self.chosen = (run.opts, None) if resumed else fill_sizes(run.opts, device.type)
        self.dist, self.device, self.reporter = dist, device, reporter
        self.precision = check_precision(opts.precision, device)
        if device.type == "cuda":  # TF32 tensor cores for fp32 matmuls, as nanoGPT does
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        elif device.type == "cpu":
            keep_freed_memory()  # a gpt-micro step page-faulted about 1,200 times (docs/benchmarks.md)
        if opts.tensorboard:  # fail before any work when tensorboard is missing
            TensorBoardLog.summary_writer_class()

        # ------------------------------------------------------------------ data
        text, text_path = load_text(opts.txt_file)
        opts = check_text(opts, text, text_path, resumed)
        tok = resumed.tokenizer if resumed else make_tokenizer(opts.tokenizer, text, opts.init_from)
        # a BPE text's ids: a memory-mapped token file
        ids = encode_cached(text, tok) if isinstance(tok, BPETokenizer) else torch.tensor(tok.encode(text))
        train_data, val_data = split_data(ids, opts.val_fraction, opts.block_size)
        self.total = total_steps(opts, len(train_data), dist.world_size)
        # the schedule keeps the length the run started with when a resumed run is extended
        self.schedule = total_steps(run.recorded or opts, len(train_data), dist.world_size)
        self.opts = opts = dataclasses.replace(opts, eval_interval=eval_interval(opts, self.schedule))
        self.tokens_per_step = opts.batch_size * opts.block_size * dist.world_size
        shares = (opts.block_size, opts.batch_size, opts.seed, dist.rank, dist.world_size, device)
        self.train_batches = Batches(train_data, *shares)
        self.val_batches = Batches(val_data, *shares, count=opts.eval_steps) if len(val_data) else None
        self.val_ids, self.val_chars = len(val_data), len(tok.decode(val_data)) if len(val_data) else 0
        self.prompt = sample_prompt(tok, val_data if len(val_data) else train_data)
        self.tokenizer = tok

        # ------------------------------------------------------------------ model and optimizer
        torch.manual_seed(opts.seed)
        self.model = model = model_for(opts, tok.vocab_size, resumed and resumed.model_config).to(device)
        check_memory(model, opts, device)
        self.optimizer = model.configure_optimizers(opts.weight_decay, opts.lr, (0.9, 0.95), device.type)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")
        # one process on a GPU: CUDA graphs, one launch per pass instead of hundreds of small kernels;
        # on a CPU Inductor's C++ wrapper (no Python line per kernel, ~5% a step)
        self.graphs = opts.compile and device.type == "cuda" and dist.world_size == 1
        self.net = self.eval_net = model
        if opts.compile and device.type == "cpu":  # the validation stays eager: compiling it costs more
            self.net = torch.compile(model, options={"cpp_wrapper": True})
        elif opts.compile:
            self.net = self.eval_net = torch.compile(model, mode="reduce-overhead" if self.graphs else None)
        if dist.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.net = DDP(self.net, device_ids=[device.index] if device.type == "cuda" else None)
        # the generators of a step's dropout: seeding them costs a microsecond, torch.manual_seed 0.2-0.6 ms
        self.rngs = [torch.default_generator]
        if device.type == "cuda":
            index = torch.cuda.current_device() if device.index is None else device.index
            self.rngs.append(torch.cuda.default_generators[index])
        self.step, self.best_val, self.rows = restore(resumed, model, self.optimizer, self.scaler, device)
        if self.total < self.step:
            raise OptionError(
                f"{{{'max_steps' if opts.max_steps is not None else 'epochs'}}} asks for {self.total} steps, "
                f"fewer than the {self.step} the run reached; give at least {self.step} steps to extend it, "
                "or start a new run"
            )
        first = None if resumed else (model.config, opts.recorded(), tok)
        self.checkpoints = Checkpoints(run.folder, dist.rank, first, self.step if resumed else None)
        self.tb = TensorBoardLog(opts.tensorboard if dist.rank == 0 else None)
        self.label = Path(opts.init_from).name if opts.init_from else opts.model_type
        self.start_step, self.sample, self.diverged_at, self.interrupted = self.step, None, None, False
        self.last_train = next((r["train_loss"] for r in reversed(self.rows)), None)
        self.last_val = next((r["val_loss"] for r in reversed(self.rows) if r["val_loss"] is not None), None)
        self.losses: list[torch.Tensor] = []
        self.since, self.timed_steps, self.timed_s = 0.0, 0, 0.0  # this process's steps, for tokens/s

    def loop(self, stop: StopFlag) -> None:
        """The steps up to ``total``, until a Ctrl-C or a loss that is not finite stops them."""
        opts, rank = self.opts, self.dist.rank
        self.reporter.start(
            "train", "train", total=self.total, completed=self.step, loss=self.last_train, val=self.last_val
        )
        self.since, estimating = time.perf_counter(), True
        self.model.train()
        try:
            while self.step < self.total:
                for group in self.optimizer.param_groups:
                    group["lr"] = lr_at(self.step, self.schedule, opts)
                dropout_seed = step_seeds(opts.seed, rank, self.step)[1]
                for rng in self.rngs:
                    rng.manual_seed(dropout_seed)
                x, y = self.train_batches(self.step)
                if self.graphs:  # a new step: the graphs' outputs of the last one may be overwritten
                    torch.compiler.cudagraph_mark_step_begin()
                loss = train_step(
                    self.net, self.optimizer, self.scaler, x, y, opts.clip_grad_norm, self.precision
                )
                self.losses.append(loss)
                self.step += 1
                estimating = estimating and self.estimate()
                at_eval = self.step % opts.eval_interval == 0 or self.step == self.total
                at_row = at_eval or self.step % opts.log_interval == 0
                if at_row:
                    self.row(at_eval, stop)
                one = self.dist.world_size == 1  # one process stops at once, several agree at a row
                if stop.set if one else at_row and self.dist.mean(float(stop.set), self.device) > 0:
                    break
            if self.step < self.total:  # stopped by Ctrl-C: keep what was trained, if anything was
                self.interrupted = True
                if self.losses:
                    self.close_row()
                if self.step > self.start_step:
                    self.save()
        except Diverged as exc:  # the last finite checkpoint stays
            self.diverged_at, self.interrupted, saved = exc.args[0], False, self.checkpoints.saved_step
            self.rows = [r for r in self.rows if saved is None or r["step"] <= saved]
        except KeyboardInterrupt:  # a second Ctrl-C: keep the last complete checkpoint
            self.interrupted = True

    def estimate(self) -> bool:
        """Announce the wall time once (then False), timed on a second or five steps after the first."""
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        now, timed = time.perf_counter(), self.step - self.start_step - 1
        self.t0 = now if timed == 0 else self.t0  # the first step (start-up, compilation) is not timed
        if timed == 0 or (now - self.t0 < 1.0 and timed < 5 and self.step < self.total):
            return True
        per_step, left = (now - self.t0) / timed, self.total - self.step
        evals = (left // self.opts.eval_interval + 1) * self.opts.eval_steps / 3
        basis = f"{timed} timed step{'s' if timed > 1 else ''} of {per_step:.2f} s, {left:,} to go, evaluation included"
        shorter = "give {max_steps} or a smaller {model_type}"
        announce(Cost(per_step, left + evals, basis), "the training", shorter, self.reporter)
        return False

    def close_row(self) -> tuple[dict[str, Any], int]:
        """Append the row of the steps since the last; Diverged names the first not finite loss."""
        stacked = torch.stack(self.losses).float()
        mean = self.dist.mean(stacked.mean().item(), self.device)
        n, seconds = len(self.losses), max(time.perf_counter() - self.since, 1e-9)
        if not math.isfinite(mean):
            bad = (~torch.isfinite(stacked)).nonzero()
            raise Diverged(self.step - n + 1 + (int(bad[0]) if len(bad) else n - 1))
        lr = lr_at(self.step - 1, self.schedule, self.opts)
        row = {"step": self.step, "train_loss": mean, "val_loss": None, "lr": lr}
        self.rows.append({**row, "tokens_per_s": self.tokens_per_step * n / seconds})
        self.timed_steps, self.timed_s = self.timed_steps + n, self.timed_s + seconds
        self.losses, self.last_train = [], mean
        return self.rows[-1], n

    def row(self, at_eval: bool, stop: StopFlag) -> None:
        """This step's metrics row; at an evaluation step the validation loss and a checkpoint."""
        opts, step = self.opts, self.step
        row, n = self.close_row()
        val = self.evaluate(stop) if at_eval and self.val_batches is not None else None
        if val is not None:  # None: no validation, or a Ctrl-C abandoned it
            if not math.isfinite(val):
                self.rows.pop()
                raise Diverged(step)
            self.last_val = val
            self.best_val = val if self.best_val is None else min(self.best_val, val)
            row["val_loss"], row["val_bpc"] = val, bits_per_char(val, self.val_ids, self.val_chars)
        self.tb.row(row)
        self.reporter.update("train", advance=n, loss=self.last_train, val=self.last_val)
        if opts.sample_interval and step % opts.sample_interval == 0 and self.dist.rank == 0:
            sample = greedy_sample(self.model, self.tokenizer, self.prompt, opts.sample_tokens, stop)
            if sample is not None:  # None: a Ctrl-C abandoned it
                self.sample = sample
                self.reporter.log(f"step {step}: {sample!r}")
                self.tb.text(step, sample)
        if at_eval:
            self.save()
        self.since = time.perf_counter()  # the next row times its steps alone

    @torch.no_grad()
    def evaluate(self, stop: StopFlag) -> float | None:
        """Mean loss over the ``eval_steps`` fixed validation batches (None: a Ctrl-C abandoned
        it), summed on the device in float64: the host waits once per evaluation."""
        net, batches = self.eval_net, self.val_batches
        total = torch.zeros((), dtype=torch.float64, device=batches.device)
        net.eval()
        try:
            with stop.abandonable():
                for i in range(self.opts.eval_steps):
                    x, y = batches(i)
                    if self.graphs:
                        torch.compiler.cudagraph_mark_step_begin()
                    with autocast(x.device, self.precision):
                        total += net(x, targets=y).double()
        except Stopped:
            return None
        finally:
            net.train()
        return self.dist.mean(total.item() / self.opts.eval_steps, self.device)

    def save(self) -> None:
        """Commit a checkpoint, unless a weight is no longer finite (Diverged, on every process)."""
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise Diverged(self.step)
        state = {
            "step": self.step,
            "total_steps": self.total,
            "max_steps": self.opts.max_steps,  # the target asked for, which resuming continues to
            "epochs": self.opts.epochs,
            "best_val_loss": self.best_val,
            "finished": self.step >= self.total,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
        }
        self.checkpoints.save(state, self.model, self.optimizer, self.rows)


def lr_at(step: int, total: int, opts: TrainOptions) -> float:
    """Linear warm-up to ``lr``, then constant or cosine decay to ``min_lr`` at ``total`` (and
    ``min_lr`` after it: an extended run keeps the schedule it started with)."""
    if step < opts.warmup_steps:
        return opts.lr * (step + 1) / (opts.warmup_steps + 1)
    if opts.lr_schedule == "constant":
        return opts.lr
    min_lr = opts.lr / 10 if opts.min_lr is None else opts.min_lr
    ratio = min(1.0, (step - opts.warmup_steps) / max(1, total - opts.warmup_steps))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (opts.lr - min_lr)


def train_step(net, optimizer, scaler, x, y, clip: float, precision: str) -> torch.Tensor:
    """One optimizer step; returns the loss (a copy: CUDA graphs overwrite their outputs)."""
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
