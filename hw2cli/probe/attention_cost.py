"""Q2.1a: self-attention costs O(n^2) time and memory in the sequence length n.

Times one causal self-attention layer of the project's GPT (forward and backward, batch 1) on the
explicit softmax path and ``scaled_dot_product_attention``, and one KV-cached decoding step. Peak
memory: CUDA's ``max_memory_allocated``; on the CPU the peak RSS rise of a process forked per
point, so no earlier allocation hides in it. A CPU point runs on one thread in process CPU time and
keeps the fastest of 5+ repeats (a busy machine only adds time); the lower quartile's excess over
it is the spread the verdict allows for. The fitted exponent is compared with the one quadratic
attention would give the layer's operation count (:func:`layer_ops`)."""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console

from hw2cli.common.device import resolve_device
from hw2cli.common.errors import Hw2Error
from hw2cli.common.estimate import Cost, announce
from hw2cli.common.progress import Reporter
from hw2cli.common.seeding import seeded
from hw2cli.probe import _gpt
from hw2cli.probe.common import Verdict, cell, check_fits, combine, loglog_slope, memory_growth, time_growth
from hw2cli.probe.options import AttentionCostOptions

PATHS = ("explicit", "sdpa", "kv-cache")
DEFAULT_N_CPU = (64, 128, 256, 512, 1024, 2048, 4096)
DEFAULT_N_CUDA = (*DEFAULT_N_CPU, 8192, 16384)
FIT_POINTS = 3  # the slopes are fitted over the largest sizes, where the leading term shows
MIN_REPEATS, MAX_REPEATS, MIN_SECONDS = 5, 50, 0.5  # timed calls per point
SCORE_COPIES = 4  # n x n tensors per head the explicit path holds at its peak (scores, masked, probs, grad)
CALIBRATION_N = 256


@dataclass
class CostPoint:
    """One measurement: seconds per call (the fastest repeat), the peak memory it added (bytes)."""

    n: int
    path: str
    seconds: float
    peak_bytes: int | None
    theory_bytes: int  # one fp32 score matrix: n^2 * heads * 4
    spread: float = 0.0  # the lower quartile of the repeats was this much slower than the fastest (0.1 = 10%)
    repeats: int = 1


@dataclass
class AttentionCostResult:
    device: str
    n_embd: int
    n_head: int
    memory_method: str
    fit_from_n: int
    timing_method: str = ""
    points: list[CostPoint] = field(default_factory=list)
    # path -> time and memory slopes, the time slope's error and the slope quadratic attention would give
    slopes: dict[str, dict[str, float | None]] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    interrupted: bool = False


def layer_ops(n: int, n_embd: int, path: str) -> float:
    """Multiply-adds of one forward pass of the layer at length n if attention is quadratic:
    the projections (4 n C^2) plus the scores and the weighted sum (2 n^2 C; sdpa's causal
    kernel may skip the masked half, so n^2 C: the smaller count keeps the verdict
    conservative). The backward pass scales both alike."""
    return 4 * n * n_embd**2 + (2 if path == "explicit" else 1) * n * n * n_embd


def quadratic_slope(ns: list[int], n_embd: int, path: str) -> float | None:
    return loglog_slope(ns, [layer_ops(n, n_embd, path) for n in ns])


def _vm_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


def _glibc(name: str, *args: int) -> None:
    """Call glibc's malloc function ``name`` (nothing where the C library is not glibc)."""
    import ctypes
    import ctypes.util

    with contextlib.suppress(OSError, AttributeError):
        getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)(*args)


def _reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS: a forked child starts with its parent's resident pages as
    its peak, which would hide the measured rise whenever the parent was larger (a test suite)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _time(fn, device: torch.device) -> tuple[float, float, int]:
    """The fastest of at least MIN_REPEATS calls of ``fn()`` (more while they fill less than
    MIN_SECONDS), how much slower the lower quartile was (the slow calls only show how busy the
    machine was) and the number of calls. CPU: process CPU time; CUDA: wall time."""
    cuda = device.type == "cuda"
    clock = time.perf_counter if cuda else time.process_time
    sync = torch.cuda.synchronize if cuda else lambda device: None
    times: list[float] = []
    while len(times) < MIN_REPEATS or (sum(times) < MIN_SECONDS and len(times) < MAX_REPEATS):
        sync(device)
        t0 = clock()
        fn()
        sync(device)
        times.append(clock() - t0)
    best = max(min(times), 1e-9)
    return best, statistics.quantiles(times, n=4, method="inclusive")[0] / best - 1, len(times)


def _workload(n: int, path: str, n_embd: int, n_head: int, device: torch.device, seed: int):
    """The call to measure: forward+backward of the GPT's attention layer, or one decoding step
    (seeded weights and inputs; the caller's random state is left as it was)."""
    with seeded(seed):
        if path == "kv-cache":  # the cache is allocated by the first call, so its memory counts
            hd = n_embd // n_head
            q = torch.randn(1, n_head, 1, hd, device=device)
            cache: list[torch.Tensor] = []

            def decode_step():
                if not cache:
                    cache.extend(torch.randn(2, 1, n_head, n, hd, device=device).unbind(0))
                with torch.no_grad():
                    return F.scaled_dot_product_attention(q, *cache)

            return decode_step
        config = _gpt.make_config(1, n_head, n_embd, 1, n, use_flash_attn=path == "sdpa")
        attn = _gpt.gpt_model.CausalSelfAttention(config).to(device)
        x = torch.randn(1, n, n_embd, device=device, requires_grad=True)

        def forward_backward():
            attn(x).sum().backward()
            x.grad = None
            attn.zero_grad(set_to_none=True)

        return forward_backward


def _measure_cpu_child(conn, n, path, n_embd, n_head, seed) -> None:
    """Runs in a forked process on one thread: peak RSS rise of one call, then its time."""
    try:
        torch.set_num_threads(1)
        # every allocation above 128 KiB its own mapping, returned to the OS when freed (glibc
        # otherwise raises that threshold up to 32 MiB and keeps freed memory, so the peak RSS
        # would count dead tensors)
        _glibc("mallopt", -3, 128 * 1024)  # M_MMAP_THRESHOLD
        # one call at this size first: the libraries' buffers and the code pages its kernels
        # fault in (a forked child maps the parent's code lazily) would otherwise count
        _workload(n, path, n_embd, n_head, torch.device("cpu"), seed)()
        fn = _workload(n, path, n_embd, n_head, torch.device("cpu"), seed)
        _glibc("malloc_trim", 0)  # free memory inherited from the parent: reusing it is new RSS
        _reset_peak_rss()
        before = _vm_kib("VmRSS")
        fn()
        peak = max(0, _vm_kib("VmHWM") - before) * 1024
        conn.send(("ok", _time(fn, torch.device("cpu")), peak))
    except BaseException as exc:  # report, never hang the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}", None))
    finally:
        conn.close()


def _measure_cpu(n, path, n_embd, n_head, seed) -> tuple[tuple[float, float, int], int]:
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_measure_cpu_child, args=(child, n, path, n_embd, n_head, seed))
    proc.start()
    child.close()
    try:
        status, value, peak = parent.recv()
    except EOFError:
        proc.join()
        raise Hw2Error(
            f"the measurement at n={n} ({path}) died (exit {proc.exitcode}); out of memory? measure smaller n"
        ) from None
    except BaseException:  # Ctrl-C: the child may be in the middle of a long call; stop it now
        proc.terminate()
        raise
    finally:
        proc.join(timeout=2)
        if proc.is_alive():
            proc.kill()
            proc.join()
    if status != "ok":
        if value.startswith("KeyboardInterrupt"):
            raise KeyboardInterrupt
        raise Hw2Error(f"the measurement at n={n} ({path}) failed: {value}; measure smaller n")
    return value, peak


def measure_point(
    n: int, path: str, n_embd: int, n_head: int, device: torch.device, seed: int = 0
) -> tuple[tuple[float, float, int], int]:
    """((fastest seconds per call, spread, repeats), peak bytes added by one call)."""
    if device.type != "cuda":
        return _measure_cpu(n, path, n_embd, n_head, seed)
    _workload(min(n, 16), path, n_embd, n_head, device, seed)()  # cuBLAS workspaces and the like
    fn = _workload(n, path, n_embd, n_head, device, seed)
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - before
    timing = _time(fn, device)
    del fn
    torch.cuda.empty_cache()
    return timing, peak


def _verdicts(result: AttentionCostResult) -> list[Verdict]:
    """Fit each path's slopes over the largest sizes (into ``result.slopes``); per claim (time,
    memory) the explicit and sdpa paths decide, then :func:`combine`."""
    by_claim: dict[str, dict] = {"time": {}, "memory": {}}
    for path in PATHS:
        pts = [p for p in result.points if p.path == path and p.n >= result.fit_from_n]
        ns = [p.n for p in pts]
        quadratic = None if path == "kv-cache" else quadratic_slope(ns, result.n_embd, path)
        t = time_growth(ns, [p.seconds for p in pts], [p.spread for p in pts], quadratic)
        m = memory_growth(ns, [p.peak_bytes or 0 for p in pts], [p.theory_bytes for p in pts])
        error = None if t.slope is None else t.error
        result.slopes[path] = dict(time=t.slope, time_error=error, memory=m.slope, quadratic_model=quadratic)
        if path != "kv-cache":
            by_claim["time"][path], by_claim["memory"][path] = t, m
    out = []
    for claim, per_path in by_claim.items():
        timed = claim == "time"
        slopes = ", ".join(
            f"{path} {cell(g.slope, '.2f')}" + (f" ± {g.error:.2f}" if timed and g.slope is not None else "")
            for path, g in per_path.items()
        )
        what = "time" if timed else "peak memory"
        measurement = f"log-log slope of {what} for n >= {result.fit_from_n}: {slopes}"
        if timed:
            measurement += f" (a KV-cached step: {cell(result.slopes['kv-cache']['time'], '.2f')} per token)"
        reasons = "; ".join(f"{path}: {g.verdict}, {g.reason}" for path, g in per_path.items())
        verdict = combine([g.verdict for g in per_path.values()])
        out.append(Verdict(f"attention {claim} grows as n^2", measurement, verdict, reasons))
    return out


def memory_needed(n: int, n_embd: int, n_head: int) -> int:
    """Bytes the largest measurement holds at its peak: the explicit path's n x n tensors per
    head and a few dozen activations of width n_embd."""
    return SCORE_COPIES * n * n * n_head * 4 + 64 * n * n_embd * 4


def _cost(ns: list[int], layer: tuple[int, int], dev: torch.device, seed: int) -> Cost:
    """One explicit call at CALIBRATION_N timed here, scaled as n² (as n below it), times the
    calls per point (warm-ups, the memory call, the repeats), for explicit and sdpa alike."""
    (t_cal, _, _), _ = measure_point(CALIBRATION_N, "explicit", *layer, dev, seed)
    calls = 0.0
    for n in ns:
        scale = max(n / CALIBRATION_N, (n / CALIBRATION_N) ** 2)
        repeats = max(MIN_REPEATS, min(MAX_REPEATS, math.ceil(MIN_SECONDS / (t_cal * scale))))
        calls += 2 * (2 + repeats) * scale
    basis = f"one call at n={CALIBRATION_N} timed here, scaled as n²"
    return Cost(t_cal, calls, basis, fixed_s=0.1 * len(PATHS) * len(ns))  # a fork per point


def attention_cost(opts: AttentionCostOptions, reporter: Reporter | None = None) -> AttentionCostResult:
    """Time and peak memory of one attention layer per length and path, the log-log slopes
    over the three largest lengths and a verdict per claim."""
    reporter = reporter or Reporter()
    dev = resolve_device(opts.device)
    cuda = dev.type == "cuda"
    if not cuda and not os.path.exists("/proc/self/status"):
        raise Hw2Error("measuring CPU memory needs Linux's /proc; run on Linux or on a CUDA device")
    ns = list(opts.size("n") or (DEFAULT_N_CUDA if cuda else DEFAULT_N_CPU))
    layer = (opts.n_embd, opts.n_head)

    def largest(free: int) -> str:
        fits = [n for n in (2**k for k in range(1, 17)) if memory_needed(n, *layer) <= free]
        return f"use {{n}} up to {fits[-1]:,}" if fits else "free some memory"

    why = f"the explicit path holds {SCORE_COPIES} n x n float32 matrices per head, {{n_head}} {opts.n_head}"
    check_fits(memory_needed(max(ns), *layer), str(dev), f"{{n}} {max(ns):,}", why, largest)
    fit_from = ns[-min(FIT_POINTS, len(ns))]
    memory, timing = "peak RSS (VmHWM) rise of a forked process per point", "process CPU time on one thread"
    if cuda:
        memory, timing = "torch.cuda.max_memory_allocated", "wall time between CUDA synchronisations"
    timing += f", fastest of {MIN_REPEATS}+ calls"
    result = AttentionCostResult(str(dev), *layer, memory, fit_from, timing)
    try:
        cost = _cost(ns, layer, dev, opts.seed)
        announce(cost, "the attention-cost measurements", "measure fewer or smaller n", reporter)
        reporter.start("cost", "attention cost", total=len(ns) * len(PATHS))
        for n in ns:
            for path in PATHS:
                (seconds, spread, repeats), peak = measure_point(n, path, *layer, dev, opts.seed)
                theory = n * n * opts.n_head * 4
                result.points.append(CostPoint(n, path, seconds, peak, theory, spread, repeats))
                reporter.update("cost", advance=1, description=f"attention cost n={n}")
    except KeyboardInterrupt:
        result.interrupted = True
    reporter.finish("cost")
    result.verdicts = _verdicts(result)
    return result


_LABELS = {
    "explicit": "explicit softmax, fwd+bwd",
    "sdpa": "scaled_dot_product_attention, fwd+bwd",
    "kv-cache": "KV-cached decoding, one token",
}


def tables(r: AttentionCostResult, console: Console) -> None:
    from hw2cli.probe.common import show

    def mib(nbytes: int | None) -> str:
        return cell(None if nbytes is None else nbytes / 2**20, ".2f")

    title = f"One causal self-attention layer, {r.n_head} heads x {r.n_embd // r.n_head}, batch 1, "
    title += f"on {r.device} (time: {r.timing_method}; memory: {r.memory_method})"
    columns = ("n", "path", "time (ms)", "repeats' spread", "peak memory (MiB)", "n²·heads·4 (MiB)")
    rows = [
        (str(p.n), p.path, cell(p.seconds * 1e3), f"{p.spread:.0%}", mib(p.peak_bytes), mib(p.theory_bytes))
        for p in r.points
    ]
    caption = "time: the fastest repeat; repeats' spread: how much slower the fastest quarter of the repeats"
    show(console, title, columns, rows, ("path",), caption + " was than that")
    title = f"Fitted log-log slopes for n ≥ {r.fit_from_n} (2 = quadratic, 1 = linear; ± the spread between repeats)"
    rows = []
    for path, s in r.slopes.items():
        timed = cell(s["time"], ".2f") + ("" if s.get("time_error") is None else f" ± {s['time_error']:.2f}")
        rows.append(
            (_LABELS.get(path, path), timed, cell(s.get("quadratic_model"), ".2f"), cell(s["memory"], ".2f"))
        )
    show(console, title, ("path", "time", "if attention were quadratic", "memory"), rows, ("path",))


def figure(r: AttentionCostResult) -> Any:
    from hw2cli.probe.render import finish, new_figure

    fig = new_figure(figsize=(10, 4))
    ax_t, ax_m = fig.subplots(1, 2)
    for path, style in (("explicit", "o-"), ("sdpa", "s-"), ("kv-cache", "^-")):
        pts = [p for p in r.points if p.path == path]
        if not pts:
            continue
        slope = r.slopes.get(path, {})
        label = f"{path} (slope {slope.get('time') or float('nan'):.2f})"
        ax_t.loglog([p.n for p in pts], [p.seconds for p in pts], style, label=label, base=2)
        mem = [(p.n, p.peak_bytes) for p in pts if p.peak_bytes]
        if mem:
            m_slope = slope.get("memory") or float("nan")
            ax_m.loglog(*zip(*mem, strict=True), style, base=2, label=f"{path} (slope {m_slope:.2f})")
    ns = sorted({p.n for p in r.points})
    ax_m.loglog(ns, [n * n * r.n_head * 4 for n in ns], "k--", base=2, label="n²·heads·4 bytes")
    ax_t.set(
        xlabel="sequence length n", ylabel="seconds per call (fastest repeat)", title=f"time ({r.device})"
    )
    ax_m.set(xlabel="sequence length n", ylabel="peak memory added (bytes)", title=f"memory ({r.device})")
    return finish(fig, ax_t, ax_m, which="both")
