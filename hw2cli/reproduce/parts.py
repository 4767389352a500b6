"""The registry of the reproduction's parts, in the report's order, and its two profiles. A
part is a list of steps run in its folder: Python set-up steps (the quick corpus), then ``hw2``
commands with paths relative to the folder, which follow from the profile, the device and what
the folder holds (a GPT run with a checkpoint continues with ``--resume``). No torch here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from hw2cli.common.examples import examples_dir
from hw2cli.common.rundir import staged_name

CORPUS, CORPUS_SOURCE = "corpus.txt", "corpus_source.txt"


@dataclass(frozen=True)
class Profile:
    """The size options each part's commands get."""

    name: str
    table1: tuple[str, ...]
    table2: tuple[str, ...]
    rotation: tuple[str, ...]
    gpt: tuple[str, ...]
    probes: tuple[str, ...]
    builtin_corpus: bool  # train on hw2's own docstrings (offline), else Grimm's fairy tales
    # Every command on one thread, several at once: the numbers then do not depend on the
    # machine's cores (the full profile's timings are the report's: one command at a time).
    side_by_side: bool = False
    leaves_out: str = ""  # what the profile does not do that the report did, in one sentence


PROFILES = {
    "quick": Profile(
        "quick",
        # One round each (seed 0): 10 epochs are what Table 1's split needs (3 left replicate,
        # circular and fconv near chance), Table 2's shortcut shows within 3.
        table1=tuple("--rounds 1 --epochs 10".split()),
        table2=tuple("--rounds 1 --epochs 3".split()),
        # 20 epochs: the augmented model flat and within 13 points of the plain one upright
        rotation=tuple("--dataset digits --epochs 20".split()),
        # 800 steps at a small model's learning rate: words instead of noise
        gpt=tuple(
            "--model-type gpt-nano --block-size 64 --batch-size 16 --max-steps 800 --lr 3e-3 "
            "--lr-schedule cosine --min-lr 3e-4 --warmup-steps 50 --dropout 0 --eval-interval 200 "
            "--eval-steps 10".split()
        ),
        probes=("--quick",),
        builtin_corpus=True,
        side_by_side=True,
        leaves_out=(
            "it trains on small offline data for a few minutes, so its numbers are not the report's. "
            "It leaves out CIFAR-10 (8x8 handwritten digits instead, 20 epochs), Grimm's fairy tales "
            "and the course's GPT (gpt-nano on hw2's own docstrings, 800 steps), the published 10 "
            "rounds of up to 50 epochs per table (one round of 10 and of 3 epochs) and the probes' "
            "default sizes (smaller ones). `hw2 reproduce --profile full` runs the report's settings."
        ),
    ),
    "full": Profile(
        "full",
        table1=tuple("--rounds 10 --epochs 50".split()),
        table2=tuple("--rounds 10 --epochs 50".split()),
        rotation=tuple("--dataset cifar10 --epochs 10".split()),
        # the course's configuration, named so that it holds whatever gpt train's defaults become
        gpt=tuple("--model-type gpt-mini --block-size 128 --batch-size 128 --epochs 3".split()),
        probes=(),
        builtin_corpus=False,
    ),
}


@dataclass(frozen=True)
class Step:
    """One ``hw2`` command (``argv``) or Python function (``run``, given the part folder);
    ``name`` is unique within its part (part.json lists the steps done), ``ok``: the exit codes
    of success; an ``alone`` command times itself: nothing runs beside it."""

    name: str
    argv: tuple[str, ...] = ()
    run: Callable[[Path], None] | None = None
    ok: tuple[int, ...] = (0,)
    alone: bool = False


@dataclass(frozen=True)
class Part:
    name: str
    title: str  # the report's section heading
    steps: Callable[[Profile, str, Path], list[Step]]  # (profile, device, part folder) -> steps


def write_corpus(folder: Path) -> None:
    """The quick profile's training text, hw2's own docstrings, and a line naming it."""
    from hw2cli.common.corpus import NAME, builtin_corpus
    from hw2cli.common.io import atomic_write_text

    text = builtin_corpus()
    atomic_write_text(folder / CORPUS, text)
    atomic_write_text(
        folder / CORPUS_SOURCE,
        f"{NAME} (every module, class and function of the hw2cli package), {len(text):,} characters\n",
    )


def _one(profile: Profile, flag: str) -> tuple[str, ...]:
    """``flag 1`` (one thread, one worker) where the profile runs commands side by side."""
    return (flag, "1") if profile.side_by_side else ()


def _corpus(profile: Profile) -> tuple[list[Step], tuple[str, ...]]:
    """The Python step writing the quick corpus and the option naming it (none in full)."""
    if not profile.builtin_corpus:
        return [], ()
    return [Step("corpus", run=write_corpus)], ("--txt-file", CORPUS)


def _table(net: str, part: str, profile: Profile, device: str, folder: Path) -> list[Step]:
    argv = ("padding-bench", "--net", net, *getattr(profile, part), *_one(profile, "--workers"))
    outputs = ("--json", "result.json", "--csv", "result.csv", "--plot", "table.png")
    return [Step("padding-bench", (*argv, "--device", device, "--quiet", *outputs))]


def _rotation(profile: Profile, device: str, folder: Path) -> list[Step]:
    again = ("--force",) if (folder / "models").exists() else ()  # models of a cut attempt
    outputs = "--json result.json --plot rotation.png --preview preview.png --save-models models".split()
    mode = ("--mode", "both", *_one(profile, "--threads"), "--device", device, "--quiet")
    return [Step("rotate-eval", ("rotate-eval", *profile.rotation, *mode, *outputs, *again))]


def _gpt(profile: Profile, device: str, folder: Path) -> list[Step]:
    steps, corpus = _corpus(profile)
    threads = _one(profile, "--threads")
    outputs = (*threads, "--device", device, "--quiet", "--json", "train.json")
    if any((folder / "run" / f).is_file() for f in ("state.json", staged_name("state.json"))):  # interrupted
        train = ("gpt", "train", "--resume", "run", *outputs)
    else:  # a cut attempt may have left the run's metrics before its first checkpoint
        again = ("--force",) if (folder / "run").exists() else ()
        train = ("gpt", "train", *corpus, *profile.gpt, "--out", "run", *again, *outputs)
    steps.append(Step("gpt train", train))
    decodings = (
        ("--greedy",),
        ("--temperature", "0.8", "--top-k", "10"),
        ("--temperature", "1.0", "--top-p", "0.9"),
    )
    for i, decoding in enumerate(decodings):
        argv = ("gpt", "generate", "run", "--prompt", "The ", "--num-samples", "2", "--max-new-tokens", "120")
        argv += ("--seed", "0", *decoding, *threads, "--device", device, "--json", f"samples_{i}.json")
        steps.append(Step(f"gpt generate {i}", argv))
    return steps


def _graph(profile: Profile, device: str, folder: Path) -> list[Step]:
    examples = examples_dir()  # the homework's own graphs and hand-computed matrices
    steps = []
    for g in ("report_graph1", "report_graph2"):  # the homework's own two graphs
        edges = str(examples / f"{g}.txt")
        powers = ("graph", "powers", edges, "--max-power", "3", "--json", f"{g}_powers.json")
        laplacian = ("graph", "laplacian", edges, "--normalized", "--json", f"{g}_laplacian.json")
        steps += [Step(f"graph powers {g}", powers), Step(f"graph laplacian {g}", laplacian)]
    # The homework's own Laplacian of graph 2 has a mistake in row 3: `check` must find it (exit 1).
    check = ("graph", "check", str(examples / "report_graph2.txt"), "--kind", "laplacian")
    check += ("--matrix", str(examples / "report_graph2_laplacian.txt"), "--json", "check.json")
    steps.append(Step("graph check", check, ok=(1,)))
    return steps


def _probes(profile: Profile, device: str, folder: Path) -> list[Step]:
    from hw2cli.probe.registry import PROBES

    steps, corpus = _corpus(profile)
    for p in PROBES:
        threads = _one(profile, "--threads") if p.threads else ()
        argv = ("probe", p.name, *profile.probes, *threads, *(corpus if p.trains else ()), "--device", device)
        outputs = ("--quiet", "--json", f"{p.name}.json", "--plot", f"{p.name}.png")
        # a probe without --threads times itself on one thread (attention-cost): alone
        steps.append(Step(f"probe {p.name}", (*argv, *outputs), alone=not p.threads))
    return steps


PARTS = (
    Part("table1", "Table 1 — padding and translation invariance, Net1", partial(_table, "net1", "table1")),
    Part("table2", "Table 2 — padding and translation invariance, Net2", partial(_table, "net2", "table2")),
    Part("rotation", "Figures 1 and 2 — accuracy against rotation angle", _rotation),
    Part("gpt", "Figure 3 and samples — character-level micro-GPT", _gpt),
    Part("graph", "Q3.1 — adjacency powers, degree and Laplacian matrices", _graph),
    Part("probes", "The report's answers, measured", _probes),
)
PART_NAMES = tuple(p.name for p in PARTS)

#: Time (s) of each part's steps, summed, per (profile, device kind), to estimate a run before it
#: starts. quick/cpu: a quick run side by side on a quiet 2-core AMD EPYC (AVX2), 4:00 in all
#: (benchmarks/doc_times.py prints them from docs/reproduce-quick); full/cpu: Table 1 after the
#: CPU work of docs/benchmarks.md (29.7 min), Table 2 taken as long, the graphs from
#: docs/reproduce-full, gpt-mini's 12,654 steps at about 40 s each; full/cuda: the full Table 1
#: on an H100/H200 (56 s). Parts without a record are left out of the estimate and named.
RECORDED_S: dict[tuple[str, str], dict[str, float]] = {
    ("quick", "cpu"): {
        "table1": 121.0,
        "table2": 44.0,
        "rotation": 77.0,
        "gpt": 45.0,
        "graph": 5.0,
        "probes": 123.0,
    },
    ("full", "cpu"): {"table1": 1782.0, "table2": 1782.0, "gpt": 12654 * 40.0, "graph": 6.8},
    ("full", "cuda"): {"table1": 56.0, "table2": 56.0},
}
