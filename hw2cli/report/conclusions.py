"""The homework report's conclusions as data: :data:`CONCLUSIONS`, in the report's order, each a
claim in our own words, the part whose result decides it (as ``sections.load_part`` reads it)
and its judge. The thresholds come from the full-profile runs (docs/report.md, "The
conclusions"): a quick run agrees when it tells the same story. No torch here."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hw2cli.padding import CONV_TYPES
from hw2cli.probe.common import INCONCLUSIVE
from hw2cli.probe.registry import PROBES
from hw2cli.report.sections import GptPart, GraphPart, word_list

AGREES, DISAGREES, UNDECIDED, NOT_RUN = "agrees", "disagrees", "undecided", "not run"
#: Exit code of `hw2 reproduce` and `hw2 report` when a conclusion disagrees (docs/report.md).
DISAGREE_EXIT = 4
SHORTCUT_MAX = 5.0  # % on the shifted test, at most, of a padding that reads the boxes' position

#: What a judge returns: agrees (None: the run cannot decide, no contradiction) and the evidence.
Judged = tuple[bool | None, str]


@dataclass(frozen=True)
class Conclusion:
    source: str  # where the report draws it
    claim: str  # our paraphrase
    part: str
    judge: Callable[[Any], Judged]


@dataclass
class Finding:
    """A conclusion as this run decided it (agrees, disagrees, undecided, not run) and why."""

    source: str
    claim: str
    part: str
    status: str
    evidence: str


@dataclass
class Findings:
    findings: list[Finding] = field(default_factory=list)

    def counts(self) -> str:
        """``21 agree, 0 disagree, 2 undecided, 5 not run``: the table in one line."""
        n = {s: sum(f.status == s for f in self.findings) for s in (AGREES, DISAGREES, UNDECIDED, NOT_RUN)}
        rest = "".join(f", {n[s]} {s}" for s in (UNDECIDED, NOT_RUN) if n[s])
        return f"{n[AGREES]} agree, {n[DISAGREES]} disagree{rest}"


def _limit(measure: Callable[[Any], tuple[float | None, str]], rule: str, low=-math.inf, high=math.inf):
    """The judge "``measure(result)``'s value lies within ``low`` to ``high``", its evidence ended
    by ``rule`` formatted with the limit; a value of None (the run lacks what the measure needs)
    disagrees, the evidence saying why."""

    def judge(result: Any) -> Judged:
        value, evidence = measure(result)
        if value is None:
            return False, evidence
        return low <= value <= high, f"{evidence} ({rule.format(high if low == -math.inf else low)})"

    return judge


def _means(result: Any, metric: str, convs: tuple[str, ...] = CONV_TYPES) -> dict[str, float]:
    """Mean over the rounds (%) per conv type, for the conv types the run trained."""
    return {c: result.summary(c, metric)[0] for c in convs if result.outcomes.get(c)}


def _decided(ok: bool, means: dict, convs: tuple[str, ...]) -> bool | None:
    """``ok``, undecided when a conv type was not trained (an interrupted run) and none broke it."""
    return ok and (None if len(means) < len(convs) else True)


def _padding(convs: tuple[str, ...], metric: str, low=-math.inf, high=math.inf, each="") -> Callable:
    """The judge of "every conv type of ``convs`` has its mean ``metric`` within ``low`` to ``high``"."""
    rule = f"({each}at least {low:g}%)" if low > -math.inf else f"({each}at most {high:g}%)"

    def judge(r: Any) -> Judged:
        means = _means(r, metric, convs)
        missing = [c for c in convs if c not in means]
        shown = ", ".join(f"{c} {m:.1f}%" for c, m in means.items())
        evidence = (f"{shown} {rule}" if means else rule) + (
            f"; not trained: {', '.join(missing)}" if missing else ""
        )
        return _decided(all(low <= m <= high for m in means.values()), means, convs), evidence

    return judge


def _net2_fails(r: Any, val_min: float = 95.0) -> Judged:
    val, test = _means(r, "val_acc"), _means(r, "test_acc")
    ok = all(v >= val_min for v in val.values()) and all(t <= SHORTCUT_MAX for t in test.values())
    return _decided(ok, test, CONV_TYPES), (
        f"validation {min(val.values(), default=float('nan')):.1f}% or more (at least "
        f"{val_min:g}%), shifted test {max(test.values(), default=float('nan')):.1f}% or less "
        f"(at most {SHORTCUT_MAX:g}%), over {len(test)} conv types"
    )


def _angles(measure: Callable[..., tuple[float, str]], *names: str) -> Callable:
    """``measure(result, *models)``, or None when a model or the upright angle was not run."""

    def of(r: Any) -> tuple[float | None, str]:
        models = [next((m for m in r.models if m.name == n), None) for n in names]
        if None in models or 0 not in r.angles:
            return None, f"needs the {' and '.join(names)} models and the angle 0°"
        return measure(r, *models)

    return of


def _upright(r: Any, model: Any) -> float:
    return 100 * model.accuracy[r.angles.index(0)]


def _plain_drop(r: Any, plain: Any) -> tuple[float, str]:
    others = [100 * a for angle, a in zip(r.angles, plain.accuracy, strict=True) if angle % 360]
    upright, mean = _upright(r, plain), sum(others) / len(others)
    return upright - mean, f"plain: {upright:.1f}% upright, {mean:.1f}% on average at the other angles"


def _augmented_range(r: Any, aug: Any) -> tuple[float, str]:
    accs = [100 * a for a in aug.accuracy]
    return max(accs) - min(accs), f"augmented: {min(accs):.1f}% to {max(accs):.1f}% over the angles"


def _mean_gain(r: Any, plain: Any, aug: Any) -> tuple[float, str]:
    a, p = 100 * aug.mean_accuracy, 100 * plain.mean_accuracy
    return a - p, f"mean over the angles: augmented {a:.1f}%, plain {p:.1f}%"


def _upright_gap(r: Any, plain: Any, aug: Any) -> tuple[float, str]:
    p, a = _upright(r, plain), _upright(r, aug)
    return p - a, f"upright: augmented {a:.1f}%, plain {p:.1f}%"


def _loss_share(p: GptPart) -> tuple[float | None, str]:
    uniform, best = math.log(p.train.vocab_size), p.train.best_val_loss
    if best is None:
        return None, "no validation loss was measured"
    return best / uniform, (
        f"best validation loss {best:.2f} nats against {uniform:.2f} for a uniform guess over "
        f"{p.train.vocab_size} characters"
    )


def _word_share(p: GptPart) -> tuple[float | None, str]:
    sampled = [
        w
        for s in p.samples
        if s.settings.get("mode") != "greedy"
        for c in s.completions
        for w in word_list(c)
    ]
    if p.words is None:
        return None, f"the training text is not at {p.text}, so its words cannot be compared"
    if not sampled:
        return None, "no sampled (non-greedy) text to judge"
    share = sum(w in p.words for w in sampled) / len(sampled)
    return (
        share,
        f"{share:.0%} of the {len(sampled)} words of the sampled texts are words of the training text",
    )


def _dense(matrix: Any) -> np.ndarray:
    from hw2cli.graph.io import matrix_to_json

    return np.asarray(matrix_to_json(matrix), dtype=float)


def _laplacian_of(a: np.ndarray) -> np.ndarray:
    return np.diag(a.sum(axis=1)) - a


def _matrices_right(g: GraphPart) -> Judged:
    if not g.powers:
        return False, "no graph was computed"
    checked = []
    for name, powers in g.powers.items():
        a = _dense(powers.graph.adjacency)
        ok = all(
            np.array_equal(_dense(m), np.linalg.matrix_power(a, k)) for k, m in enumerate(powers.powers, 1)
        )
        lap = g.laplacians.get(name)
        ok = ok and lap is not None and np.array_equal(_dense(lap.laplacian), _laplacian_of(a))
        checked.append((name, len(powers.powers), ok))
    wrong = [n for n, _, ok in checked if not ok]
    evidence = "; ".join(f"{n}: A..A^{k} and L" for n, k, _ in checked) + " recomputed cell by cell"
    return not wrong, evidence + (f"; differ: {', '.join(wrong)}" if wrong else ", all equal")


def _square_right(g: GraphPart) -> Judged:
    from hw2cli.report.published import GRAPH1_SQUARE

    powers = next((p for n, p in g.powers.items() if n.endswith("graph1")), None)
    if powers is None or len(powers.powers) < 2:
        return False, "the first graph's A^2 was not computed"
    a = _dense(powers.graph.adjacency)
    same = np.array_equal(a @ a, GRAPH1_SQUARE)
    return same, "the report's A^2 of graph 1 " + ("equals A·A cell by cell" if same else "differs from A·A")


def _flagged(g: GraphPart) -> Judged:
    c = g.check
    if c is None:
        return False, "no hand-written matrix was checked"
    name = Path(c.graph.source).name
    graph = next((p.graph for p in g.powers.values() if Path(p.graph.source).name == name), None)
    if graph is None:  # the check's file keeps the graph's nodes, not its edges
        return False, f"the checked graph {name} was not among the graphs computed"
    given = np.asarray(c.given.tolist(), dtype=float)
    differ = {(int(i), int(j)) for i, j in np.argwhere(given != _laplacian_of(_dense(graph.adjacency)))}
    flagged = {(w.row, w.col) for w in c.wrong}
    cells = ", ".join(f"[{graph.nodes[i]}, {graph.nodes[j]}]" for i, j in sorted(flagged))
    return bool(differ) and flagged == differ, (
        f"{len(differ)} cell(s) of the report's matrix differ from D − A; hw2 graph check flags "
        f"{len(flagged)}: {cells or 'none'}"
    )


#: (source, probe, claim start, verdict at the default sizes, paraphrase) of every probe claim
#: (hw2cli.probe.registry): a quick run agrees when it reaches the same verdict.
PROBE_CLAIMS = tuple((c.source, p.name, c.start, c.expected, c.paraphrase) for p in PROBES for c in p.claims)


def _probe(probe: str, claim_start: str, expected: str | tuple[str, ...]) -> Callable[[dict], Judged]:
    """Agrees when the probe reaches its default-size verdict (``expected``; a tuple: the first
    is the default size's, the others are also accepted); undecided when it says inconclusive
    where the default size decides; disagrees on any other verdict."""
    accepted = (expected,) if isinstance(expected, str) else expected

    def judge(results: dict[str, Any]) -> Judged:
        verdicts = getattr(results.get(probe), "verdicts", ())
        verdict = next((v for v in verdicts if v.claim.lower().startswith(claim_start.lower())), None)
        if verdict is None:
            return False, f"`{probe}` gave no verdict on this claim"
        evidence = f"{verdict.verdict} (at full size: {accepted[0]})"
        if verdict.verdict == INCONCLUSIVE not in accepted:
            return None, evidence
        return verdict.verdict in accepted, evidence

    return judge


_JUDGES: dict[tuple[str, str], dict[str, Callable[[Any], Judged]]] = {  # (source, part): {claim: judge}
    ("Table 1", "table1"): {
        "Valid and reflect padding fail the shifted test: the network finds the boxes by their position.": (
            _padding(("valid", "reflect"), "test_acc", high=SHORTCUT_MAX)
        ),
        "Replicate, circular and fconv keep most of their accuracy when the boxes move.": (
            _padding(("replicate", "circular", "fconv"), "test_acc", low=60.0)
        ),
        "sconv stays low on the shifted test.": _padding(("sconv",), "test_acc", high=20.0),
        "Every padding is accurate on the unshifted validation set.": (
            _padding(CONV_TYPES, "val_acc", low=75.0, each="each ")
        ),
    },
    ("Table 2", "table2"): {
        "With Net2 every padding is perfect on validation and fails the shifted test.": _net2_fails
    },
    ("Figure 1", "rotation"): {
        "Trained upright, the CNN is accurate upright and loses accuracy at other angles.": (
            _limit(_angles(_plain_drop, "plain"), "a drop of at least {:g} points", low=20.0)
        ),
    },
    ("Figure 2", "rotation"): {
        "Trained on rotated images, the CNN's accuracy is about the same at every angle.": (
            _limit(_angles(_augmented_range, "augmented"), "a range of at most {:g} points", high=15.0)
        ),
        "Its average over the angles is well above the upright-trained model's.": (
            _limit(_angles(_mean_gain, "plain", "augmented"), "at least {:g} points above", low=20.0)
        ),
        "Upright, it gives up only a little of the upright-trained model's accuracy.": (
            _limit(_angles(_upright_gap, "plain", "augmented"), "at most {:g} points below", high=15.0)
        ),
    },
    ("Figure 3", "gpt"): {
        "The GPT's loss falls well below that of guessing every character uniformly.": (
            _limit(_loss_share, "at most {:.0%} of it", high=0.6)
        ),
    },
    ("Q2.8", "gpt"): {
        "The GPT's sampled texts are made of real words.": _limit(_word_share, "at least {:.0%}", low=0.5)
    },
    ("Q3.1", "graph"): {
        "A's powers count walks, and D and L = D − A follow from A (both graphs).": _matrices_right
    },
    ("Q3.1b", "graph"): {"The report's A² of the first graph is right.": _square_right},
    ("Q3.1c", "graph"): {
        "The report's Laplacian of the second graph has wrong cells (row 3), and they are flagged.": _flagged
    },
}
CONCLUSIONS: tuple[Conclusion, ...] = (
    *(
        Conclusion(source, claim, part, judge)
        for (source, part), rows in _JUDGES.items()
        for claim, judge in rows.items()
    ),
    *(
        Conclusion(source, claim, "probes", _probe(probe, start, expected))
        for source, probe, start, expected, claim in PROBE_CLAIMS
    ),
)


def decide(results: dict[str, Any]) -> Findings:
    """Every conclusion against ``results`` (part name -> ``sections.load_part``'s value; a part
    that is absent was not run)."""
    findings = []
    for c in CONCLUSIONS:
        if c.part not in results:
            findings.append(Finding(c.source, c.claim, c.part, NOT_RUN, "part not run"))
            continue
        agrees, evidence = c.judge(results[c.part])
        status = UNDECIDED if agrees is None else AGREES if agrees else DISAGREES
        findings.append(Finding(c.source, c.claim, c.part, status, evidence))
    return Findings(findings)
