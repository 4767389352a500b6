"""Device and precision choice of the torch commands (imports torch)."""

from __future__ import annotations

import contextlib
import re
import resource
from pathlib import Path

import torch

from hw2cli.common.options import OptionError  # names the field; the CLI says its flag


def resolve_device(name: str) -> torch.device:
    """Map ``auto|cpu|cuda[:N]`` (the options' DEVICE choices) to a torch.device, refusing a
    GPU that is not there."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name != "cpu" and not torch.cuda.is_available():
        raise OptionError(f"{{device}} {name}: no CUDA GPU is available here; use {{device}} cpu or auto")
    return torch.device(name)


def check_precision(precision: str, device: torch.device) -> str:
    """Refuse fp16 off CUDA (the options' PRECISION choices hold the rest) and return ``precision``."""
    if precision == "fp16" and device.type != "cuda":
        raise OptionError("{precision} fp16 needs a CUDA GPU; use bf16 or fp32 on the CPU")
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """An autocast context for ``precision`` (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory: a fresh ``mmap`` for each step's large tensors costs
    page faults (about 20% of a Net1 step, docs/benchmarks.md). Process-wide: training processes
    only. False where the C library is not glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # from glibc's malloc.h
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 2**30))


def free_memory(device: torch.device) -> int | None:
    """Bytes this process can still allocate on ``device`` (None: unknown); on the CPU the least
    of MemAvailable, the cgroup's room and what ``ulimit -v`` leaves."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    found = []
    for path, pattern, scale in (
        ("/proc/meminfo", r"MemAvailable:\s+(\d+) kB", 1024),
        ("/sys/fs/cgroup/memory.max", r"^(\d+)$", 1),
    ):
        with contextlib.suppress(OSError):
            match = re.search(pattern, Path(path).read_text(), re.M)
            if match:
                found.append(int(match.group(1)) * scale)
    if len(found) == 2:  # the cgroup's limit, less what the cgroup already uses
        with contextlib.suppress(OSError, ValueError):
            found[1] -= int(Path("/sys/fs/cgroup/memory.current").read_text())
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    if soft != resource.RLIM_INFINITY:
        with contextlib.suppress(OSError, AttributeError):
            used = re.search(r"VmSize:\s+(\d+) kB", Path("/proc/self/status").read_text())
            found.append(soft - int(used.group(1)) * 1024)
    return min(found) if found else None
