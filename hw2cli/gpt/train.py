"""The trainer behind ``hw2 gpt train``: next-character prediction on a book.

One loop serves a single process and ``torchrun --nproc-per-node N`` (DistributedDataParallel,
gloo on the CPU, nccl on GPUs; every rank draws its own batches, rank 0 writes the run
directory). The random numbers of step ``s`` on rank ``r`` (batch windows, dropout) are seeded
from ``(seed, r, s)``, so a resumed run draws exactly what the uninterrupted run would have.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hw2cli.common.device import autocast, check_precision, resolve_device
from hw2cli.common.errors import Hw2Error
from hw2cli.common.io import check_writable_dir
from hw2cli.common.progress import Reporter
from hw2cli.gpt import checkpoint as ckpt
from hw2cli.gpt.data import CharTokenizer, get_batch, load_text, split_data
from hw2cli.gpt.model import GPT, POS_EMBS, PRESETS, GPTConfig

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


def validate(opts: TrainOptions) -> None:
    """Raise Hw2Error for an option outside its range (before any work)."""
    if opts.model_type not in PRESETS:
        raise Hw2Error(f"unknown --model-type {opts.model_type!r}; use one of {', '.join(PRESETS)}")
    if opts.pos_emb not in POS_EMBS:
        raise Hw2Error(f"unknown --pos-emb {opts.pos_emb!r}; use one of {', '.join(POS_EMBS)}")
    if opts.lr_schedule not in SCHEDULES:
        raise Hw2Error(f"unknown --lr-schedule {opts.lr_schedule!r}; use constant or cosine")
    positive_ints = {
        "--block-size": opts.block_size, "--batch-size": opts.batch_size, "--epochs": opts.epochs,
        "--max-steps": opts.max_steps, "--eval-interval": opts.eval_interval,
        "--eval-steps": opts.eval_steps, "--log-interval": opts.log_interval,
    }
    for name, value in positive_ints.items():
        if value is not None and value < 1:
            raise Hw2Error(f"{name} must be at least 1, got {value}")
    for name, value in {"--warmup-steps": opts.warmup_steps, "--sample-interval": opts.sample_interval,
                        "--sample-tokens": opts.sample_tokens}.items():
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

    def __enter__(self) -> "_StopFlag":
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
    def from_env(cls) -> "_Dist":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world)


def resume_options(run_dir: str | os.PathLike, opts: TrainOptions) -> TrainOptions:
    """The options saved in ``run_dir``; ``opts`` may change only ``max_steps``, ``epochs``
    (to extend a run) and ``device``."""
    _, saved, _ = ckpt.load_config(run_dir)
    if "abs_emb" in saved:  # runs written before pos_emb
        saved.setdefault("pos_emb", "learned" if saved.pop("abs_emb") else "rope")
    known = {f.name for f in fields(TrainOptions)}
    resumed = TrainOptions(**{k: v for k, v in saved.items() if k in known})
    resumed.out = str(run_dir)
    resumed.device = opts.device
    if opts.max_steps is not None or opts.epochs is not None:
        resumed.max_steps, resumed.epochs = opts.max_steps, opts.epochs
    return resumed


def train(opts: TrainOptions, reporter: Reporter | None = None, resume: str | os.PathLike | None = None) -> TrainResult:
    """Train (or, with ``resume``, continue) a character-level GPT; see the module docstring."""
    if resume is not None:
        opts = resume_options(resume, opts)
    validate(opts)
    dist = _Dist.from_env()
    device = resolve_device(opts.device)
    if device.type == "cuda" and dist.world_size > 1:
        device = torch.device("cuda", dist.local_rank)
    precision = check_precision(opts.precision, device)
    if device.type == "cuda":  # TF32 tensor cores for fp32 matmuls, as nanoGPT does
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    reporter = reporter if (reporter is not None and dist.rank == 0) else Reporter()
    run_dir = check_writable_dir(opts.out, "--out run directory")
    text, text_path = load_text(opts.txt_file)
    if opts.txt_file is not None:  # saved absolute, so --resume works from any folder
        opts = replace(opts, txt_file=str(text_path.resolve()))
    tokenizer = CharTokenizer.from_text(text)
    if resume is not None:
        _, _, saved_tok = ckpt.load_config(run_dir)
        if saved_tok != tokenizer:
            raise Hw2Error(f"the text of {opts.txt_file or 'the default corpus'} has another vocabulary than {run_dir}; resume with the same --txt-file")
    data = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    train_data, val_data = split_data(data, opts.val_fraction, opts.block_size)
    world_batch = opts.batch_size * dist.world_size
    if opts.max_steps is not None:
        total = opts.max_steps
    else:
        total = (opts.epochs or 3) * math.ceil((len(train_data) - opts.block_size) / world_batch)

    if dist.world_size > 1:
        import torch.distributed as tdist

        if device.type == "cuda":
            torch.cuda.set_device(device)
        tdist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        return _run(opts, dist, device, precision, reporter, run_dir, tokenizer, train_data, val_data, total, resume is not None)
    finally:
        if dist.world_size > 1:
            import torch.distributed as tdist

            tdist.destroy_process_group()


def _run(opts, dist, device, precision, reporter, run_dir, tokenizer, train_data, val_data, total, resuming) -> TrainResult:
    torch.manual_seed(opts.seed)
    config = GPTConfig.from_preset(
        opts.model_type, vocab_size=tokenizer.vocab_size, block_size=opts.block_size,
        embd_pdrop=opts.dropout, resid_pdrop=opts.dropout, attn_pdrop=opts.dropout,
        use_flash_attn=opts.flash_attn, pos_emb=opts.pos_emb, attn_scale=opts.attn_scale,
    )
    model = GPT(config).to(device)
    optimizer = model.configure_optimizers(opts.weight_decay, opts.lr, betas=(0.9, 0.95), device_type=device.type)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    step, rows, best_val = 0, [], None
    if resuming:
        state = ckpt.load_training_state(run_dir, optimizer)
        ckpt.check_consistent(run_dir, state["step"])
        ckpt.load_weights(model, run_dir / "model.safetensors")
        model.to(device)
        step, best_val = state["step"], state.get("best_val_loss")
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        rows = [r for r in ckpt.read_metrics(run_dir) if r["step"] <= step]
    elif dist.rank == 0:
        ckpt.clear_run(run_dir)
        ckpt.save_config(run_dir, config, asdict(opts), tokenizer)
    start_step = step

    net = torch.compile(model) if opts.compile else model
    if dist.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP
        import torch.distributed as tdist

        train_net = DDP(net, device_ids=[device.index] if device.type == "cuda" else None)
    else:
        train_net = net

    def all_mean(value: float) -> float:
        if dist.world_size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=device)
        tdist.all_reduce(t)
        return t.item() / dist.world_size

    @torch.no_grad()
    def evaluate() -> float | None:
        if len(val_data) == 0:
            return None
        model.eval()
        gen = torch.Generator().manual_seed(_step_seeds(opts.seed, dist.rank, 0, purpose=1)[0])
        total_loss = 0.0
        for _ in range(opts.eval_steps):
            x, y = get_batch(val_data, opts.block_size, opts.batch_size, gen)
            with autocast(device, precision):
                logits = net(x.to(device))
            total_loss += F.cross_entropy(logits.float().flatten(0, 1), y.to(device).flatten()).item()
        model.train()
        return all_mean(total_loss / opts.eval_steps)

    prompt_text = SAMPLE_PROMPT if set(SAMPLE_PROMPT) <= set(tokenizer.chars) else tokenizer.decode(train_data[:16])

    @torch.no_grad()
    def greedy_sample() -> str:
        model.eval()
        idx = torch.tensor([tokenizer.encode(prompt_text)], device=device)
        out = model.generate(idx, opts.sample_tokens, do_sample=False)
        model.train()
        return tokenizer.decode(out[0].tolist())

    def save(finished: bool) -> None:
        if dist.rank != 0:
            return
        ckpt.save_weights(run_dir, model, step)
        ckpt.save_training_state(run_dir, optimizer, {
            "step": step, "total_steps": total, "best_val_loss": best_val, "finished": finished,
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        })
        ckpt.write_metrics(run_dir, rows)

    tokens_per_step = opts.batch_size * opts.block_size * dist.world_size
    reporter.start("train", f"train {opts.model_type}", total=total, completed=step,
                   loss=float("nan"), val=float("nan"), tps=0.0)
    batch_gen = torch.Generator()
    loss_sum = torch.zeros((), device=device)
    n_interval, interval_time, train_time, trained_steps = 0, 0.0, 0.0, 0
    last = {
        "train": next((r["train_loss"] for r in reversed(rows)), None),
        "val": next((r["val_loss"] for r in reversed(rows) if r["val_loss"] is not None), None),
        "sample": None,
    }
    interrupted = False
    started = time.perf_counter()
    model.train()
    with _StopFlag() as stop:
        try:
            while step < total:
                t0 = time.perf_counter()
                for group in optimizer.param_groups:
                    group["lr"] = lr_now = lr_at(step, total, opts)
                batch_seed, dropout_seed = _step_seeds(opts.seed, dist.rank, step)
                batch_gen.manual_seed(batch_seed)
                torch.manual_seed(dropout_seed)
                x, y = get_batch(train_data, opts.block_size, opts.batch_size, batch_gen)
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                with autocast(device, precision):
                    logits = train_net(x)
                loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
                scaler.scale(loss).backward()
                if opts.clip_grad_norm > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), opts.clip_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                loss_sum += loss.detach()
                n_interval += 1
                do_eval = step % opts.eval_interval == 0 or step == total
                do_log = do_eval or step % opts.log_interval == 0
                if not do_log:
                    interval_time += time.perf_counter() - t0
                    if dist.world_size == 1 and stop.set:
                        break
                    continue
                last["train"] = all_mean(loss_sum.item() / n_interval)
                interval_time += time.perf_counter() - t0
                tps = tokens_per_step * n_interval / interval_time
                train_time += interval_time
                trained_steps += n_interval
                row = {"step": step, "train_loss": last["train"], "val_loss": None, "lr": lr_now, "tokens_per_s": tps}
                if do_eval:
                    row["val_loss"] = last["val"] = evaluate()
                    if last["val"] is not None and (best_val is None or last["val"] < best_val):
                        best_val = last["val"]
                rows.append(row)
                reporter.update("train", advance=n_interval, loss=last["train"],
                                val=last["val"] if last["val"] is not None else float("nan"), tps=tps)
                if opts.sample_interval and step % opts.sample_interval == 0 and dist.rank == 0:
                    last["sample"] = greedy_sample()
                    reporter.log(f"step {step}: {last['sample']!r}")
                if do_eval:
                    save(finished=step >= total)
                loss_sum.zero_()
                n_interval, interval_time = 0, 0.0
                stop_now = float(stop.set)
                if dist.world_size > 1:
                    stop_now = all_mean(stop_now)
                if stop_now > 0:
                    break
            if step < total:
                interrupted = True
                if n_interval:
                    last["train"] = loss_sum.item() / n_interval
                    rows.append({"step": step, "train_loss": last["train"], "val_loss": None,
                                 "lr": lr_now, "tokens_per_s": tokens_per_step * n_interval / max(interval_time, 1e-9)})
                    train_time += interval_time
                    trained_steps += n_interval
                save(finished=False)
        except KeyboardInterrupt:  # a second Ctrl-C: keep the last complete checkpoint
            interrupted = True
    reporter.finish("train")
    if dist.rank == 0 and rows:
        ckpt.plot_loss(run_dir, rows, title=f"{opts.model_type}, {Path(opts.txt_file).name if opts.txt_file else 'Grimm'}")
    if step >= total and last["sample"] is None and dist.rank == 0 and not interrupted:
        last["sample"] = greedy_sample()
    return TrainResult(
        run_dir=str(run_dir), model_type=opts.model_type, num_params=model.num_params(),
        vocab_size=tokenizer.vocab_size, device=str(device), precision=precision,
        world_size=dist.world_size, rank=dist.rank, start_step=start_step, steps=step, total_steps=total,
        train_loss=last["train"], val_loss=last["val"], best_val_loss=best_val,
        tokens_per_s=(tokens_per_step * trained_steps / train_time) if train_time > 0 else None,
        elapsed_s=time.perf_counter() - started, sample=last["sample"], interrupted=interrupted,
        options=asdict(opts), metrics=rows,
    )
