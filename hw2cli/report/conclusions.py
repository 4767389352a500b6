"""The homework report's conclusions as data, each decided by this run's numbers: one list
(:data:`CONCLUSIONS`, in the report's order) of claims in our own words, the part whose result
decides each and its predicate over that result, read back through the family's ``from_json``
(:func:`load_part`). The thresholds come from the full-profile runs (docs/report.md, "The
conclusions"): a quick run agrees when it tells the same story. No torch here."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hw2cli.padding import CONV_TYPES
from hw2cli.probe.common import INCONCLUSIVE
from hw2cli.probe.registry import PROBES

AGREES, DISAGREES, UNDECIDED, NOT_RUN = "agrees", "disagrees", "undecided", "not run"
#: Exit code of `hw2 reproduce` and `hw2 report` when a conclusion disagrees (docs/report.md).
DISAGREE_EXIT = 4

# Thresholds (accuracy in %, losses in nats); docs/report.md gives the numbers behind each.
SHORTCUT_MAX = 5.0  # a padding that reads position: shifted-test mean at most this
INVARIANT_MIN = 60.0  # a padding that finds the boxes anywhere: shifted-test mean at least this
SCONV_MAX = 20.0  # sconv's shifted-test mean at most this
VALIDATION_MIN = 75.0  # Table 1: every padding's validation mean at least this
NET2_VALIDATION_MIN = 95.0  # Table 2: every padding's validation mean at least this
UPRIGHT_DROP_MIN = 20.0  # Figure 1: upright minus the mean over the other angles, at least
FLAT_RANGE_MAX = 15.0  # Figure 2: best minus worst angle of the augmented model, at most
MEAN_GAIN_MIN = 20.0  # Figure 2: augmented mean minus plain mean, at least
UPRIGHT_GAP_MAX = 15.0  # Figure 2: plain upright minus augmented upright, at most
LOSS_RATIO_MAX = 0.6  # Figure 3: best validation loss at most this share of ln(vocabulary)
WORD_SHARE_MIN = 0.5  # samples: share of sampled words that are words of the training text

#: What a judge returns: agrees (None: the run cannot decide, no contradiction) and the evidence.
Judged = tuple[bool | None, str]


@dataclass(frozen=True)
class Conclusion:
    """Where the report draws it, our paraphrase, the part that decides it and its judge."""

    source: str
    claim: str
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
    """Every conclusion's finding, in the report's order."""

    findings: list[Finding] = field(default_factory=list)

    @property
    def disagreeing(self) -> list[Finding]:
        return [f for f in self.findings if f.status == DISAGREES]

    def counts(self) -> str:
        """``21 agree, 0 disagree, 2 undecided, 5 not run``: the table in one line."""
        n = {s: sum(f.status == s for f in self.findings) for s in (AGREES, DISAGREES, UNDECIDED, NOT_RUN)}
        rest = "".join(f", {n[s]} {s}" for s in (UNDECIDED, NOT_RUN) if n[s])
        return f"{n[AGREES]} agree, {n[DISAGREES]} disagree{rest}"


# ----------------------------------------------------------------------------- Tables 1 and 2


def _means(result: Any, convs: tuple[str, ...], metric: str) -> dict[str, float]:
    """Mean over the rounds (%) per conv type, for the conv types the run trained."""
    return {c: result.summary(c, metric)[0] for c in convs if result.outcomes.get(c)}


def _padding(convs: tuple[str, ...], metric: str, low=-math.inf, high=math.inf, each="") -> Callable:
    """The judge of "every conv type of ``convs`` has its mean ``metric`` within ``low`` to
    ``high``"; the evidence lists the means. Undecided when one was not trained (an interrupted
    run) and none of the others breaks the rule."""
    rule = f"({each}at least {low:g}%)" if low > -math.inf else f"({each}at most {high:g}%)"

    def judge(r: Any) -> Judged:
        means = _means(r, convs, metric)
        missing = [c for c in convs if c not in means]
        shown = ", ".join(f"{c} {m:.1f}%" for c, m in means.items())
        evidence = f"{shown} {rule}" if means else rule
        agrees = all(low <= m <= high for m in means.values()) and (None if missing else True)
        return agrees, evidence + (f"; not trained: {', '.join(missing)}" if missing else "")

    return judge


def _net2_fails(r: Any) -> Judged:
    val, test = _means(r, CONV_TYPES, "val_acc"), _means(r, CONV_TYPES, "test_acc")
    ok_val, _ = _padding(CONV_TYPES, "val_acc", low=NET2_VALIDATION_MIN)(r)
    ok_test, _ = _padding(CONV_TYPES, "test_acc", high=SHORTCUT_MAX)(r)
    evidence = (
        f"validation {min(val.values(), default=float('nan')):.1f}% or more (at least "
        f"{NET2_VALIDATION_MIN:g}%), shifted test {max(test.values(), default=float('nan')):.1f}% or less "
        f"(at most {SHORTCUT_MAX:g}%), over {len(test)} conv types"
    )
    return (False if False in (ok_val, ok_test) else None if None in (ok_val, ok_test) else True), evidence


# ----------------------------------------------------------------------------- Figures 1 and 2


def _rotation(judge: Callable[..., Judged], *names: str) -> Callable[[Any], Judged]:
    """``judge(result, *models)``, or disagree when a model or the upright angle was not run."""

    def check(r: Any) -> Judged:
        models = [next((m for m in r.models if m.name == n), None) for n in names]
        if None in models or 0 not in r.angles:
            return False, f"needs the {' and '.join(names)} models and the angle 0°"
        return judge(r, *models)

    return check


def _upright(r: Any, model: Any) -> float:
    return 100 * model.accuracy[r.angles.index(0)]


def _plain_falls(r: Any, plain: Any) -> Judged:
    others = [100 * a for angle, a in zip(r.angles, plain.accuracy, strict=True) if angle % 360]
    upright, mean = _upright(r, plain), sum(others) / len(others)
    return upright - mean >= UPRIGHT_DROP_MIN, (
        f"plain: {upright:.1f}% upright, {mean:.1f}% on average at the other angles "
        f"(a drop of at least {UPRIGHT_DROP_MIN:g} points)"
    )


def _augmented_flat(r: Any, aug: Any) -> Judged:
    accs = [100 * a for a in aug.accuracy]
    return max(accs) - min(accs) <= FLAT_RANGE_MAX, (
        f"augmented: {min(accs):.1f}% to {max(accs):.1f}% over the angles "
        f"(a range of at most {FLAT_RANGE_MAX:g} points)"
    )


def _augmented_mean(r: Any, plain: Any, aug: Any) -> Judged:
    gain = 100 * (aug.mean_accuracy - plain.mean_accuracy)
    return gain >= MEAN_GAIN_MIN, (
        f"mean over the angles: augmented {100 * aug.mean_accuracy:.1f}%, plain {100 * plain.mean_accuracy:.1f}% "
        f"(at least {MEAN_GAIN_MIN:g} points above)"
    )


def _augmented_upright(r: Any, plain: Any, aug: Any) -> Judged:
    p, a = _upright(r, plain), _upright(r, aug)
    return p - a <= UPRIGHT_GAP_MAX, (
        f"upright: augmented {a:.1f}%, plain {p:.1f}% (at most {UPRIGHT_GAP_MAX:g} points below)"
    )


# ----------------------------------------------------------------------------- Figure 3


@dataclass
class GptPart:
    """The training, the samples and the training text's words (None: the text is not here)."""

    train: Any
    samples: list[Any]
    words: set[str] | None
    text: str  # where the words come from, or where the text was looked for


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def _loss_falls(p: GptPart) -> Judged:
    uniform, best = math.log(p.train.vocab_size), p.train.best_val_loss
    if best is None:
        return False, "no validation loss was measured"
    return best <= LOSS_RATIO_MAX * uniform, (
        f"best validation loss {best:.2f} nats against {uniform:.2f} for a uniform guess over "
        f"{p.train.vocab_size} characters (at most {LOSS_RATIO_MAX:.0%} of it)"
    )


def _word_like(p: GptPart) -> Judged:
    sampled = [
        w for s in p.samples if s.settings.get("mode") != "greedy" for c in s.completions for w in _words(c)
    ]
    if p.words is None:
        return False, f"the training text is not at {p.text}, so its words cannot be compared"
    if not sampled:
        return False, "no sampled (non-greedy) text to judge"
    share = sum(w in p.words for w in sampled) / len(sampled)
    return share >= WORD_SHARE_MIN, (
        f"{share:.0%} of the {len(sampled)} words of the sampled texts are words of the training text "
        f"(at least {WORD_SHARE_MIN:.0%})"
    )


# ----------------------------------------------------------------------------- Q3.1


@dataclass
class GraphPart:
    """Powers and Laplacian per graph, and the check."""

    powers: dict[str, Any]
    laplacians: dict[str, Any]
    check: Any | None


def _dense(matrix: Any) -> list[list[float]]:
    from hw2cli.graph.io import matrix_to_json

    return [[float(v) for v in row] for row in matrix_to_json(matrix)]


def _matmul(a: list[list[float]], b: list[list[float]]) -> list[list[float]]:
    return [[sum(x * y for x, y in zip(row, col, strict=True)) for col in zip(*b, strict=True)] for row in a]


def _laplacian_of(a: list[list[float]]) -> list[list[float]]:
    """L = D - A, computed cell by cell from A."""
    return [[(sum(row) if i == j else 0.0) - v for j, v in enumerate(row)] for i, row in enumerate(a)]


def _matrices_right(g: GraphPart) -> Judged:
    if not g.powers:
        return False, "no graph was computed"
    checked = []
    for name, powers in g.powers.items():
        a = _dense(powers.graph.adjacency)
        power, ok = a, _dense(powers.powers[0]) == a
        for matrix in powers.powers[1:]:
            power = _matmul(power, a)
            ok = ok and _dense(matrix) == power
        lap = g.laplacians.get(name)
        checked.append(
            (name, len(powers.powers), ok and lap is not None and _dense(lap.laplacian) == _laplacian_of(a))
        )
    wrong = [n for n, _, ok in checked if not ok]
    evidence = "; ".join(f"{n}: A..A^{k} and L" for n, k, _ in checked) + " recomputed cell by cell"
    return not wrong, evidence + (f"; differ: {', '.join(wrong)}" if wrong else ", all equal")


def _published_square_right(g: GraphPart) -> Judged:
    from hw2cli.report.published import GRAPH1_SQUARE

    powers = next((p for n, p in g.powers.items() if n.endswith("graph1")), None)
    if powers is None or len(powers.powers) < 2:
        return False, "the first graph's A^2 was not computed"
    a = _dense(powers.graph.adjacency)
    same = _matmul(a, a) == GRAPH1_SQUARE
    return same, "the report's A^2 of graph 1 " + ("equals A·A cell by cell" if same else "differs from A·A")


def _wrong_cells_flagged(g: GraphPart) -> Judged:
    c = g.check
    if c is None:
        return False, "no hand-written matrix was checked"
    name = Path(c.graph.source).name
    graph = next((p.graph for p in g.powers.values() if Path(p.graph.source).name == name), None)
    if graph is None:  # the check's file keeps the graph's nodes, not its edges
        return False, f"the checked graph {name} was not among the graphs computed"
    right = _laplacian_of(_dense(graph.adjacency))
    differ = {
        (i, j) for i, row in enumerate(c.given.tolist()) for j, v in enumerate(row) if float(v) != right[i][j]
    }
    flagged = {(w.row, w.col) for w in c.wrong}
    cells = ", ".join(f"[{graph.nodes[i]}, {graph.nodes[j]}]" for i, j in sorted(flagged))
    return bool(differ) and flagged == differ, (
        f"{len(differ)} cell(s) of the report's matrix differ from D − A; hw2 graph check flags "
        f"{len(flagged)}: {cells or 'none'}"
    )


# ----------------------------------------------------------------------------- the probes

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


# ----------------------------------------------------------------------------- the list

CONCLUSIONS: tuple[Conclusion, ...] = (
    Conclusion(
        "Table 1",
        "Valid and reflect padding fail the shifted test: the network finds the boxes by their position.",
        "table1",
        _padding(("valid", "reflect"), "test_acc", high=SHORTCUT_MAX),
    ),
    Conclusion(
        "Table 1",
        "Replicate, circular and fconv keep most of their accuracy when the boxes move.",
        "table1",
        _padding(("replicate", "circular", "fconv"), "test_acc", low=INVARIANT_MIN),
    ),
    Conclusion(
        "Table 1",
        "sconv stays low on the shifted test.",
        "table1",
        _padding(("sconv",), "test_acc", high=SCONV_MAX),
    ),
    Conclusion(
        "Table 1",
        "Every padding is accurate on the unshifted validation set.",
        "table1",
        _padding(CONV_TYPES, "val_acc", low=VALIDATION_MIN, each="each "),
    ),
    Conclusion(
        "Table 2",
        "With Net2 every padding is perfect on validation and fails the shifted test.",
        "table2",
        _net2_fails,
    ),
    Conclusion(
        "Figure 1",
        "Trained upright, the CNN is accurate upright and loses accuracy at other angles.",
        "rotation",
        _rotation(_plain_falls, "plain"),
    ),
    Conclusion(
        "Figure 2",
        "Trained on rotated images, the CNN's accuracy is about the same at every angle.",
        "rotation",
        _rotation(_augmented_flat, "augmented"),
    ),
    Conclusion(
        "Figure 2",
        "Its average over the angles is well above the upright-trained model's.",
        "rotation",
        _rotation(_augmented_mean, "plain", "augmented"),
    ),
    Conclusion(
        "Figure 2",
        "Upright, it gives up only a little of the upright-trained model's accuracy.",
        "rotation",
        _rotation(_augmented_upright, "plain", "augmented"),
    ),
    Conclusion(
        "Figure 3",
        "The GPT's loss falls well below that of guessing every character uniformly.",
        "gpt",
        _loss_falls,
    ),
    Conclusion("Q2.8", "The GPT's sampled texts are made of real words.", "gpt", _word_like),
    Conclusion(
        "Q3.1",
        "A's powers count walks, and D and L = D − A follow from A (both graphs).",
        "graph",
        _matrices_right,
    ),
    Conclusion("Q3.1b", "The report's A² of the first graph is right.", "graph", _published_square_right),
    Conclusion(
        "Q3.1c",
        "The report's Laplacian of the second graph has wrong cells (row 3), and they are flagged.",
        "graph",
        _wrong_cells_flagged,
    ),
    *(
        Conclusion(source, claim, "probes", _probe(probe, start, expected))
        for source, probe, start, expected, claim in PROBE_CLAIMS
    ),
)


# ----------------------------------------------------------------------------- reading a part


def _gpt_text(part_dir: Path, train: Any) -> Path:
    """The GPT's training text: the quick corpus beside the run, else the recorded ``txt_file``,
    else Grimm's fairy tales in the cache."""
    from hw2cli.common.cache import cache_dir
    from hw2cli.gpt.data import GRIMM_FILE
    from hw2cli.reproduce.parts import CORPUS

    if (part_dir / CORPUS).is_file():
        return part_dir / CORPUS
    txt = train.options.get("txt_file")
    if txt:
        return part_dir / txt if not Path(txt).is_absolute() else Path(txt)
    return cache_dir() / GRIMM_FILE


def load_part(name: str, part_dir: Path) -> Any:
    """The part's results as its conclusions read them, each file read back through its
    family's ``from_json`` (hw2cli.report.sections.read)."""
    from hw2cli.report.sections import read

    if name in ("table1", "table2", "rotation"):
        from hw2cli.padding import render as padding
        from hw2cli.rotation import render as rotation

        return read(part_dir / "result.json", rotation if name == "rotation" else padding)
    if name == "gpt":
        from hw2cli.gpt import render
        from hw2cli.gpt.sample import GenerateResult
        from hw2cli.gpt.train import TrainResult

        train = read(part_dir / "train.json", render, TrainResult)
        samples = [read(p, render, GenerateResult) for p in sorted(part_dir.glob("samples_*.json"))]
        text = _gpt_text(part_dir, train)
        words = set(_words(text.read_text(encoding="utf-8", errors="replace"))) if text.is_file() else None
        return GptPart(train, samples, words, str(text))
    if name == "graph":
        from hw2cli.graph import render
        from hw2cli.graph.check import CheckResult
        from hw2cli.graph.laplacian import LaplacianResult
        from hw2cli.graph.walks import PowersResult

        def each(suffix: str, cls: type) -> dict[str, Any]:
            return {
                p.name.removesuffix(suffix): read(p, render, cls) for p in sorted(part_dir.glob("*" + suffix))
            }

        check = part_dir / "check.json"
        return GraphPart(
            each("_powers.json", PowersResult),
            each("_laplacian.json", LaplacianResult),
            read(check, render, CheckResult) if check.is_file() else None,
        )
    if name == "probes":
        from hw2cli.probe import render

        files = {p.name: part_dir / f"{p.name}.json" for p in PROBES}
        return {name: read(path, render) for name, path in files.items() if path.is_file()}
    raise ValueError(f"no part {name!r}")


def decide(results: dict[str, Any]) -> Findings:
    """Every conclusion against ``results`` (part name -> :func:`load_part`'s value; a part
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
