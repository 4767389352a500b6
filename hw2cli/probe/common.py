"""What the probes share: the verdict, the pure rules that turn measurements into verdicts
(tested on constructed numbers) and table cells. A measurement decides only when its effect
exceeds what else could move it (the spread between repeats or seeds, fixed costs at small
sizes, a model that has not learned yet); else it is inconclusive and ``reason`` says why."""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from hw2cli.common.options import OptionError

HOLDS, PARTLY, FAILS, INCONCLUSIVE = "holds", "partly", "does not hold", "inconclusive"
VERDICTS = (HOLDS, PARTLY, FAILS, INCONCLUSIVE)


@dataclass
class Verdict:
    """One claim of the report, what was measured, the outcome and why (always for inconclusive)."""

    claim: str
    measurement: str
    verdict: str
    reason: str = ""


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """The exponent p of y ~ x^p by least squares on the logs (None: under two positive points)."""
    return loglog_fit(xs, ys)[0]


def loglog_fit(
    xs: Sequence[float], ys: Sequence[float], spreads: Sequence[float] | None = None
) -> tuple[float | None, float]:
    """The log-log slope and how far it can move when each y may be up to ``spreads[i]``
    (0.1 = 10%) off: the slope is a weighted sum of the log(y), so the worst case is the sum of
    |weight| * log(1 + spread). (None, inf) without two usable points."""
    spreads = spreads if spreads is not None else [0.0] * len(xs)
    pts = [(x, y, s) for x, y, s in zip(xs, ys, spreads, strict=True) if x and y and x > 0 and y > 0]
    lx = [math.log(x) for x, _, _ in pts]
    mx = sum(lx) / max(1, len(lx))
    sxx = sum((x - mx) ** 2 for x in lx)
    if len(pts) < 2 or sxx == 0:
        return None, math.inf
    weights = [(x - mx) / sxx for x in lx]
    slope = sum(w * math.log(y) for w, (_, y, _) in zip(weights, pts, strict=True))
    return slope, sum(abs(w) * math.log1p(max(0.0, s)) for w, (_, _, s) in zip(weights, pts, strict=True))


def combine(verdicts: Sequence[str]) -> str:
    """One claim measured several ways (paths): holds when every way holds, does not hold when
    none does, else partly; inconclusive as soon as one way cannot decide (it could turn the
    claim either way)."""
    if not verdicts or INCONCLUSIVE in verdicts:
        return INCONCLUSIVE
    if all(v == HOLDS for v in verdicts):
        return HOLDS
    if all(v == FAILS for v in verdicts):
        return FAILS
    return PARTLY


# ----------------------------------------------------------------------------- growth with n

MIN_POINTS = 3  # a slope from two sizes cannot show that it has settled
MIN_SEPARATION = 0.4  # quadratic and linear models closer than this in slope: sizes too small
SUBLINEAR = 0.9  # a time growing slower than n^0.9 is dominated by fixed per-call costs


@dataclass
class Growth:
    """How a cost grows over the largest sizes measured, and whether that decides 'grows as n²'."""

    slope: float | None
    error: float  # the slope may be off by this much within the repeats' spread
    verdict: str
    reason: str


def time_growth(
    ns: Sequence[int], best: Sequence[float], spread: Sequence[float], quadratic_slope: float | None
) -> Growth:
    """Does the time (``best``: the fastest repeat per size, ``spread``: how much slower the fast
    repeats were) grow as n²? ``quadratic_slope``: the operation count's slope *if* attention is
    quadratic (linear gives 1). It decides for the nearer of the two when they differ enough (at
    small n the linear projections dominate both), the time grows at least linearly (else fixed
    per-call costs dominate) and the spread cannot carry it across the midpoint."""
    slope, error = loglog_fit(ns, best, spread)
    growth = functools.partial(Growth, slope, error)

    if slope is None or sum(1 for t in best if t and t > 0) < MIN_POINTS:
        return growth(INCONCLUSIVE, f"too few sizes: a fit needs {MIN_POINTS}")
    lo, hi = min(ns), max(ns)
    if quadratic_slope is None or quadratic_slope - 1 < MIN_SEPARATION:
        q = "-" if quadratic_slope is None else f"{quadratic_slope:.2f}"
        why = f"at n = {lo}..{hi} the work linear in n is most of the layer's: quadratic attention would "
        return growth(INCONCLUSIVE, why + f"show as slope {q}, linear attention as 1.00; measure larger n")
    if slope + error < SUBLINEAR:
        why = f"time grows slower than n (slope {slope:.2f}) at n = {lo}..{hi}: fixed per-call costs "
        return growth(INCONCLUSIVE, why + "dominate; measure larger n")
    mid = (quadratic_slope + 1) / 2
    measured = f"slope {slope:.2f} ± {error:.2f}"
    if slope - error >= mid:
        return growth(HOLDS, f"{measured} is nearer quadratic ({quadratic_slope:.2f}) than linear (1.00)")
    if slope + error < mid:
        return growth(FAILS, f"{measured} is nearer linear (1.00) than quadratic ({quadratic_slope:.2f})")
    why = f"the spread between repeats ({measured}) straddles the midpoint {mid:.2f} between linear (1.00) "
    return growth(INCONCLUSIVE, why + f"and quadratic ({quadratic_slope:.2f}); rerun on a quieter machine")


def memory_growth(ns: Sequence[int], peak: Sequence[float], score_bytes: Sequence[float]) -> Growth:
    """Does the memory one call added (``peak``) grow as n²? Holds when the path keeps at least
    one n×n score matrix per head (``score_bytes``) at the largest n and grows with a slope
    nearer 2 than 1; does not hold when it adds less (it cannot be keeping the scores);
    otherwise fixed buffers still weigh and larger n must decide."""
    pts = [(n, p, s) for n, p, s in zip(ns, peak, score_bytes, strict=True) if p and p > 0]
    slope, error = loglog_fit([p[0] for p in pts], [p[1] for p in pts])
    growth = functools.partial(Growth, slope, error)

    if slope is None or len(pts) < MIN_POINTS:
        return growth(INCONCLUSIVE, f"too few sizes with measurable memory: a fit needs {MIN_POINTS}")
    n, p, s = max(pts)
    if p < s and slope < 1.5:
        why = f"at n = {n} it adds {p / 2**20:.2f} MiB, less than one n×n score matrix per head "
        return growth(FAILS, why + f"({s / 2**20:.2f} MiB): it does not keep the scores")
    if p < s:
        return growth(
            INCONCLUSIVE, f"slope {slope:.2f} but less than one score matrix at n = {n}: measure larger n"
        )
    if slope >= 1.5:
        return growth(HOLDS, f"slope {slope:.2f}, and it keeps the n×n scores")
    why = f"it adds more than one score matrix at n = {n} but grows as n^{slope:.2f}: other buffers still "
    return growth(INCONCLUSIVE, why + "weigh at these sizes; measure larger n")


# ----------------------------------------------------------------------------- repeated trainings


def spread(values: Sequence[float]) -> float:
    """Largest minus smallest value (0 for one value)."""
    return max(values) - min(values) if values else math.nan


def mean(values: Sequence[float]) -> float | None:
    """The mean over the seeds; None when there is none."""
    return statistics.fmean(values) if values else None


def compared(claim: str, measurement: str, a: Sequence[float], b: Sequence[float]) -> Verdict:
    """Holds when ``a``'s mean exceeds ``b``'s by more than the seeds' spread of either, does not
    hold when it falls short by more, else (or with one value each) inconclusive."""
    if len(a) < 2 or len(b) < 2:
        return Verdict(claim, measurement, INCONCLUSIVE, "one training each: no spread to compare with")
    diff, noise = statistics.fmean(a) - statistics.fmean(b), max(spread(a), spread(b))
    if abs(diff) <= noise:
        return Verdict(claim, measurement, INCONCLUSIVE, "the difference is within the spread between seeds")
    why = "the difference exceeds the spread between seeds"
    return Verdict(claim, measurement, HOLDS if diff > 0 else FAILS, why)


def band(values: Sequence[float], edges: Sequence[float], labels: Sequence[str]) -> str | None:
    """The label of the band every value falls in (``labels[i]``: below ``edges[i]``, at or above
    ``edges[i - 1]``; the last: the rest); None when the values straddle an edge."""
    found = {labels[sum(v >= e for e in edges)] for v in values}
    return found.pop() if len(found) == 1 else None


# ----------------------------------------------------------------------------- limits and text


def gib(nbytes: float) -> str:
    """``3.5 GiB``, or ``24.0 TiB`` from 1024 GiB on."""
    return f"{nbytes / 2**40:.1f} TiB" if nbytes >= 2**40 else f"{nbytes / 2**30:.1f} GiB"


def check_fits(need: int, device: str, what: str, why: str, fix: str | Callable[[int], str]) -> None:
    """Refuse, before any work, sizes needing more memory than is free (``fix``: of the free bytes)."""
    import torch

    from hw2cli.common.device import free_memory

    free = free_memory(torch.device(device))
    if free is not None and need > free:
        fix = fix(free) if callable(fix) else fix
        raise OptionError(
            f"{what} needs about {gib(need)} on {device.split(':')[0]} ({why}), more than the "
            f"{gib(free)} available; {fix}"
        )


def cell(value: float | None, spec: str = ".3f") -> str:
    """A table cell: ``-`` for a missing value."""
    return "-" if value is None else format(value, spec)


def mean_spread(avg: float | None, values: Sequence[float], spec: str = ".3f") -> str:
    """``2.295 (0.047)``: the mean over the seeds and their spread (largest - smallest)."""
    if avg is None or len(values) < 2:
        return cell(avg, spec)
    return f"{avg:{spec}} ({spread(values):{spec}})"


def show(
    console: Console,
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    left: Sequence[str] = (),
    caption: str | None = None,
) -> None:
    """Print one table of a probe: numbers right-aligned, the ``left`` columns (text) not."""
    table = Table(title=title, caption=caption)
    for col in columns:
        table.add_column(col, justify="left" if col in left else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
