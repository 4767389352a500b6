"""Q2.1a: self-attention costs O(n^2) time and memory in the sequence length n.

Times one causal self-attention layer of the project's GPT (forward and backward, batch 1)
for the explicit softmax path and ``scaled_dot_product_attention``, and one KV-cached
decoding step (one new query against n cached keys). Peak memory is measured: on CUDA with
``max_memory_allocated``; on the CPU as the rise of the peak resident set (VmHWM) of a
process forked for each measurement, so no earlier allocation hides in the number.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from hw2cli.common.device import resolve_device
from hw2cli.common.errors import Hw2Error
from hw2cli.common.progress import Reporter
from hw2cli.probe import _gpt
from hw2cli.probe.common import FAILS, HOLDS, PARTLY, Verdict, loglog_slope

PATHS = ("explicit", "sdpa", "kv-cache")
QUADRATIC = 1.5  # a fitted exponent closer to 2 than to 1 counts as quadratic
DEFAULT_N_CPU = (64, 128, 256, 512, 1024, 2048, 4096)
DEFAULT_N_CUDA = (*DEFAULT_N_CPU, 8192, 16384)
QUICK_N = (16, 32, 64, 128)


@dataclass
class CostPoint:
    """One measurement: seconds per call and the peak memory it added (bytes)."""

    n: int
    path: str
    seconds: float
    peak_bytes: int | None
    theory_bytes: int  # one fp32 score matrix: n^2 * heads * 4


@dataclass
class AttentionCostResult:
    device: str
    n_embd: int
    n_head: int
    memory_method: str
    fit_from_n: int
    points: list[CostPoint] = field(default_factory=list)
    slopes: dict[str, dict[str, float | None]] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    interrupted: bool = False


def _vm_kib(key: str) -> int:
    """A VmRSS/VmHWM line of /proc/self/status, in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {key}")


def _libc():
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _exact_malloc() -> None:
    """Give every allocation above 128 KiB its own mapping, returned to the OS when freed (glibc
    otherwise raises that threshold up to 32 MiB and keeps freed heap memory, so the peak RSS
    would count dead tensors). Without glibc nothing changes."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD


def _release_free_memory() -> None:
    """Hand the free heap memory inherited from the parent back to the OS, so that reusing it
    counts as new resident memory (glibc's malloc_trim; a no-op elsewhere)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def _reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux: ``5`` into /proc/self/clear_refs). A forked child
    starts with its parent's resident pages as its peak, which would hide the measured rise
    whenever the parent was larger than the workload (a test suite, a notebook)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _time(fn, device: torch.device, min_seconds: float = 0.2, max_repeats: int = 50) -> float:
    """Median seconds of ``fn()`` over repeats filling about ``min_seconds`` (one warm-up call)."""
    fn()
    times: list[float] = []
    while len(times) < 3 or (sum(times) < min_seconds and len(times) < max_repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def _workload(n: int, path: str, n_embd: int, n_head: int, device: torch.device, seed: int):
    """The call to measure: forward+backward of the GPT's attention layer, or one decoding step."""
    torch.manual_seed(seed)
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
    config = _gpt.make_config(1, n_head, n_embd, vocab_size=1, block_size=n, flash=path == "sdpa")
    attn = _gpt.gpt_model.CausalSelfAttention(config).to(device)
    x = torch.randn(1, n, n_embd, device=device, requires_grad=True)

    def forward_backward():
        attn(x).sum().backward()
        x.grad = None
        attn.zero_grad(set_to_none=True)

    return forward_backward


def _measure_cpu_child(conn, n, path, n_embd, n_head, seed) -> None:
    """Runs in a forked process: peak RSS rise of one call, then its time."""
    try:
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        _exact_malloc()
        _workload(min(n, 16), path, n_embd, n_head, torch.device("cpu"), seed)()  # libraries' own buffers
        fn = _workload(n, path, n_embd, n_head, torch.device("cpu"), seed)
        _release_free_memory()
        _reset_peak_rss()
        before = _vm_kib("VmRSS")
        fn()
        peak = max(0, _vm_kib("VmHWM") - before) * 1024
        conn.send(("ok", _time(fn, torch.device("cpu")), peak))
    except BaseException as exc:  # report, never hang the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}", None))
    finally:
        conn.close()


def _measure_cpu(n, path, n_embd, n_head, seed) -> tuple[float, int]:
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
            f"the measurement at n={n} ({path}) died (exit {proc.exitcode}); out of memory? use smaller --n"
        ) from None
    finally:
        proc.join()
    if status != "ok":
        raise Hw2Error(f"the measurement at n={n} ({path}) failed: {value}; use smaller --n")
    return value, peak


def _measure_cuda(n, path, n_embd, n_head, seed, device) -> tuple[float, int]:
    _workload(min(n, 16), path, n_embd, n_head, device, seed)()  # cuBLAS workspaces and the like
    fn = _workload(n, path, n_embd, n_head, device, seed)
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - before
    seconds = _time(fn, device)
    del fn
    torch.cuda.empty_cache()
    return seconds, peak


def measure_point(
    n: int, path: str, n_embd: int, n_head: int, device: torch.device, seed: int = 0
) -> tuple[float, int]:
    """Seconds per call and peak bytes added by one call of ``path`` at length ``n``."""
    if device.type == "cuda":
        return _measure_cuda(n, path, n_embd, n_head, seed, device)
    return _measure_cpu(n, path, n_embd, n_head, seed)


def _verdicts(slopes: dict[str, dict[str, float | None]], fit_from: int) -> list[Verdict]:
    def fmt(x):
        return "-" if x is None else f"{x:.2f}"

    t_ex, t_sd = slopes["explicit"]["time"], slopes["sdpa"]["time"]
    m_ex, m_sd = slopes["explicit"]["memory"], slopes["sdpa"]["memory"]
    t_kv = slopes["kv-cache"]["time"]
    quad = [s is not None and s >= QUADRATIC for s in (t_ex, t_sd)]
    time_v = Verdict(
        "attention time grows as n^2 (fitted exponent nearer 2 than 1)",
        f"log-log slope of time for n >= {fit_from}: explicit {fmt(t_ex)}, sdpa {fmt(t_sd)} "
        f"(a KV-cached step: {fmt(t_kv)} per token)",
        HOLDS if all(quad) else (PARTLY if any(quad) else FAILS),
    )
    ex_quad = m_ex is not None and m_ex >= QUADRATIC
    sd_quad = m_sd is not None and m_sd >= QUADRATIC
    mem_v = Verdict(
        "attention memory grows as n^2 (fitted exponent nearer 2 than 1)",
        f"log-log slope of peak memory for n >= {fit_from}: explicit {fmt(m_ex)}, sdpa {fmt(m_sd)}",
        HOLDS if ex_quad and sd_quad else (PARTLY if ex_quad or sd_quad else FAILS),
    )
    return [time_v, mem_v]


def attention_cost(
    ns: list[int] | None = None,
    n_embd: int = 128,
    n_head: int = 4,
    device: str = "cpu",
    seed: int = 0,
    reporter: Reporter | None = None,
) -> AttentionCostResult:
    """Time and peak memory of one attention layer per sequence length and path, with the
    fitted log-log slopes over the three largest lengths and a verdict per claim."""
    reporter = reporter or Reporter()
    dev = resolve_device(device)
    if dev.type == "cpu" and not os.path.exists("/proc/self/status"):
        raise Hw2Error("measuring CPU memory needs Linux's /proc; run on Linux or with --device cuda")
    ns = list(ns or (DEFAULT_N_CUDA if dev.type == "cuda" else DEFAULT_N_CPU))
    if n_embd % n_head or (n_embd // n_head) % 2:
        raise Hw2Error(f"--n-embd {n_embd} must split into {n_head} heads of even size")
    fit_from = ns[-3] if len(ns) >= 3 else ns[0]  # the three largest n: where the leading term shows
    result = AttentionCostResult(
        device=str(dev),
        n_embd=n_embd,
        n_head=n_head,
        fit_from_n=fit_from,
        memory_method="torch.cuda.max_memory_allocated"
        if dev.type == "cuda"
        else "peak RSS (VmHWM) rise of a forked process per point",
    )
    reporter.start("cost", "attention cost", total=len(ns) * len(PATHS))
    try:
        for n in ns:
            for path in PATHS:
                seconds, peak = measure_point(n, path, n_embd, n_head, dev, seed)
                result.points.append(CostPoint(n, path, seconds, peak, n * n * n_head * 4))
                reporter.update("cost", advance=1, description=f"attention cost n={n}")
    except KeyboardInterrupt:
        result.interrupted = True
    reporter.finish("cost")
    for path in PATHS:
        pts = [p for p in result.points if p.path == path and p.n >= fit_from]
        result.slopes[path] = {
            "time": loglog_slope([p.n for p in pts], [p.seconds for p in pts]),
            "memory": loglog_slope([p.n for p in pts], [p.peak_bytes for p in pts]),
        }
    result.verdicts = _verdicts(result.slopes, fit_from)
    return result
