"""`hw2 padding-bench` as a library call: every (conv type, round) network trained for Tables 1
and 2, stacked on a GPU, each alone on one thread of a worker process on the CPU."""

from __future__ import annotations

import contextlib
import functools
import heapq
import queue
import signal
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import torch
import torch.multiprocessing as mp

from hw2cli.common.device import check_precision, keep_freed_memory, resolve_device
from hw2cli.common.estimate import Cost, announce, seconds_per_call
from hw2cli.common.options import OptionError
from hw2cli.common.peak import matmul_peak_gflops
from hw2cli.common.progress import Reporter
from hw2cli.common.seeding import kept_global_state
from hw2cli.common.threads import cpu_cores
from hw2cli.padding import CONV
from hw2cli.padding.data import SIZES, make_data
from hw2cli.padding.model import PaddingNetConfig
from hw2cli.padding.options import PaddingOptions
from hw2cli.padding.train import RoundOutcome, TrainSettings, train_flops, train_round, train_rounds_batched

PATHS = ("auto", "cpu-processes", "sequential", "batched")
BASIS = (
    "one timed training step per conv type, scaled by the FLOPs of every round; early stopping often "
    "ends a round sooner"
)


@dataclass
class PaddingBenchResult:
    """Per-round outcomes of every conv type, the settings and the speed of the run."""

    settings: dict
    path: str  # batched | cpu-processes | sequential
    device: str
    outcomes: dict[str, list[RoundOutcome]] = field(default_factory=dict)  # conv type -> rounds done
    seconds: float = 0.0
    flop: float = 0.0  # useful FLOPs of the training done
    interrupted: bool = False
    workers: int = 1  # processes that trained (one thread each on the CPU)
    error: str | None = None  # a worker's failure in one line (the rounds finished before it are kept)
    peak_gflops: float | None = None  # measured matmul peak of the cores (or GPU) that trained

    @property
    def peak_fraction(self) -> float | None:
        return self.gflops / self.peak_gflops if self.peak_gflops and self.seconds > 0 else None

    @property
    def rounds_done(self) -> int:
        return sum(len(v) for v in self.outcomes.values())

    @property
    def gflops(self) -> float:
        return self.flop / self.seconds / 1e9 if self.seconds > 0 else 0.0

    def summary(self, conv_type: str, metric: str) -> tuple[float, float]:
        """Mean and population standard deviation of ``metric`` (e.g. ``test_acc``) over rounds."""
        values = [getattr(o, metric) for o in self.outcomes.get(conv_type, [])]
        if not values:
            return float("nan"), float("nan")
        return statistics.fmean(values), statistics.pstdev(values)


_worker: dict = {}  # a CPU worker process's data, progress queue and start-up error


class WorkerError(RuntimeError):
    """A worker process failed (the message: one line naming the cause)."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _init_worker(data_args: dict, progress: mp.Queue) -> None:
    # An initializer that raises would be restarted forever: its first job reports the error.
    for sig in (signal.SIGINT, signal.SIGTERM):  # the parent handles them, and kills us
        signal.signal(sig, signal.SIG_IGN)
    try:
        torch.set_num_threads(1)
        keep_freed_memory()
        _worker["data"] = make_data(**data_args)
    except Exception as exc:  # noqa: BLE001 -- reported by _run_job as the worker's error
        _worker["init_error"] = f"worker failed at start: {_one_line(exc)}"
    _worker["progress"] = progress


def _run_job(config: PaddingNetConfig, seed: int, settings: TrainSettings) -> RoundOutcome:
    if "init_error" in _worker:
        raise WorkerError(_worker["init_error"])
    torch.set_num_threads(1)
    progress = _worker["progress"]
    outcome = train_round(config, seed, _worker["data"], settings, on_epoch=lambda: progress.put(1))
    outcome.state = None
    return outcome


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """Hold off Ctrl-C and SIGTERM here and in the processes started meanwhile (they inherit the
    mask, so the workers never see them); this process gets them on leaving."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no process groups to share Ctrl-C
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _cpu_processes(jobs, data_args, settings, workers, reporter, done) -> bool:
    """Run ``jobs`` [(config, seed)] in ``workers`` spawned processes; True on Ctrl-C. A failed
    worker raises WorkerError naming the cause, after the rounds finished before it went to ``done``."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")
    progress = ctx.Queue()
    pool = None
    try:
        with _sigint_held():  # the processes start on submit; a Ctrl-C meanwhile comes after
            pool = ProcessPoolExecutor(
                workers, mp_context=ctx, initializer=_init_worker, initargs=(data_args, progress)
            )
            pending = {pool.submit(_run_job, cfg, seed, settings) for cfg, seed in jobs}
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            with contextlib.suppress(queue.Empty):
                while True:
                    progress.get_nowait()
                    reporter.update("epochs", 1)
            for future in finished:  # keep every round that finished before raising a failure
                if future.exception() is None:
                    done(future.result())
            failure = next((f.exception() for f in finished if f.exception() is not None), None)
            if isinstance(failure, BrokenProcessPool):
                raise WorkerError("a worker process died (killed, or out of memory)")
            if isinstance(failure, WorkerError):
                raise WorkerError(str(failure))
            if failure is not None:
                raise WorkerError(f"a worker failed: {_one_line(failure)}")
        return False
    except KeyboardInterrupt:
        return True
    finally:
        if pool is not None:
            for process in list(getattr(pool, "_processes", {}).values()):  # stop running jobs now
                process.kill()  # they ignore SIGTERM
            pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _cpu_thread(dev: torch.device) -> Iterator[None]:
    """One intra-op thread on the CPU, as in the worker processes (the same arithmetic)."""
    with kept_global_state():
        torch.set_num_threads(1 if dev.type == "cpu" else torch.get_num_threads())
        yield


def seconds_per_flop(
    configs: list[PaddingNetConfig], path: str, settings: TrainSettings, dev: torch.device, rounds: int
) -> dict[str, float]:
    """Seconds per training FLOP of each conv type, from one timed epoch of one batch through the
    run's trainer (after an untimed one: a process's first step pays set-up costs)."""
    batch, models = settings.batch_size, rounds if path == "batched" else 1
    data = make_data(0, n_train=batch, n_val=1, n_test=1)
    one_epoch = replace(settings, epochs=1)
    sync = functools.partial(torch.cuda.synchronize, dev) if dev.type == "cuda" else None

    def step(cfg: PaddingNetConfig) -> None:
        if path == "batched":
            list(train_rounds_batched([cfg], list(range(rounds)), data, one_epoch, dev))
        else:
            train_round(cfg, 0, data, one_epoch, dev)

    rates = {}
    with _cpu_thread(dev):
        for i, cfg in enumerate(configs):
            seconds = seconds_per_call(functools.partial(step, cfg), calls=1, warmup=int(i == 0), sync=sync)
            rates[cfg.conv_type] = seconds / (models * train_flops(cfg, 1, batch, 1, 1))
    return rates


def estimate_seconds(
    jobs: list, path: str, settings: TrainSettings, dev: torch.device, sizes: dict[str, int], workers: int
) -> float:
    """Wall time of ``jobs`` [(config, round)] in this order on ``workers`` processes: each conv
    type's timed rate times each round's FLOPs, every epoch trained."""
    configs = list({cfg.conv_type: cfg for cfg, _ in jobs}.values())
    rounds = len(jobs) // len(configs)
    rate = seconds_per_flop(configs, path, settings, dev, rounds)
    n = (sizes["train"], sizes["val"], sizes["test"])
    return wall_seconds([rate[c.conv_type] * train_flops(c, settings.epochs, *n) for c, _ in jobs], workers)


def wall_seconds(round_seconds: list[float], workers: int) -> float:
    """Wall time of rounds handed in this order to the first of ``workers`` processes free."""
    free = [0.0] * workers
    for seconds in round_seconds:
        heapq.heapreplace(free, free[0] + seconds)
    return max(free)


def _recorded(opts: PaddingOptions, s: TrainSettings, sizes: dict[str, int]) -> dict:
    optimizer = {"name": "Adadelta", "lr": s.lr, "rho": s.rho, "eps": s.eps, "weight_decay": s.weight_decay}
    recorded = {"net": opts.net, "conv_types": opts.types, "rounds": opts.rounds, "epochs": opts.epochs}
    recorded |= {"precision": s.precision, "seed": opts.seed, "independent_val": opts.independent_val}
    recorded |= {"data_sizes": sizes, "batch_size": s.batch_size, "patience": s.patience}
    return recorded | {"optimizer": optimizer}


def _train(
    result: PaddingBenchResult, jobs, data_args: dict, settings: TrainSettings, dev, reporter, done
) -> None:
    if result.path == "cpu-processes":
        try:
            result.interrupted = _cpu_processes(jobs, data_args, settings, result.workers, reporter, done)
        except WorkerError as exc:
            result.error = str(exc)
        return
    data = make_data(**data_args)
    if result.path == "sequential":
        if dev.type == "cpu":
            keep_freed_memory()  # as the worker processes do (docs/benchmarks.md)
        with _cpu_thread(dev):
            for cfg, r in jobs:
                done(train_round(cfg, r, data, settings, dev, on_epoch=lambda: reporter.update("epochs", 1)))
        return
    configs = list({cfg.conv_type: cfg for cfg, _ in jobs}.values())
    on_epoch = functools.partial(reporter.update, "epochs")  # n network-epochs trained
    for outcome in train_rounds_batched(
        configs, list(range(result.settings["rounds"])), data, settings, dev, on_epoch
    ):
        done(outcome)


def run_padding_bench(
    opts: PaddingOptions,
    reporter: Reporter | None = None,
    *,
    path: str = "auto",
    data_sizes: dict[str, int] | None = None,
    settings: TrainSettings | None = None,
) -> PaddingBenchResult:
    """Train ``opts.rounds`` networks per conv type of ``opts.net``. ``path`` forces a trainer
    (``auto``: batched on a GPU, worker processes on the CPU); ``data_sizes`` / ``settings``
    shrink the work (tests). Ctrl-C returns the finished rounds with ``interrupted=True``."""
    reporter = reporter or Reporter()
    if path not in PATHS:
        raise ValueError(f"unknown path {path!r}; use one of {', '.join(PATHS)}")
    dev = resolve_device(opts.device)
    precision = check_precision(opts.precision, dev)
    if path == "auto":
        path = "batched" if dev.type == "cuda" else "cpu-processes"
    if path == "cpu-processes" and dev.type != "cpu":
        raise OptionError("the cpu-processes path runs on the CPU only; use {device} cpu")
    sizes = {**SIZES, **(data_sizes or {})}
    data_args = {"seed": opts.seed, "independent_val": opts.independent_val}
    data_args |= {f"n_{k}": n for k, n in sizes.items()}
    cpu_layout = dev.type == "cpu" and path != "batched"
    settings = replace(
        settings or TrainSettings(), epochs=opts.epochs, precision=precision, channels_last=cpu_layout
    )
    result = PaddingBenchResult(settings=_recorded(opts, settings, sizes), path=path, device=str(dev))
    configs = {ct: PaddingNetConfig(opts.net, ct) for ct in opts.types}
    jobs = [(configs[ct], r) for ct in opts.types for r in range(opts.rounds)]
    reporter.start("rounds", f"{opts.net} rounds", total=len(jobs))
    reporter.start("epochs", "epochs", total=len(jobs) * opts.epochs)

    def done(o: RoundOutcome) -> None:
        result.outcomes.setdefault(o.conv_type, []).append(o)
        result.outcomes[o.conv_type].sort(key=lambda o: o.round)
        result.flop += train_flops(configs[o.conv_type], o.epochs, *sizes.values())
        reporter.update("rounds", 1)
        reporter.update("epochs", opts.epochs - o.epochs)  # early stopping skips the rest
        reporter.log(
            f"{o.conv_type} round {o.round + 1}: val {o.val_acc:.2f}% test {o.test_acc:.2f}% "
            f"({o.epochs} epochs, {o.seconds:.1f} s)"
        )

    if path == "cpu-processes":
        result.workers = min(opts.workers or cpu_cores(), len(jobs))
        jobs.sort(key=lambda job: -CONV[job[0].conv_type].cpu_cost)  # the longest first: no straggler
        if result.workers == 1:
            path = result.path = "sequential"
    t0 = time.perf_counter()
    try:
        # Measured before any training: one thread per worker on the CPU, the device otherwise.
        peak = matmul_peak_gflops(dev, torch.bfloat16 if precision == "bf16" else torch.float32)
        result.peak_gflops = peak * (result.workers if dev.type == "cpu" else 1)
        what = f"padding-bench ({len(jobs)} networks of at most {opts.epochs} epochs each)"
        shorter = "lower {rounds} or {epochs}, or train fewer {conv_types}"
        cost = Cost(estimate_seconds(jobs, path, settings, dev, sizes, result.workers), basis=BASIS)
        # timed alone: on the CPU the workers share the cores with whatever else runs
        announce(cost, what, shorter, reporter, cpu_processes=result.workers if dev.type == "cpu" else None)
        t0 = time.perf_counter()
        _train(result, jobs, data_args, settings, dev, reporter, done)
    except KeyboardInterrupt:
        result.interrupted = True
    result.seconds = time.perf_counter() - t0
    reporter.finish("epochs")
    reporter.finish("rounds")
    return result
