"""What the probes share: the verdict record, size-list parsing and the log-log slope fit."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hw2cli.common.errors import Hw2Error

HOLDS, PARTLY, FAILS = "holds", "partly", "does not hold"


@dataclass
class Verdict:
    """One claim of the report, what decided it, and the outcome (holds / partly / does not hold)."""

    claim: str
    measurement: str
    verdict: str


def parse_sizes(text: str, option: str, power_of_two: bool = True) -> list[int]:
    """``"64,128,256"`` -> [64, 128, 256]: integers of at least 1, increasing, powers of two
    when ``power_of_two`` (the fits assume evenly spaced points on a log axis)."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise Hw2Error(f"{option} {text!r} is not a comma-separated list of integers; e.g. 64,128") from None
    if not sizes:
        raise Hw2Error(f"{option} is empty; give a comma-separated list such as 64,128,256")
    for n in sizes:
        if n < 1:
            raise Hw2Error(f"{option}: {n} is below 1; give sizes of at least 1")
        if power_of_two and n & (n - 1):
            raise Hw2Error(f"{option}: {n} is not a power of two; give e.g. 64,128,256")
    if sorted(set(sizes)) != sizes:
        raise Hw2Error(f"{option} {text!r} must increase without repeats; e.g. 64,128,256")
    return sizes


def loglog_slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log(y) against log(x): the exponent p of y ~ x^p.

    None when fewer than two points have positive x and y.
    """
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=False) if x and y and x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    if sxx == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def check_positive(**values: int) -> None:
    """Raise Hw2Error naming the first option below 1 (names use _ for -)."""
    for name, value in values.items():
        if value is not None and value < 1:
            raise Hw2Error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
