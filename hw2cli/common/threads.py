"""How many intra-op threads a CPU command uses: one per core no other process uses when it
starts. On 2 cores (docs/benchmarks.md#threads) two threads train 1.5-1.7x faster than one when
idle, but 0.38-0.53x beside a busy process (each spinning thread waits for the other). Results
are bit-identical only at the same count, so every command records it."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from hw2cli.common.options import OptionError

BUSY_THRESHOLD = 0.25  # a core used more than this by other processes is not ours to spin on
MAX_THREADS = 4096  # the most --threads and OMP_NUM_THREADS may ask for (OpenMP crashes at 100,000)


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    cores: int
    source: str  # "threads" (the caller's count; the CLI records its flag), "OMP_NUM_THREADS" or "auto"
    busy_cores: float | None = None  # other processes' use, measured for "auto"

    def describe(self) -> str:
        n = f"{self.threads} thread{'' if self.threads == 1 else 's'}"
        if self.source == "auto":
            busy = "unknown" if self.busy_cores is None else f"{self.busy_cores:.1f}"
            return f"{n} (auto: {busy} of {self.cores} cores busy)"
        return f"{n} ({self.source})"

    to_json = asdict


def cpu_cores() -> int:
    """Cores this process may run on (not the host's count, inside a container)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def slowdown(processes: int, busy: float) -> float:
    """How much slower ``processes`` one-thread processes run beside ``busy`` cores of other work."""
    return max(1.0, (busy + processes) / cpu_cores())


def _cpu_times(stat: str, cpus: set[int] | None) -> tuple[int, int, int]:
    """(busy, total) jiffies summed over /proc/stat's ``cpuN`` lines of ``cpus``, and their count."""
    busy = total = count = 0
    for line in stat.splitlines():
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        total += sum(values)
        busy += sum(values) - values[3] - values[4]
        count += 1
    return busy, total, count


def busy_from_samples(before: str, after: str, cpus: set[int] | None = None) -> float:
    """Cores busy between two /proc/stat readings."""
    b0, t0, n = _cpu_times(before, cpus)
    b1, t1, _ = _cpu_times(after, cpus)
    return 0.0 if t1 <= t0 else n * (b1 - b0) / (t1 - t0)


def measure_busy_cores(interval: float = 0.25) -> float | None:
    """How many of our cores other processes use now (we sleep meanwhile); None without /proc."""
    stat = Path("/proc/stat")
    if not stat.is_file():
        return None
    cpus = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    before = stat.read_text()
    time.sleep(interval)
    return busy_from_samples(before, stat.read_text(), cpus)


def omp_threads(environ: dict | None = None) -> int | None:
    """``OMP_NUM_THREADS``'s count (of a list of nested levels, the first); None when unset or invalid."""
    environ = os.environ if environ is None else environ
    text = environ.get("OMP_NUM_THREADS", "").strip()
    levels = [level.strip() for level in text.split(",")]
    # isascii: str.isdigit() also accepts "²" and other digits int() refuses
    if not text or not all(level.isascii() and level.isdigit() and len(level) <= 6 for level in levels):
        return None
    first = int(levels[0])
    return first if all(1 <= int(level) <= MAX_THREADS for level in levels) else None


def choose_threads(
    requested: int | None = None, environ: dict | None = None, busy: float | None = None
) -> ThreadChoice:
    """The thread count for this command: ``requested`` (0 or None: decide),
    else ``OMP_NUM_THREADS``, else one per core that is not busy (``busy`` measured if None)."""
    environ = os.environ if environ is None else environ
    cores = cpu_cores()
    if requested:
        if requested < 1:
            raise OptionError(
                f"{{threads}} {requested}: use a count of at least 1 (0: decide from the idle cores)"
            )
        return ThreadChoice(requested, cores, "threads")
    env = omp_threads(environ)
    if env is not None:
        return ThreadChoice(env, cores, "OMP_NUM_THREADS")
    if busy is None:
        busy = measure_busy_cores()
        if busy is None and hasattr(os, "getloadavg"):
            busy = os.getloadavg()[0]
    taken = 0 if busy is None else max(0, math.ceil(busy - BUSY_THRESHOLD))
    threads = max(1, cores - taken)
    local_world = environ.get("LOCAL_WORLD_SIZE", "").strip()  # torchrun: the processes share the cores
    if local_world.isdigit() and int(local_world) > 1:
        threads = max(1, threads // int(local_world))
    return ThreadChoice(threads, cores, "auto", None if busy is None else round(busy, 2))


def use_threads(requested: int | None) -> ThreadChoice:
    """Set torch's thread count to :func:`choose_threads`'s choice for the rest of the process
    (torchrun's other ranks)."""
    import torch

    choice = choose_threads(requested or None)
    torch.set_num_threads(choice.threads)
    return choice


@contextmanager
def using_threads(requested: int | None) -> Iterator[ThreadChoice]:
    """:func:`use_threads` for the block, then torch's count as it was."""
    import torch

    before = torch.get_num_threads()
    try:
        yield use_threads(requested)
    finally:
        torch.set_num_threads(before)
