"""The one wall-time estimator of long commands (CONTRIBUTING.md): time a little of the work,
describe the whole as a :class:`Cost` and :func:`announce` it: noted from ANNOUNCE_ABOVE_S, a
warning with how to make the work shorter from WARN_ABOVE_S."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

#: Estimated wall times at least this long are announced before the work starts.
ANNOUNCE_ABOVE_S = 120.0
#: ... and at least this long, with a warning and what to do instead.
WARN_ABOVE_S = 3600.0


def duration(seconds: float) -> str:
    """``45 s``, ``6.5 min``, ``2.3 h`` or ``3.1 days``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


@dataclass(frozen=True)
class Cost:
    """``units`` of work at ``unit_s`` seconds each, plus ``fixed_s``; ``basis``: where the numbers come from."""

    unit_s: float
    units: float = 1.0
    basis: str = ""
    fixed_s: float = 0.0

    @property
    def seconds(self) -> float:
        return self.unit_s * self.units + self.fixed_s


@dataclass(frozen=True)
class Estimate:
    """An estimated wall time of ``what``, its ``basis``, and how to make the work ``shorter``."""

    seconds: float
    what: str
    basis: str
    shorter: str = ""

    @property
    def message(self) -> str | None:
        """The line to announce; None below ANNOUNCE_ABOVE_S."""
        if self.seconds < ANNOUNCE_ABOVE_S:
            return None
        line = f"estimated wall time of {self.what}: about {duration(self.seconds)} ({self.basis})"
        if self.seconds >= WARN_ABOVE_S:
            line = "warning: " + line + (f"; for a shorter run {self.shorter}" if self.shorter else "")
        return line

    def on_shared_cpu(self, processes: int, busy: float | None = None) -> Estimate:
        """This estimate of work timed alone, run as ``processes`` single-thread processes beside
        ``busy`` cores of other work (measured when None and it can matter)."""
        from hw2cli.common.threads import cpu_cores, measure_busy_cores, slowdown

        if busy is None:
            if self.seconds * slowdown(processes, cpu_cores()) < ANNOUNCE_ABOVE_S:
                return self  # not even a full machine's load would bring it to the announcement
            busy = measure_busy_cores() or 0.0
        factor = slowdown(processes, busy)
        if factor <= 1:
            return self
        why = f"; times {factor:.1f}: {processes} workers share {cpu_cores()} cores with {busy:.1f} cores of other work"
        return replace(self, seconds=self.seconds * factor, basis=self.basis + why)


def announce(
    cost: Cost, what: str, shorter: str = "", reporter=None, *, cpu_processes: int | None = None
) -> Estimate:
    """The Estimate of ``cost`` for ``what``, noted on ``reporter`` when long enough;
    ``cpu_processes``: CPU work in that many processes (:meth:`Estimate.on_shared_cpu`)."""
    found = Estimate(cost.seconds, what, cost.basis, shorter)
    if cpu_processes is not None:
        found = found.on_shared_cpu(cpu_processes)
    if reporter is not None and found.message is not None:
        reporter.note(found.message)
    return found


def seconds_per_call(
    fn: Callable[[], object], calls: int = 3, warmup: int = 1, sync: Callable | None = None
) -> float:
    """Mean seconds of ``fn()`` over ``calls`` calls after ``warmup`` untimed ones; ``sync``
    (``torch.cuda.synchronize``) waits for a device at both ends."""
    for _ in range(warmup):
        fn()
    if sync is not None:
        sync()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    if sync is not None:
        sync()
    return (time.perf_counter() - t0) / calls
